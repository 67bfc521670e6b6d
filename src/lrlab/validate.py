"""Checks every setting a run depends on before anything starts: types, ranges, imports, data files.

The schema is declarative: one :class:`Rule` per config key (its type, its allowed range, and what to do). Keys a
chosen option does not have are skipped, so one table serves every scheduler, optimizer and model.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lrlab.errors import ConfigError

# What the module logs (lrlab.module.Classifier): the metrics a monitor or an objective can name.
LOGGED_METRICS = ("val/loss", "val/acc", "train/loss_epoch", "train/acc_epoch", "train/loss", "train/acc")
INTERVALS = ("epoch", "step")


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


@dataclass(frozen=True)
class Rule:
    """``key`` must satisfy ``check``; otherwise the error reads ``<key> <must> (got <value>)``."""

    key: str
    check: Callable[[Any], bool]
    must: str
    nullable: bool = False   # null is allowed (it means "default" or "off")

    def problem(self, cfg: DictConfig) -> str | None:
        node = OmegaConf.select(cfg, self.key, default="__absent__", throw_on_missing=False)
        if node == "__absent__" or (node is None and self.nullable):
            return None
        value = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        if self.check(value):
            return None
        return f"{self.key} {self.must} (got {value!r})" if isinstance(value, str) else f"{self.key} {self.must} (got {value})"


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    def check(v: Any) -> bool:
        if not _is_number(v):
            return False
        if low is not None and (v <= low if low_open else v < low):
            return False
        return not (high is not None and (v >= high if high_open else v > high))
    return check


def integer(low: int) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= low


def one_of(*options: str) -> Callable[[Any], bool]:
    return lambda v: v in options


def int_list(low: int, increasing: bool = False) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, list) or not all(_is_int(x) and x >= low for x in v):
            return False
        return not increasing or all(a < b for a, b in zip(v, v[1:]))
    return check


RULES = (
    Rule("seed", integer(0), "must be an integer >= 0"),
    Rule("optimizer.lr", number(0, low_open=True), "must be a number > 0"),
    Rule("optimizer.momentum", number(0), "must be a number >= 0"),
    Rule("optimizer.weight_decay", number(0), "must be a number >= 0"),
    Rule("trainer.max_epochs", integer(1), "must be an integer >= 1"),
    Rule("trainer.accumulate_grad_batches", lambda v: v == 1,
         "must be 1: every batch is one optimizer step in lrlab's training step; raise data.batch_size instead"),
    Rule("trainer.gradient_clip_algorithm", one_of("norm", "value"), "must be norm or value", nullable=True),
    Rule("steps_per_call", integer(1), "must be an integer >= 1"),
    Rule("data.batch_size", integer(1), "must be an integer >= 1"),
    Rule("data.eval_batch_size", integer(1), "must be an integer >= 1"),
    Rule("data.val_fraction", number(0, 1, high_open=True), "must be a number in [0, 1)"),
    Rule("data.normalize", one_of("standard", "unit", "none"), "must be standard, unit or none"),
    Rule("model.dropout", number(0, 1, high_open=True), "must be a number in [0, 1)"),
    Rule("model.depth", integer(1), "must be an integer >= 1"),
    Rule("model.width", integer(1), "must be an integer >= 1"),
    Rule("model.hidden", int_list(1), "must be a list of widths >= 1, e.g. [256, 128]", nullable=True),
    Rule("model.channels", int_list(1), "must be a list of channel counts >= 1"),
    Rule("model.fc_width", integer(1), "must be an integer >= 1"),
    Rule("scheduler.interval", one_of(*INTERVALS), "must be epoch or step"),
    Rule("scheduler.frequency", integer(1), "must be an integer >= 1"),
    Rule("scheduler.step_size", integer(1), "must be an integer >= 1"),
    Rule("scheduler.gamma", number(0, low_open=True), "must be a number > 0"),
    Rule("scheduler.milestones", int_list(1, increasing=True), "must be an increasing list of steps >= 1"),
    Rule("scheduler.T_max", integer(1), "must be an integer >= 1, or null for the whole run", nullable=True),
    Rule("scheduler.T_0", integer(1), "must be an integer >= 1"),
    Rule("scheduler.T_mult", integer(1), "must be an integer >= 1"),
    Rule("scheduler.total_steps", integer(1), "must be an integer >= 1, or null for the whole run", nullable=True),
    Rule("scheduler.total_iters", integer(0), "must be an integer >= 0, or null for the whole run", nullable=True),
    Rule("scheduler.factor", number(0, 1, low_open=True), "must be a number in (0, 1]"),
    Rule("scheduler.patience", integer(0), "must be an integer >= 0"),
    Rule("scheduler.monitor", one_of(*LOGGED_METRICS), f"must be a metric the run logs ({', '.join(LOGGED_METRICS)})",
         nullable=True),
    Rule("warmup.steps", integer(0), "must be an integer >= 0"),
    Rule("warmup.interval", one_of(*INTERVALS), "must be epoch or step"),
    Rule("objective.metric", one_of(*LOGGED_METRICS), f"must be a metric the run logs ({', '.join(LOGGED_METRICS)})"),
    Rule("objective.mode", one_of("max", "min"), "must be max or min"),
    Rule("divergence.max_loss_ratio", number(1, low_open=True), "must be a number > 1, or null (only NaN/Inf)",
         nullable=True),
    Rule("divergence.check_every_n_steps", integer(1), "must be an integer >= 1"),
    Rule("tune.min_lr", number(0, low_open=True), "must be a number > 0"),
    Rule("tune.max_lr", number(0, low_open=True), "must be a number > 0"),
    Rule("tune.num_training", integer(2), "must be an integer >= 2"),
)

# Dotted paths that must import; a callback entry of null is switched off.
TARGETS = ("model._target_", "optimizer._target_", "scheduler._target_", "trainer._target_", "logger._target_",
           "data._target_", "data.source", "warmup.schedule._target_")


def _target_problems(cfg: DictConfig, imports: bool) -> list[str]:
    """Every ``_target_`` imports; without ``imports`` only its top-level package is looked up (importing torch and
    Lightning takes seconds)."""
    import importlib.util

    from hydra.utils import get_object

    keys = list(TARGETS) + [f"callbacks.{name}._target_" for name, node in (cfg.get("callbacks") or {}).items() if node]
    problems = []
    for key in keys:
        path = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if not isinstance(path, str):
            continue
        try:
            found = get_object(path) if imports else importlib.util.find_spec(path.split(".")[0])
        except Exception:
            found = None
        if found is None:
            problems.append(f"{key} cannot be imported (got {path!r}): check the dotted path and that its package is installed")
    return problems


def _cross_problems(cfg: DictConfig, imports: bool) -> list[str]:
    problems = []
    tune = cfg.get("tune")
    if tune and _is_number(tune.get("min_lr")) and _is_number(tune.get("max_lr")) and tune.min_lr >= tune.max_lr:
        problems.append(f"tune.min_lr must be below tune.max_lr (got {tune.min_lr} >= {tune.max_lr})")
    warm = cfg.get("warmup") or {}
    steps, epochs = warm.get("steps"), cfg.trainer.get("max_epochs")
    if warm.get("interval") == "epoch" and _is_int(steps) and _is_int(epochs) and steps >= epochs:
        problems.append(f"warmup.steps must be shorter than the run ({steps} >= trainer.max_epochs={epochs} epochs): "
                        "lower warmup.steps or train longer")
    if _is_int(steps) and steps > 0 and warm.get("schedule") is None:
        problems.append(f"warmup.steps is {steps} but warmup has no schedule: pick one with warmup=linear")
    activation = cfg.model.get("activation")
    if activation is not None and imports:
        from torch import nn

        layer = getattr(nn, str(activation), None)
        if not (isinstance(layer, type) and issubclass(layer, nn.Module)):
            problems.append(f"model.activation must name a torch.nn activation class such as ReLU, GELU or Tanh "
                            f"(got {cfg.model.activation!r})")
    return problems


def _data_problems(cfg: DictConfig) -> list[str]:
    """IDX datasets: the files exist (or will be downloaded) and start with a valid header."""
    if not str(cfg.data.get("source", "")).endswith(".idx") or cfg.data.get("download"):
        return []
    from lrlab.data.sources import check_idx_files

    try:
        check_idx_files(cfg.data.data_dir, OmegaConf.to_container(cfg.data.files))
    except ConfigError as err:
        return [str(err)]
    return []


def problems(cfg: DictConfig, imports: bool = True) -> list[str]:
    """Every problem with ``cfg``, one line each (empty: the run can start). ``imports=False`` skips what needs torch
    or the targets imported (a sweep that trains in other processes checks those in each job)."""
    found = [p for rule in RULES if (p := rule.problem(cfg))]
    found += _cross_problems(cfg, imports)
    found += _target_problems(cfg, imports)
    if not found:
        found += _data_problems(cfg)
    return found


def validate(cfg: DictConfig) -> None:
    """Raise the first problem as a ConfigError (its key, its value, what to do)."""
    found = problems(cfg)
    if found:
        key, _, rest = found[0].partition(" ")
        raise ConfigError(key, rest)
