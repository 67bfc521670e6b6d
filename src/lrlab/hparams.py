"""TensorBoard HParams: each run's settings with its final metrics, so the dashboard shows the grid with real values."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger

# Groups whose settings are hyperparameters of a run (data: only how it is batched, not where it lives).
GROUPS = ("model", "optimizer", "scheduler", "warmup")
DATA_KEYS = ("batch_size", "val_fraction", "normalize")


def _scalar(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def hparams_of(cfg: DictConfig) -> dict[str, Any]:
    """Flat ``group.key`` → scalar; each group's ``_target_`` becomes its class name (``optimizer: SGD``)."""
    out: dict[str, Any] = {"seed": cfg.seed, "trainer.max_epochs": cfg.trainer.get("max_epochs")}
    for group in GROUPS:
        node = OmegaConf.to_container(cfg[group], resolve=True) if cfg.get(group) is not None else {}
        for key, value in node.items():
            if key == "_target_":
                out[group] = str(value).rsplit(".", 1)[-1]
            elif key == "schedule" and isinstance(value, dict):  # the warmup's own scheduler
                out[f"{group}.schedule"] = str(value.get("_target_", "")).rsplit(".", 1)[-1]
            elif not key.startswith("_") and key != "run_length_keys":
                out[f"{group}.{key}"] = _scalar(value)
    out |= {f"data.{k}": _scalar(cfg.data[k]) for k in DATA_KEYS if k in cfg.data}
    out["data"] = str(cfg.data.get("source", "")).rsplit(".", 1)[-1]
    return out


def log_hparams(trainer: pl.Trainer, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the HParams summary to every TensorBoard logger. ``metrics`` tags must not be logged elsewhere."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(params, metrics)
            logger.save()
