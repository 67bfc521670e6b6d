"""lrlab's training step: several optimizer steps per Lightning step, and the same run whatever their number.

The speed itself is measured by `make bench`, not here; these tests pin what makes the fast path safe to be the
default: identical records and TensorBoard curves for any `steps_per_call`, Lightning's own per-step path (and
its hooks) whenever anything implements them, max_steps, and gradient clipping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from conftest import scalars
from lrlab.data import StepChunks
from lrlab.training import build_datamodule, build_module, train
from lrlab.trainer import build_trainer

STEPS_PER_EPOCH = 23  # digits: 1,797 samples, 20% held out, batch 64


def _record(cfg) -> dict:
    train(cfg)
    record = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
    for row in record["history"]:
        row.pop("train_s")  # wall time
    return {k: record[k] for k in ("status", "epochs", "global_step", "final", "best", "history", "diverged")
            if k in record}


@pytest.mark.parametrize("setting", [
    ["scheduler=onecycle", "optimizer=sgd", "optimizer.lr=0.5"],                    # per-step schedule
    ["scheduler=plateau", "scheduler.patience=0", "warmup=linear", "warmup.steps=10"],  # per-epoch + chained warmup
    ["scheduler=step", "scheduler.interval=step", "scheduler.frequency=4", "scheduler.step_size=2"],  # frequency
    ["optimizer=sgd", "optimizer.lr=30", "divergence.max_loss_ratio=3"],            # diverges mid-epoch
], ids=["onecycle", "plateau-warmup", "step-frequency", "diverged"])
def test_steps_per_call_does_not_change_the_run(make_cfg, setting):
    """metrics.json and every TensorBoard point are bit-identical for 1, 5 (not a divisor of the 23 steps of an
    epoch) and 64 (more than an epoch) optimizer steps per Lightning step."""
    runs = {k: make_cfg(*setting, "trainer.max_epochs=3", f"steps_per_call={k}") for k in (1, 5, 64)}
    records = {k: _record(cfg) for k, cfg in runs.items()}
    curves = {k: scalars(Path(cfg.output_dir)) for k, cfg in runs.items()}
    assert records[1] == records[5] == records[64]
    assert curves[1] == curves[5] == curves[64]
    if "diverged" in records[1]:  # stopped at the very step, not at the end of its chunk
        assert records[1]["global_step"] == records[1]["diverged"]["step"] < STEPS_PER_EPOCH
    else:
        assert records[1]["global_step"] == 3 * STEPS_PER_EPOCH


class StepHookCounter(pl.Callback):
    """Implements the per-step hooks of Lightning's manual optimization: their presence selects Lightning's path."""

    def __init__(self):
        self.backward = self.optimizer_steps = 0

    def on_after_backward(self, trainer, pl_module):
        self.backward += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.optimizer_steps += 1


def _fit(cfg, *callbacks):
    datamodule = build_datamodule(cfg)
    pl.seed_everything(cfg.seed, verbose=False)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, extra_callbacks=callbacks)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer


def test_the_default_run_steps_torch_directly_and_a_step_hook_gets_lightnings_path(make_cfg):
    direct_module, direct = _fit(make_cfg("logger=none"))
    counter = StepHookCounter()
    hooked_module, hooked = _fit(make_cfg("logger=none"), counter)
    assert isinstance(direct.train_dataloader, StepChunks) and direct.train_dataloader.size == 64
    assert direct_module.direct_steps and not hooked_module.direct_steps
    assert counter.backward == counter.optimizer_steps == hooked.global_step == direct.global_step == 2 * STEPS_PER_EPOCH
    assert direct.callback_metrics.keys() == hooked.callback_metrics.keys()
    for key, value in direct.callback_metrics.items():
        assert torch.equal(value, hooked.callback_metrics[key]), key
    for a, b in zip(direct_module.parameters(), hooked_module.parameters()):
        assert torch.equal(a, b)


def test_max_steps_ends_the_run_inside_a_chunk(make_cfg):
    cfg = make_cfg("+trainer.max_steps=10", "scheduler=onecycle", "optimizer=sgd", "optimizer.lr=0.5")
    record = _record(cfg)
    lr = [v for _, v in scalars(Path(cfg.output_dir))["lr-SGD"]]
    assert record["global_step"] == 10 and record["status"] == "completed"
    assert len(lr) == 10 and max(lr) == pytest.approx(0.5, rel=1e-3)  # onecycle spans the 10 steps


def test_gradient_clip_val_is_applied(make_cfg):
    def weight_change(*overrides):
        cfg = make_cfg("optimizer=sgd", "optimizer.lr=0.5", "trainer.max_epochs=1", "logger=none", *overrides)
        datamodule = build_datamodule(cfg)
        module = build_module(cfg, datamodule)
        before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
        build_trainer(cfg).fit(module, datamodule=datamodule)
        return (torch.cat([p.detach().flatten() for p in module.parameters()]) - before).norm().item()

    clip, params = 1e-6, 64 * 128 + 128 + 128 * 10 + 10  # the digits MLP
    # norm clipping: every step moves the weights by at most lr x clip; value clipping: lr x clip per weight
    assert weight_change(f"+trainer.gradient_clip_val={clip}") <= STEPS_PER_EPOCH * 0.5 * clip * 1.001
    by_value = weight_change(f"+trainer.gradient_clip_val={clip}", "+trainer.gradient_clip_algorithm=value")
    assert 0 < by_value <= STEPS_PER_EPOCH * 0.5 * clip * params**0.5 * 1.001
    assert weight_change() > 1000 * by_value
