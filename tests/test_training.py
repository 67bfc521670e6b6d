"""Real training runs on the bundled digits data: every schedule, warmup, the seed presets' LR formulas."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import lr_tag, scalars
from test_config import options
from lrlab.errors import ConfigError
from lrlab.training import train

STEPS_PER_EPOCH = 23  # digits: 1,797 samples, 20% held out, batch 64 -> ceil(1438 / 64)


def run(cfg) -> tuple[dict, dict[str, list[tuple[int, float]]]]:
    """Train; return metrics.json and the TensorBoard scalars of the run."""
    value = train(cfg)
    record = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
    assert value == record["objective"]["value"]
    return record, scalars(Path(cfg.output_dir))


def lrs(tags) -> list[float]:
    return [v for _, v in tags[lr_tag(tags)]]


def test_default_run_records_metrics_and_tensorboard(make_cfg):
    record, tags = run(make_cfg())
    assert record["status"] == "completed"
    assert record["epochs"] == 2 and record["global_step"] == 2 * STEPS_PER_EPOCH
    assert set(record["best"]) == {"val/loss", "val/acc"}
    assert record["objective"] == {"metric": "val/acc", "mode": "max", "value": record["best"]["val/acc"]["value"]}
    assert 0 < record["final"]["val/acc"] <= 1 and record["wall_time_s"] > 0
    for tag in ("train/loss", "train/acc", "val/loss", "val/acc", "train/loss_epoch"):
        assert tag in tags, tag
    assert len(tags["train/loss"]) == 2 * STEPS_PER_EPOCH  # one point per step (log_every_n_steps=1)
    assert lrs(tags) == pytest.approx([1e-3] * 2 * STEPS_PER_EPOCH)


def test_training_learns_and_is_reproducible(make_cfg):
    first, _ = run(make_cfg("trainer.max_epochs=3"))
    second, _ = run(make_cfg("trainer.max_epochs=3"))
    assert first["final"] == second["final"]
    assert first["history"][-1]["val/loss"] < first["history"][0]["val/loss"]
    assert first["final"]["val/acc"] > 0.8


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_scheduler_trains_with_and_without_warmup(make_cfg, scheduler):
    warm_steps = 10
    plain, plain_tags = run(make_cfg(f"scheduler={scheduler}", "optimizer=sgd", "optimizer.lr=0.1"))
    warm, warm_tags = run(make_cfg(f"scheduler={scheduler}", "optimizer=sgd", "optimizer.lr=0.1",
                                   "warmup=linear", f"warmup.steps={warm_steps}"))
    assert plain["status"] == warm["status"] == "completed"
    plain_lr, warm_lr = lrs(plain_tags), lrs(warm_tags)
    assert len(warm_lr) == 2 * STEPS_PER_EPOCH
    assert warm_lr[0] == pytest.approx(0.01 * plain_lr[0])  # warmup.start_factor x where the schedule starts
    assert all(a < b for a, b in zip(warm_lr[:warm_steps], warm_lr[1 : warm_steps + 1]))  # a rising ramp
    assert warm_lr[warm_steps] == pytest.approx(plain_lr[0])  # then the schedule, from its own start


def test_per_step_schedule_spans_the_run_after_warmup(make_cfg):
    """cosine's T_max left null covers the run after warmup: the LR ends at eta_min on the last step."""
    cfg = make_cfg("scheduler=cosine", "optimizer.lr=0.01", "warmup=linear", "warmup.steps=6")
    _, tags = run(cfg)
    total = 2 * STEPS_PER_EPOCH
    expected_last = 0.5 * 0.01 * (1 + math.cos(math.pi * (total - 1 - 6) / (total - 6)))
    assert lrs(tags)[-1] == pytest.approx(expected_last, rel=1e-5)


def test_onecycle_spans_the_whole_run(make_cfg):
    _, tags = run(make_cfg("scheduler=onecycle", "optimizer=sgd", "optimizer.lr=0.5"))
    lr = lrs(tags)
    peak = max(range(len(lr)), key=lr.__getitem__)
    assert lr[0] == pytest.approx(0.5 / 25) and lr[peak] == pytest.approx(0.5, rel=1e-3)
    assert peak == pytest.approx(0.3 * len(lr), abs=2) and lr[-1] < lr[0] / 100


def test_warmup_longer_than_run_is_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"warmup.steps must be shorter than the run \(500 >= 46 steps\)"):
        train(make_cfg("warmup=linear", "warmup.steps=500"))


def epoch_lrs(tags) -> list[float]:
    """The LR of each epoch: the logged LR at the epoch's first step."""
    per_step = dict(tags[lr_tag(tags)])
    return [per_step[s] for s in sorted(per_step) if s % STEPS_PER_EPOCH == 0]


def test_seed_fixed_adam_keeps_lr(make_cfg):
    cfg = make_cfg("experiment=seed_fixed_adam", "data=digits", "trainer.max_epochs=2")
    assert cfg.model.hidden == [64] and cfg.data.batch_size == 32
    _, tags = run(cfg)
    lr = lrs(tags)
    assert len(lr) == 2 * math.ceil(1438 / 32) and lr == pytest.approx([1e-3] * len(lr))


def test_seed_sgd_steplr_matches_the_article(make_cfg):
    cfg = make_cfg("experiment=seed_sgd_steplr", "data=digits", "trainer.max_epochs=21")
    _, tags = run(cfg)
    got = epoch_lrs(tags)
    assert len(got) == 21
    assert got == pytest.approx([0.01 * 0.1 ** (e // 10) for e in range(21)], rel=1e-6)


def test_seed_cosine_adam_matches_the_article(make_cfg):
    epochs = 6
    cfg = make_cfg("experiment=seed_cosine_adam", "data=digits", f"trainer.max_epochs={epochs}", "data.batch_size=64")
    _, tags = run(cfg)
    got = epoch_lrs(tags)
    assert got == pytest.approx([0.5 * 0.01 * (1 + math.cos(math.pi * e / epochs)) for e in range(epochs)], rel=1e-6)


def test_test_split_is_evaluated(make_cfg, mnist_dir):
    record, tags = run(make_cfg("data=mnist", f"data.data_dir={mnist_dir}", "model.hidden=[16]"))
    assert set(record["test"]) == {"test/loss", "test/acc"}
    assert "test/acc" in tags


def test_existing_run_is_never_overwritten(make_cfg):
    cfg = make_cfg()
    run(cfg)
    record = Path(cfg.output_dir) / "metrics.json"
    before = record.read_text()
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg)
    assert record.read_text() == before
