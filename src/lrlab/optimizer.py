"""The ``optimizer`` config group: a torch optimizer class with its settings, built over a network's parameters."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from lrlab.errors import ConfigError


def build_optimizer(cfg: DictConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """``cfg`` is a ``_partial_`` torch optimizer config (``conf/optimizer/*.yaml``)."""
    lr = cfg.get("lr")
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError("optimizer.lr", f"must be > 0 (got {lr})")
    return instantiate(cfg)(params)
