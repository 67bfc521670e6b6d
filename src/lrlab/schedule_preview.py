"""``lrlab-schedule``: plot the learning rate a run would follow, step by step, without training it.

It composes the same config as ``lrlab-train`` and builds the schedulers with the same function
(:func:`lrlab.scheduler.build_schedulers`) over a one-parameter optimizer, then steps them by the rule a run
uses (Lightning's, :func:`lrlab.scheduler.is_due`): ``interval: step`` schedulers after every optimizer step,
``interval: epoch`` ones after every epoch. Data is
loaded only to count the batches of an epoch. A plateau schedule is fed a metric that never improves (its
fastest possible decay).

    lrlab-schedule scheduler=cosine,onecycle warmup=none,linear     # comma lists overlay every combination
    lrlab-schedule scheduler=step scheduler=exponential --out lr.png  # a repeated key overlays too
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from lrlab.errors import ConfigError
from lrlab.paths import register_resolvers
from lrlab.scheduler import is_due
from lrlab.validate import validate

# Shares of the run at which the LR is printed.
MILESTONES = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def lr_curve(cfg: DictConfig) -> tuple[list[float], int]:
    """The LR of every optimizer step of the run ``cfg`` describes, and the optimizer steps per epoch."""
    from lrlab.optimizer import build_optimizer
    from lrlab.scheduler import build_schedulers
    from lrlab.training import build_datamodule

    steps_per_epoch = len(build_datamodule(cfg).train_dataloader().batches)  # one optimizer step per batch
    epochs = cfg.trainer.max_epochs
    total = steps_per_epoch * epochs
    if (cfg.trainer.get("max_steps") or -1) > 0:
        total = min(total, cfg.trainer.max_steps)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = build_optimizer(cfg.optimizer, [param])
    configs = build_schedulers(cfg.scheduler, cfg.warmup, optimizer,
                               lambda interval: total if interval == "step" else epochs)
    lrs = []
    for step in range(1, total + 1):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: nothing moves, but torch sees the step it expects before a scheduler's
        _step_due(configs, "step", (step - 1) % steps_per_epoch + 1)
        if step % steps_per_epoch == 0:
            _step_due(configs, "epoch", step // steps_per_epoch)
    return lrs, steps_per_epoch


def _step_due(configs: list[dict], interval: str, count: int) -> None:
    for config in configs:
        if is_due(config["interval"], config["frequency"], interval, count):
            if config.get("monitor"):
                config["scheduler"].step(1.0)  # a metric that never improves
            else:
                config["scheduler"].step()


def expand(args: list[str]) -> list[list[str]]:
    """Every combination of the overrides: ``a=1,2`` and a key given twice (``a=1 a=2``) both mean several values."""
    values: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(args):
        key = override.get_key_element()
        found = list(override.sweep_string_iterator()) if override.is_sweep_override() else [override.get_value_element_as_str()]
        values.setdefault(key, []).extend(found)
    return [[f"{k}={v}" for k, v in zip(values, combo)] for combo in itertools.product(*values.values())]


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        print(__doc__)
        return
    out = Path("outputs/schedules/schedule.png")
    if "--out" in args:
        i = args.index("--out")
        out = Path(args[i + 1])
        del args[i : i + 2]
    register_resolvers()
    curves = []
    try:
        for combo in expand(args):
            with initialize_config_module("lrlab.conf", version_base="1.3"):
                cfg = compose("train", overrides=[*combo, "output_dir=unused"])
            validate(cfg)
            curves.append((" ".join(combo) or "defaults", *lr_curve(cfg)))
    except ConfigError as err:
        sys.exit(f"lrlab-schedule: error: {err}")
    for label, lrs, steps_per_epoch in curves:
        total = len(lrs)
        marks = "  ".join(f"{int(share * 100)}%:{lrs[min(int(share * (total - 1)), total - 1)]:.3g}" for share in MILESTONES)
        print(f"{label}: {total} steps ({steps_per_epoch}/epoch), lr min {min(lrs):.3g} max {max(lrs):.3g} | {marks}")
    _plot(curves, out)
    print(f"plot: {out}")


def _plot(curves: list[tuple[str, list[float], int]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, lrs, _ in curves:
        ax.plot(range(len(lrs)), lrs, label=label)
    ax.set(xlabel="optimizer step", ylabel="learning rate", title="learning-rate schedule")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
