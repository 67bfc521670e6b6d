"""Console entry points. Thin on purpose: ``--help`` and ``--cfg job`` never import torch or Lightning."""

from __future__ import annotations

import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from lrlab.errors import ConfigError
from lrlab.paths import register_resolvers

register_resolvers()
# Lightning 2.6 calls a torch API that torch 2.13 deprecates, on every run; it is noise to a user.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def _config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError behind ``err``, also when Hydra's instantiate wrapped it."""
    while err is not None:
        if isinstance(err, ConfigError):
            return err
        err = err.__cause__ or err.__context__
    return None


def _run(task: Callable[[DictConfig], Any], cfg: DictConfig) -> Any:
    """Run ``task`` the way a user wants to hear about failures.

    A single run: a bad setting is one line on stderr and exit status 2 (``HYDRA_FULL_ERROR=1``: the traceback).
    A sweep job: any failure is one line (or the traceback) and the sweep goes on; the job's metrics.json says
    ``failed``, and lrlab.sweep.SweepSummary exits non-zero at the end.
    """
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        return task(cfg)
    except Exception as err:
        bad = _config_error(err)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            if full:
                traceback.print_exc()
            print(f"lrlab: job {HydraConfig.get().job.num} failed: {bad or f'{type(err).__name__}: {err}'}", file=sys.stderr)
            return None
        if bad is None or full:
            raise
        print(f"lrlab: error: {bad}", file=sys.stderr)
        raise SystemExit(2) from None


@hydra.main(version_base="1.3", config_path="pkg://lrlab.conf", config_name="train")
def train(cfg: DictConfig) -> Any:
    def task(cfg: DictConfig) -> Any:
        from lrlab.validate import validate

        if not isinstance(cfg.get("resume"), str):  # a resumed run is validated with its own config
            validate(cfg)  # before Lightning is even imported: a typo costs a second, not five
        from lrlab.training import train as train_run

        return train_run(cfg)

    return _run(task, cfg)


@hydra.main(version_base="1.3", config_path="pkg://lrlab.conf", config_name="lr_find")
def lr_find(cfg: DictConfig) -> Any:
    from lrlab.lr_find import run

    return _run(run, cfg)
