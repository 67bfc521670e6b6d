"""Grids that answer the question: divergence and failures in a sweep, the report, parallel and Optuna sweeps."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import optuna
import pytest

from conftest import FAST_CLI, lrlab_train, run_cli
from lrlab.report import find_runs, varying_keys
from lrlab.training import train


def records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}


@pytest.fixture(scope="module")
def lr_grid(tmp_path_factory) -> Path:
    """SGD at lr 0.01 and 100 on digits: one run learns, one diverges."""
    root = tmp_path_factory.mktemp("grid")
    lrlab_train("-m", "optimizer=sgd", "optimizer.lr=0.01,100", f"hydra.sweep.dir={root / 'sweep'}",
                "trainer.max_epochs=3", "trainer.enable_progress_bar=false", cwd=root)
    return root / "sweep"


def test_divergent_point_is_recorded_and_the_sweep_goes_on(lr_grid):
    by_lr = {name.split("optimizer.lr=")[1].split(",")[0]: r for name, r in records(lr_grid).items()}
    assert by_lr["0.01"]["status"] == "completed" and by_lr["0.01"]["epochs"] == 3
    diverged = by_lr["100"]
    assert diverged["status"] == "diverged" and diverged["epochs"] == 1
    assert diverged["diverged"]["step"] <= 3 and diverged["global_step"] == diverged["diverged"]["step"]


def test_report_shows_completed_and_diverged(lr_grid):
    proc = run_cli("lrlab-report", str(lr_grid), cwd=lr_grid)
    assert "2 runs: 1 completed, 1 diverged" in proc.stdout
    report = (lr_grid / "report" / "report.md").read_text()
    assert "Varying keys: `optimizer.lr`" in report
    assert "| 0.01 | completed |" in report and "| 100 | diverged |" in report
    assert "**diverged** loss" in report and "lrlab-train optimizer=sgd optimizer.lr=0.01" in report
    with open(lr_grid / "report" / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["status"] for r in rows) == ["completed", "diverged"]
    for png in ("metric_vs_lr.png", "val_loss.png", "lr.png"):
        assert (lr_grid / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_keeps_the_earlier_report(lr_grid):
    run_cli("lrlab-report", str(lr_grid), cwd=lr_grid)
    run_cli("lrlab-report", str(lr_grid), cwd=lr_grid)
    kept = sorted(p.name for p in lr_grid.glob("report*"))
    assert kept[0] == "report" and len(kept) >= 2 and all((lr_grid / k / "report.md").exists() for k in kept)


def test_report_on_a_partial_sweep_says_what_it_skipped(lr_grid, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(lr_grid, partial, ignore=shutil.ignore_patterns("report*"))
    crashed = next(partial.glob("*optimizer.lr=100*"))
    (crashed / "metrics.json").unlink()  # a job that died before training
    running = next(partial.glob("*optimizer.lr=0.01*"))
    record = json.loads((running / "metrics.json").read_text())
    (running / "metrics.json").write_text(json.dumps(record | {"status": "running"}))
    out = run_cli("lrlab-report", str(partial), cwd=tmp_path).stdout
    assert "1 runs: 1 running" in out and f"skipped {crashed}" in out
    assert "## Skipped" in (partial / "report" / "report.md").read_text()


def test_report_on_a_dir_without_runs_fails_clearly(tmp_path):
    proc = run_cli("lrlab-report", str(tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "no runs with metrics.json under" in proc.stderr and "Traceback" not in proc.stderr


def test_varying_keys_follow_group_choices(tmp_path):
    sweep = tmp_path / "s"
    lrlab_train("-m", "scheduler=constant,step", "model.width=16,32", f"hydra.sweep.dir={sweep}", *FAST_CLI, cwd=tmp_path)
    runs, skipped = find_runs(sweep)
    assert len(runs) == 4 and not skipped
    # scheduler._target_, step_size, gamma ... only follow the scheduler choice: not listed
    assert varying_keys(runs) == ["scheduler", "model.width"]


def test_failed_job_is_recorded_the_grid_goes_on_and_the_command_fails(tmp_path, mnist_dir):
    """A failure the pre-launch check cannot see: a data file whose header is fine but whose body is cut short."""
    broken = tmp_path / "broken"
    shutil.copytree(mnist_dir, broken)
    images = broken / "train-images-idx3-ubyte.gz"
    images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:5000]))
    sweep = tmp_path / "s"
    proc = lrlab_train("-m", "data=mnist", f"data.data_dir={mnist_dir},{broken}", "model.hidden=[8]",
                       f"hydra.sweep.dir={sweep}", *FAST_CLI, cwd=tmp_path, check=False)
    statuses = sorted(r["status"] for r in records(sweep).values())
    assert statuses == ["completed", "failed"]
    failed = next(r for r in records(sweep).values() if r["status"] == "failed")
    assert "train-images-idx3-ubyte.gz is truncated" in failed["error"]
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == f"lrlab: error: 1 of 2 jobs failed in {sweep}"
    assert "Traceback" not in proc.stderr


def test_divergence_can_be_an_error(make_cfg):
    cfg = make_cfg("optimizer=sgd", "optimizer.lr=100", "divergence.error=true")
    with pytest.raises(Exception, match="divergence.error=true"):
        train(cfg)
    assert json.loads((Path(cfg.output_dir) / "metrics.json").read_text())["status"] == "diverged"


def test_diverged_run_returns_the_penalty(make_cfg):
    assert train(make_cfg("optimizer=sgd", "optimizer.lr=100")) == float("-inf")
    assert train(make_cfg("optimizer=sgd", "optimizer.lr=100", "objective.diverged_value=0")) == 0.0


def test_loss_ratio_threshold_is_configurable(make_cfg):
    """With the ratio check off, a merely large loss no longer counts; NaN/Inf still would."""
    cfg = make_cfg("optimizer=sgd", "optimizer.lr=3", "divergence.max_loss_ratio=null")
    train(cfg)
    strict = make_cfg("optimizer=sgd", "optimizer.lr=3", "divergence.max_loss_ratio=1.5")
    train(strict)
    status = {c.output_dir: json.loads((Path(c.output_dir) / "metrics.json").read_text())["status"] for c in (cfg, strict)}
    assert status[strict.output_dir] == "diverged"


def test_joblib_launcher_gives_the_same_layout_with_a_fair_share_of_threads(tmp_path):
    sweep = tmp_path / "s"
    lrlab_train("-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optimizer.lr=0.001,0.01",
                f"hydra.sweep.dir={sweep}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false", cwd=tmp_path)
    found = records(sweep)
    assert len(found) == 2 and all(r["status"] == "completed" for r in found.values())
    assert all(name.startswith("hydra/launcher=joblib") or "optimizer.lr=" in name for name in found)
    import os

    assert {r["threads"] for r in found.values()} == {max(1, (os.cpu_count() or 1) // 2)}


def test_optuna_search_prunes_and_a_rerun_resumes_the_study(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["-m", "hparams_search=lr_optuna", "hydra.sweeper.n_trials=6", f"hydra.sweeper.storage={storage}",
            "optimizer=choice(sgd,adam)", "trainer.max_epochs=3", "trainer.enable_progress_bar=false"]
    lrlab_train(*args, f"hydra.sweep.dir={tmp_path / 'first'}", cwd=tmp_path)
    study = optuna.load_study(study_name="lr_search", storage=storage)
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)  # every job reported per-epoch values
    assert all(set(t.params) == {"optimizer.lr", "scheduler", "optimizer"} for t in study.trials)  # CLI sweep joins
    assert len(records(tmp_path / "first")) == 6
    results = (tmp_path / "first" / "optimization_results.yaml").read_text()
    assert "best_params" in results and "optimizer.lr" in results

    lrlab_train(*args, f"hydra.sweep.dir={tmp_path / 'second'}", cwd=tmp_path)
    study = optuna.load_study(study_name="lr_search", storage=storage)
    assert len(study.trials) == 12 and sorted(t.number for t in study.trials) == list(range(12))
