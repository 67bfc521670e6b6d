"""The ``trainer``, ``logger`` and ``callbacks`` config groups, instantiated into one Lightning Trainer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import ProgressBar


def build_trainer(cfg: DictConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """``cfg.callbacks`` is a mapping name → callback config (a null entry switches that callback off).

    ``trainer.enable_progress_bar=false`` alone switches the bar off: a configured progress-bar callback is
    then left out (Lightning would refuse the combination).
    """
    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node]
    if cfg.trainer.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    return instantiate_trainer(cfg.trainer, callbacks=[*callbacks, *extra_callbacks], logger=logger)


# Trainer arguments lrlab's training step applies itself (Lightning applies them only in automatic optimization)
CLIP_KEYS = ("gradient_clip_val", "gradient_clip_algorithm")


def instantiate_trainer(trainer_cfg: DictConfig, **kwargs: Any) -> pl.Trainer:
    return instantiate(trainer_cfg, **{key: None for key in CLIP_KEYS}, **kwargs)


def gradient_clip(trainer_cfg: DictConfig) -> dict[str, Any] | None:
    """``trainer.gradient_clip_val`` / ``gradient_clip_algorithm`` as ``LightningModule.clip_gradients``
    arguments, or None when clipping is off."""
    if not trainer_cfg.get("gradient_clip_val"):
        return None
    return {key: trainer_cfg.get(key) for key in CLIP_KEYS if trainer_cfg.get(key) is not None}
