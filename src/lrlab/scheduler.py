"""The ``scheduler`` and ``warmup`` config groups: torch LR schedulers and how Lightning steps them.

A scheduler config is a ``_partial_`` torch ``lr_scheduler`` class plus two kinds of extra keys:

* Lightning's ``lr_scheduler_config`` keys (``interval``, ``frequency``, ``monitor``, ``strict``, ``name``), which
  say when the scheduler steps; they are handed to Lightning as they are.
* ``run_length_keys``: constructor arguments (``T_max``, ``total_steps``, ``total_iters`` …) that, left null,
  become the run's length in scheduler steps (epochs, or optimizer steps for ``interval: step``).

Nothing here knows a schedule by name: every schedule-specific fact lives in its YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lrlab.errors import ConfigError

# Keys of Lightning's lr_scheduler_config dict (LightningModule.configure_optimizers).
LIGHTNING_KEYS = ("interval", "frequency", "monitor", "strict", "name")

# run_length(interval) -> how many `interval`s (epochs or optimizer steps) the whole run lasts.
RunLength = Callable[[str], int]
LRSchedulerConfig = dict[str, Any]


def _check_interval(key: str, interval: Any) -> None:
    if interval not in ("epoch", "step"):  # Lightning's two units
        raise ConfigError(key, f"must be epoch or step (got {interval!r})")


def _split(cfg: DictConfig, group: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(constructor config, Lightning stepping config, run-length keys) of one scheduler node."""
    node = OmegaConf.to_container(cfg, resolve=True)
    stepping = {k: node.pop(k) for k in LIGHTNING_KEYS if k in node}
    stepping.setdefault("interval", "epoch")
    stepping.setdefault("frequency", 1)
    _check_interval(f"{group}.interval", stepping["interval"])
    if stepping["frequency"] < 1:
        raise ConfigError(f"{group}.frequency", f"must be >= 1 (got {stepping['frequency']})")
    return node, stepping, list(node.pop("run_length_keys", None) or [])


def _scheduler_steps(stepping: dict[str, Any], run_length: RunLength) -> int:
    return run_length(stepping["interval"]) // stepping["frequency"]


def build_schedulers(
    scheduler_cfg: DictConfig,
    warmup_cfg: DictConfig,
    optimizer: torch.optim.Optimizer,
    run_length: RunLength,
) -> list[LRSchedulerConfig]:
    """Lightning ``lr_scheduler_config`` dicts for ``optimizer``: the schedule, wrapped in its warmup if any.

    Warmup and schedule on the same ``interval``: one ``SequentialLR`` — warmup for ``warmup.steps``, then the
    schedule, whose null run-length keys cover the rest of the run. A schedule that steps on a monitored metric
    (plateau) or on another interval cannot sit inside ``SequentialLR``; then the warmup is a second scheduler on
    the same optimizer, stepped on its own interval, that multiplies the LR by its ramp for its first steps.
    """
    ctor, stepping, length_keys = _split(scheduler_cfg, "scheduler")
    total = _scheduler_steps(stepping, run_length)
    warm_steps = int(warmup_cfg.get("steps") or 0)
    if warm_steps < 0:
        raise ConfigError("warmup.steps", f"must be >= 0 (got {warm_steps})")
    if not warm_steps:
        return [{"scheduler": _instantiate(ctor, length_keys, total, optimizer), **stepping}]

    if warmup_cfg.get("schedule") is None:
        raise ConfigError("warmup.steps", f"is {warm_steps} but warmup has no schedule: pick one with warmup=linear")
    warm_ctor = OmegaConf.to_container(warmup_cfg.schedule, resolve=True)
    warm_stepping = {"interval": warmup_cfg.interval, "frequency": 1}
    _check_interval("warmup.interval", warm_stepping["interval"])
    warm_total = _scheduler_steps(warm_stepping, run_length)
    if warm_steps >= warm_total:
        raise ConfigError(
            "warmup.steps",
            f"must be shorter than the run ({warm_steps} >= {warm_total} {warm_stepping['interval']}s): "
            "lower warmup.steps or train longer",
        )
    same_clock = warm_stepping["interval"] == stepping["interval"] and warm_stepping["frequency"] == stepping["frequency"]
    if same_clock and not stepping.get("monitor"):
        main = _instantiate(ctor, length_keys, total - warm_steps, optimizer)
        warm = instantiate(warm_ctor)(optimizer)
        sequential = torch.optim.lr_scheduler.SequentialLR(optimizer, [warm, main], milestones=[warm_steps])
        return [{"scheduler": sequential, **stepping}]
    main = _instantiate(ctor, length_keys, total, optimizer)
    warm = instantiate(warm_ctor)(optimizer)  # built last: its start factor applies on top of the schedule's LR
    return [{"scheduler": main, **stepping}, {"scheduler": warm, **warm_stepping}]


def _instantiate(
    ctor: dict[str, Any], length_keys: list[str], length: int, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler:
    ctor = dict(ctor)
    for key in length_keys:
        if ctor.get(key) is None:
            ctor[key] = length
    return instantiate(ctor)(optimizer)


def is_due(interval: str, frequency: int, now: str, count: int) -> bool:
    """Whether a scheduler on ``interval``/``frequency`` steps at the ``count``-th ``now`` (1-based: the batch
    within the epoch for ``step``, the epoch for ``epoch``) — Lightning's rule in automatic optimization."""
    return interval == now and count % frequency == 0
