"""The ``trainer``, ``logger`` and ``callbacks`` config groups, instantiated into one Lightning Trainer."""

from __future__ import annotations

from collections.abc import Sequence

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig


def build_trainer(cfg: DictConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """``cfg.callbacks`` is a mapping name → callback config (a null entry switches that callback off)."""
    callbacks = [instantiate(node) for node in (cfg.get("callbacks") or {}).values() if node]
    logger = instantiate(cfg.logger) if cfg.get("logger") else False
    return instantiate(cfg.trainer, callbacks=[*callbacks, *extra_callbacks], logger=logger)
