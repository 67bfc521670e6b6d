"""One training run, from a composed config to a finished run dir. Callable from tests with ``hydra.compose``."""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lrlab.data import TensorDataModule
from lrlab.errors import ConfigError
from lrlab.model import build_network
from lrlab.module import Classifier
from lrlab.optimizer import build_optimizer
from lrlab.record import RECORD_NAME, RecordCallback, RunRecord
from lrlab.scheduler import build_schedulers
from lrlab.trainer import build_trainer

log = logging.getLogger("lrlab")


def hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """The run's settings as a plain dict (what Lightning stores in hparams.yaml and checkpoints)."""
    keys = ("seed", "data", "model", "optimizer", "scheduler", "warmup", "trainer")
    return {
        k: (OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]) for k in keys if k in cfg
    }


def build_datamodule(cfg: DictConfig) -> TensorDataModule:
    datamodule = instantiate(cfg.data)
    datamodule.setup()
    return datamodule


def build_module(cfg: DictConfig, datamodule: TensorDataModule) -> Classifier:
    """Network, optimizer and schedulers as three separate steps, wired into one LightningModule."""
    net = build_network(cfg.model, datamodule.input_shape, datamodule.num_classes)
    return Classifier(
        net,
        make_optimizer=functools.partial(build_optimizer, cfg.optimizer),
        make_schedulers=functools.partial(build_schedulers, cfg.scheduler, cfg.warmup),
        hparams=hyperparameters(cfg),
    )


def train(cfg: DictConfig) -> float | None:
    """Train, validate (and test when the data has a test split); return the objective's best value."""
    out = Path(cfg.output_dir)
    record_path = out / RECORD_NAME
    if record_path.exists():
        raise ConfigError("output_dir", f"{out} already holds a run ({RECORD_NAME}): lrlab never overwrites a run; pick a new dir")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)

    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    record = RunRecord(
        record_path,
        objective=cfg.objective.metric,
        best_of={**cfg.best_of, cfg.objective.metric: cfg.objective.mode},
        info={"seed": cfg.seed, "overrides": _overrides()},
    )
    trainer = build_trainer(cfg, extra_callbacks=[RecordCallback(record)])
    try:
        trainer.fit(module, datamodule=datamodule)
        if datamodule.has_split("test"):
            trainer.test(module, datamodule=datamodule, verbose=False)
    except Exception as err:
        if trainer.is_global_zero:
            record.write("failed", error=f"{type(err).__name__}: {err}")
        raise
    if trainer.is_global_zero:
        record.write("interrupted" if trainer.interrupted else "completed")
        _summarise(record, out)
    return record.objective_value()


def _overrides() -> list[str]:
    """The command-line overrides of this run (empty outside a Hydra app, e.g. under ``hydra.compose``)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _summarise(record: RunRecord, out: Path) -> None:
    final = record.history[-1] if record.history else {}
    shown = {k: final[k] for k in record.best_of if k in final} | record.test
    metrics = "  ".join(f"{k}={v:.4g}" for k, v in shown.items())
    log.info("finished %d epochs in %.1f s: %s", len(record.history), time.time() - record.started, metrics)
    log.info("run dir: %s  (metrics.json; TensorBoard: tensorboard --logdir %s)", out, out)
