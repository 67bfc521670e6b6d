"""One training run, from a composed config to a finished run dir. Callable from tests with ``hydra.compose``."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from pytorch_lightning.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from lrlab.data import TensorDataModule
from lrlab.divergence import DivergenceGuard
from lrlab.errors import ConfigError
from lrlab.hparams import hparams_of, log_hparams
from lrlab.interrupt import GracefulStop, Interrupted
from lrlab.model import build_network
from lrlab.module import Classifier
from lrlab.optimizer import build_optimizer
from lrlab.paths import ATTEMPTS_DIR, RECORD_NAME
from lrlab.record import RecordCallback, RunRecord
from lrlab.scheduler import build_schedulers
from lrlab.trainer import build_trainer, gradient_clip
from lrlab.validate import validate

log = logging.getLogger("lrlab")

FINISHED = ("completed", "diverged", "pruned")  # outcomes a resumed run or sweep skips


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as a plain dict (what Lightning stores in hparams.yaml and checkpoints)."""
    keys = ("seed", "data", "model", "optimizer", "scheduler", "warmup", "trainer")
    return {
        k: (OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]) for k in keys if k in cfg
    }


def build_datamodule(cfg: DictConfig) -> TensorDataModule:
    datamodule = instantiate(cfg.data, steps_per_call=cfg.get("steps_per_call", 1))
    datamodule.setup()
    return datamodule


def build_module(cfg: DictConfig, datamodule: TensorDataModule, divergence: DivergenceGuard | None = None) -> Classifier:
    """Network, optimizer and schedulers as three separate steps, wired into one LightningModule (which checks
    ``divergence`` on each step's loss, when given)."""
    net = build_network(cfg.model, datamodule.input_shape, datamodule.num_classes)
    return Classifier(
        net,
        make_optimizer=functools.partial(build_optimizer, cfg.optimizer),
        make_schedulers=functools.partial(build_schedulers, cfg.scheduler, cfg.warmup),
        hparams=hyperparameters(cfg),
        gradient_clip=gradient_clip(cfg.trainer),
        divergence=divergence,
    )


def train(cfg: DictConfig) -> float | None:
    """Train, validate (and test when the data has a test split); return the objective's best value.

    metrics.json is written before anything can fail, so a job that dies still leaves ``status: failed`` and its
    error. A diverged run returns ``objective.diverged_value`` (null: the worst possible value) for sweepers.
    """
    cfg = _resumed_config(cfg)
    validate(cfg)
    out = Path(cfg.output_dir)
    record_path = out / RECORD_NAME
    writes = rank_zero_only.rank == 0  # with strategy=ddp every rank runs this function; rank 0 keeps the record
    ckpt_path, history = None, []
    if record_path.exists() and writes:
        previous = json.loads(record_path.read_text())
        if previous.get("status") in FINISHED and cfg.get("resume"):
            log.info("resume: %s is already %s; skipped", out, previous["status"])
            return previous.get("objective", {}).get("value")
        ckpt_path, history = _resume_point(cfg, out, previous)
    out.mkdir(parents=True, exist_ok=True)
    threads = cfg.get("threads") or _fair_share_of_threads()
    if threads:
        torch.set_num_threads(threads)
    record = RunRecord(record_path, objective=cfg.objective.metric,
                       best_of={**cfg.best_of, cfg.objective.metric: cfg.objective.mode},
                       info={"seed": cfg.seed, "overrides": _overrides(), "threads": torch.get_num_threads()})
    record.history = list(history)
    if writes:
        record.write("running")
    guard = DivergenceGuard(**cfg.divergence)
    stop = GracefulStop()
    pruning = None
    trainer = None
    try:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        datamodule = build_datamodule(cfg)
        if cfg.tune.lr_find:
            record.info["lr_find"] = _apply_lr_find(cfg, datamodule, out)
        module = build_module(cfg, datamodule, divergence=guard)
        callbacks: list[pl.Callback] = [RecordCallback(record, guard), guard, stop]
        if cfg.get("trial"):  # a job of an Optuna search (hydra/sweeper=lrlab_optuna)
            from lrlab.pruning import TrialPruning

            pruning = TrialPruning(cfg.trial, cfg.objective.metric)
            callbacks.append(pruning)
            record.info["trial"] = cfg.trial.number
        trainer = build_trainer(cfg, extra_callbacks=callbacks)
        fit_start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
        record.info["fit_s"] = round(time.perf_counter() - fit_start, 3)  # the rest of wall_time_s is set-up
        record.adopt_written()
        if datamodule.has_split("test") and not _diverged(guard, record):
            trainer.test(module, datamodule=datamodule, verbose=False)
            record.adopt_written()
    except Interrupted as err:
        if writes:
            record.write("interrupted", signal=signal.Signals(err.signum).name)
            log.warning("interrupted by %s after step %d: continue with `lrlab-train resume=%s`",
                        signal.Signals(err.signum).name, record.global_step, out)
        raise SystemExit(128 + err.signum) from None
    except Exception as err:
        if writes:
            status = "diverged" if _diverged(guard, record) else "failed"
            record.write(status, error=f"{type(err).__name__}: {err}")
            if trainer is not None:
                log_hparams(trainer, hparams_of(cfg), _hparams_metrics(record, status))
        raise
    if _diverged(guard, record):
        status = "diverged"
    elif pruning is not None and pruning.pruned_at is not None:
        status = "pruned"
    else:
        status = "completed"
    if writes:
        record.write(status)
        log_hparams(trainer, hparams_of(cfg), _hparams_metrics(record, status))
        _summarise(record, status, out)
    if status == "diverged":
        return _diverged_value(cfg)
    return record.objective_value()


