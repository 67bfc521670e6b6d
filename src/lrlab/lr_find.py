"""Learning-rate range test with Lightning's ``Tuner.lr_find``: loss vs LR over one short exponential sweep.

lrlab's LR lives at ``optimizer.lr``, not on the module, so the finder runs with ``update_attr=False`` and the
caller applies the suggestion to the config.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from pytorch_lightning.tuner import Tuner

from lrlab.data import TensorDataModule
from lrlab.errors import ConfigError
from lrlab.trainer import instantiate_trainer

log = logging.getLogger("lrlab")


def find_lr(cfg: DictConfig, datamodule: TensorDataModule, out: Path) -> dict[str, Any]:
    """Run the range test on the configured model/optimizer/data; write lr_find.json and lr_find.png into ``out``."""
    from lrlab.training import build_module

    out.mkdir(parents=True, exist_ok=True)
    tune = cfg.tune
    if not 0 < tune.min_lr < tune.max_lr:
        raise ConfigError("tune.min_lr", f"must be > 0 and below tune.max_lr (got {tune.min_lr} and {tune.max_lr})")
    module = build_module(cfg, datamodule)
    trainer = instantiate_trainer(cfg.trainer, default_root_dir=str(out), logger=False, callbacks=[],
                                  enable_checkpointing=False, enable_progress_bar=False)
    steps_per_call, datamodule.steps_per_call = datamodule.steps_per_call, 1  # the finder reads one loss per step
    try:
        finder = Tuner(trainer).lr_find(
            module, datamodule=datamodule, min_lr=tune.min_lr, max_lr=tune.max_lr, num_training=tune.num_training,
            mode=tune.mode, early_stop_threshold=tune.early_stop_threshold, update_attr=False,
        )
    finally:
        datamodule.steps_per_call = steps_per_call
    suggestion = finder.suggestion() if finder is not None else None
    if suggestion is None:
        raise ConfigError("tune.num_training", f"gave too few finite losses for a suggestion (got {tune.num_training} steps): "
                                               "raise it, or lower tune.max_lr")
    result = {"suggestion": suggestion, "lrs": finder.results["lr"], "losses": finder.results["loss"],
              "min_lr": tune.min_lr, "max_lr": tune.max_lr, "mode": tune.mode}
    (out / "lr_find.json").write_text(json.dumps(result, indent=2) + "\n")
    _plot(result, out / "lr_find.png")
    log.info("lr_find: suggested optimizer.lr=%.4g (plot: %s)", suggestion, out / "lr_find.png")
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    # like Lightning's own LRFinder.plot: the first 10 and the last points are left out (smoothing warm-up)
    ax.plot(result["lrs"][10:-1], result["losses"][10:-1], label="training loss (smoothed)")
    ax.axvline(result["suggestion"], color="tab:red", linestyle="--", label=f"suggestion {result['suggestion']:.3g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="loss", title="LR range test")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(cfg: DictConfig) -> float:
    """``lrlab-lr-find``: the range test alone, into its own run dir; returns the suggestion."""
    import pytorch_lightning as pl

    from lrlab.training import build_datamodule
    from lrlab.validate import validate

    validate(cfg)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    out = Path(cfg.output_dir)
    result = find_lr(cfg, build_datamodule(cfg), out)
    print(f"suggested learning rate: {result['suggestion']:.4g}  (lrlab-train optimizer.lr={result['suggestion']:.3g})")
    print(f"plot: {out / 'lr_find.png'}  data: {out / 'lr_find.json'}")
    return result["suggestion"]
