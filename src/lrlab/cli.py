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


def _quick_help() -> bool:
    """``--help`` without Hydra's scan of its ~100 own config groups (0.6 s): lrlab's groups and options, read
    straight from the packaged conf/. Hydra answers when the search path is extended (its scan sees those)."""
    argv = sys.argv[1:]
    if not ({"--help", "-h"} & set(argv)) or any(a.startswith(("--config-dir", "-cd", "hydra.searchpath")) for a in argv):
        return False
    from importlib.resources import files

    from omegaconf import OmegaConf

    conf = files("lrlab.conf")
    text = OmegaConf.load(conf.joinpath("train.yaml")).hydra.help
    groups = {d.name: sorted(f.name[:-5] for f in d.iterdir() if f.name.endswith(".yaml"))
              for d in conf.iterdir() if d.is_dir() and d.name not in ("hydra", "__pycache__")}
    print(text.header)
    print("== Config groups (pick one with group=option) ==")
    print("\n".join(f"{g}: {', '.join(options)}" for g, options in sorted(groups.items())))
    print()
    print(text.footer)
    return True


@hydra.main(version_base="1.3", config_path="pkg://lrlab.conf", config_name="train")
def _train(cfg: DictConfig) -> Any:
    def task(cfg: DictConfig) -> Any:
        from lrlab.validate import validate

        if not isinstance(cfg.get("resume"), str):  # a resumed run is validated with its own config
            validate(cfg)  # before any data is loaded or anything is written into the run dir
        from lrlab.training import train as train_run

        return train_run(cfg)

    return _run(task, cfg)


def train() -> Any:
    """``lrlab-train``: the Hydra app."""
    return None if _quick_help() else _train()


@hydra.main(version_base="1.3", config_path="pkg://lrlab.conf", config_name="lr_find")
def lr_find(cfg: DictConfig) -> Any:
    from lrlab.lr_find import run

    return _run(run, cfg)
