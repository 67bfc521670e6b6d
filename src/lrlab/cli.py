"""Console entry points. Thin on purpose: ``--help`` and ``--cfg job`` never import torch or Lightning."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from lrlab.errors import ConfigError
from lrlab.paths import register_resolvers

register_resolvers()


def _config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError behind ``err``, also when Hydra's instantiate wrapped it."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__ or err.__context__
    return None


def _run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task``; a bad setting becomes one line on stderr and exit status 2 (HYDRA_FULL_ERROR=1: traceback)."""
    try:
        return task(cfg)
    except Exception as err:
        bad = _config_error(err)
        if bad is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"lrlab: error: {bad}", file=sys.stderr)
        raise SystemExit(2) from None


@hydra.main(version_base="1.3", config_path="pkg://lrlab.conf", config_name="train")
def train(cfg: DictConfig) -> Any:
    from lrlab.training import train as train_run

    return _run(train_run, cfg)