def _diverged(guard: DivergenceGuard, record: RunRecord) -> dict[str, Any] | None:
    """The divergence found here, or by a spawned worker (ddp_spawn); either way it ends up in the record."""
    if guard.diverged:
        record.info["diverged"] = guard.diverged
    return record.info.get("diverged")


def _resume_point(cfg: DictConfig, out: Path, previous: dict[str, Any]) -> tuple[Path | None, list[dict[str, Any]]]:
    """Where a run in a dir that already holds one starts: its last checkpoint (interrupted), or from scratch with
    the old attempt set aside (failed). Without ``resume`` the dir is refused: lrlab never overwrites a run."""
    if not cfg.get("resume"):
        raise ConfigError("output_dir", f"{out} already holds a run ({RECORD_NAME}): lrlab never overwrites a run; "
                                        "pick a new dir, or continue it with resume=true")
    last = out / "checkpoints" / "last.ckpt"
    if previous.get("status") in ("interrupted", "running") and last.exists():
        history = previous.get("history", [])
        log.info("resume: continuing %s from %s (epoch %d)", out, last, len(history))
        return last, history
    kept = _set_aside(out)
    log.info("resume: rerunning %s from scratch (its %s attempt is kept in %s)", out, previous.get("status"), kept)
    return None, []


def _resumed_config(cfg: DictConfig) -> DictConfig:
    """With ``resume=<run dir>``: that run's own config (from its .hydra/), so it continues exactly as it began."""
    resume = cfg.get("resume")
    if not isinstance(resume, str) or not resume:
        return cfg
    run = Path(resume).expanduser()
    saved = run / ".hydra" / "config.yaml"
    if not (run / RECORD_NAME).exists() or not saved.exists():
        raise ConfigError("resume", f"{run} is not a run dir (no {RECORD_NAME} or .hydra/config.yaml): give a dir under "
                                    "outputs/runs or outputs/multirun")
    original = OmegaConf.load(saved)
    with open_dict(original):
        original.output_dir = str(run.resolve())
        original.resume = True
    return original


def _set_aside(out: Path) -> Path:
    """Move a failed attempt's files (record, events, checkpoints) into ``attempts/<n>/``: rerun, but lose nothing."""
    attempts = out / ATTEMPTS_DIR
    kept = attempts / str(len(list(attempts.glob("*"))) if attempts.exists() else 0)
    kept.mkdir(parents=True)
    for path in out.iterdir():
        if path.name not in (".hydra", ATTEMPTS_DIR) and not path.name.endswith(".log"):
            shutil.move(str(path), kept / path.name)
    return kept


def _apply_lr_find(cfg: DictConfig, datamodule: TensorDataModule, out: Path) -> dict[str, Any]:
    """Run the range test into ``out/lr_find``, set ``optimizer.lr`` to its suggestion; return what to record."""
    from lrlab.lr_find import find_lr

    found = find_lr(cfg, datamodule, out / "lr_find")
    with open_dict(cfg):
        cfg.optimizer.lr = found["suggestion"]
    log.info("lr_find: training with optimizer.lr=%.4g (the range test's suggestion)", found["suggestion"])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # training starts from the same seed as without it
    return {"suggestion": found["suggestion"], "dir": str(out / "lr_find")}


def _diverged_value(cfg: DictConfig) -> float:
    if cfg.objective.diverged_value is not None:
        return float(cfg.objective.diverged_value)
    return -math.inf if cfg.objective.mode == "max" else math.inf


def _hparams_metrics(record: RunRecord, status: str) -> dict[str, float]:
    """Tags of their own (``hparams/...``), so the HParams summary never adds points to the real curves."""
    final = record.history[-1] if record.history else {}
    metrics = {f"hparams/{k.replace('/', '_')}_final": final[k] for k in record.best_of if k in final}
    metrics |= {f"hparams/{k.replace('/', '_')}_best": v["value"] for k, v in record.best().items()}
    metrics |= {f"hparams/{k.replace('/', '_')}": v for k, v in record.test.items()}
    return metrics | {"hparams/epochs": float(len(record.history)), "hparams/diverged": float(status == "diverged")}


def _fair_share_of_threads() -> int | None:
    """Under a launcher that runs ``n_jobs`` jobs at once (joblib), each job's share of the cores."""
    if not HydraConfig.initialized():
        return None
    n_jobs = OmegaConf.select(HydraConfig.get(), "launcher.n_jobs")
    if not n_jobs:
        return None
    cores = os.cpu_count() or 1
    return max(1, cores // (cores if n_jobs < 0 else min(n_jobs, cores)))


def _overrides() -> list[str]:
    """The command-line overrides of this run (empty outside a Hydra app, e.g. under ``hydra.compose``)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _summarise(record: RunRecord, status: str, out: Path) -> None:
    final = record.history[-1] if record.history else {}
    shown = {k: final[k] for k in record.best_of if k in final} | record.test
    metrics = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
    log.info("%s: %d epochs in %.1f s: %s", status, len(record.history), time.time() - record.started, metrics)
    log.info("run dir: %s  (metrics.json; TensorBoard: tensorboard --logdir %s)", out, out)
