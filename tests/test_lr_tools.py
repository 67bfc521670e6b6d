"""LR range test (lrlab-lr-find, tune.lr_find) and the schedule preview (lrlab-schedule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import lr_tag, run_cli, scalars
from lrlab.schedule_preview import expand, lr_curve
from lrlab.training import train


def test_lr_find_writes_plot_and_json_and_prints_the_suggestion(tmp_path):
    proc = run_cli("lrlab-lr-find", "optimizer=sgd", "tune.num_training=60", cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "lr_find").iterdir()
    found = json.loads((run_dir / "lr_find.json").read_text())
    assert len(found["lrs"]) == len(found["losses"]) > 10
    assert found["lrs"] == sorted(found["lrs"]) and 1e-6 <= found["lrs"][0] < found["lrs"][-1] <= 1.0
    assert 1e-6 < found["suggestion"] < 1.0
    assert f"suggested learning rate: {found['suggestion']:.4g}" in proc.stdout
    assert (run_dir / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(run_dir.rglob("*.ckpt"))  # Lightning's temporary checkpoint is gone


def test_train_applies_the_suggestion_and_records_it(make_cfg):
    cfg = make_cfg("optimizer=sgd", "optimizer.lr=123", "tune.lr_find=true", "tune.num_training=60")
    train(cfg)
    record = json.loads((Path(cfg.output_dir) / "metrics.json").read_text())
    suggestion = record["lr_find"]["suggestion"]
    assert suggestion != 123 and record["status"] == "completed"
    tags = scalars(Path(cfg.output_dir))
    logged = [v for _, v in tags[lr_tag(tags)]]
    assert logged == pytest.approx([suggestion] * len(logged), rel=1e-6)


@pytest.mark.parametrize("overrides", [
    ["scheduler=cosine"],
    ["scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5"],
    ["scheduler=onecycle", "warmup=linear", "warmup.steps=10"],
    ["scheduler=exponential", "warmup=linear", "warmup.steps=10"],
    ["scheduler=cosine_restarts", "scheduler.T_0=1"],
])
def test_preview_matches_the_lr_a_real_run_logs(make_cfg, overrides):
    cfg = make_cfg("optimizer=sgd", "optimizer.lr=0.1", "trainer.max_epochs=3", *overrides)
    preview, steps_per_epoch = lr_curve(cfg)
    train(cfg)
    tags = scalars(Path(cfg.output_dir))
    logged = [v for _, v in tags[lr_tag(tags)]]
    assert len(preview) == len(logged) == 3 * steps_per_epoch
    assert preview == pytest.approx(logged, rel=1e-5)


def test_expand_overlays_comma_lists_and_repeated_keys():
    assert expand(["scheduler=cosine,step", "warmup=linear"]) == [["scheduler=cosine", "warmup=linear"],
                                                                   ["scheduler=step", "warmup=linear"]]
    assert expand(["scheduler=cosine", "scheduler=onecycle"]) == [["scheduler=cosine"], ["scheduler=onecycle"]]


def test_schedule_cli_plots_and_prints_milestones(tmp_path):
    out = tmp_path / "lr.png"
    proc = run_cli("lrlab-schedule", "scheduler=cosine,onecycle", "warmup=none,linear", "warmup.steps=20",
                   "trainer.max_epochs=5", "--out", str(out), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "warmup.steps is 20 but warmup has no schedule" in proc.stderr
    proc = run_cli("lrlab-schedule", "scheduler=cosine,onecycle", "warmup=none,linear", "trainer.max_epochs=5",
                   "--out", str(out), cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if "steps (23/epoch)" in line]
    assert len(lines) == 4 and all("50%:" in line for line in lines)
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "outputs" / "runs").exists()  # no training happened
