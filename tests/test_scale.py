"""Scale-out through real engines, on CPU: Lightning DDP (2 gloo processes), DDP inside -m, submitit's launcher."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import lrlab_train, run_cli

QUICK = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
STEPS_PER_RANK = math.ceil(1438 // 2 / 64)  # digits' 1,438 training samples, split over 2 ranks, batch 64


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp_spawn", "ddp"])
def test_ddp_two_processes_write_one_record(tmp_path, strategy):
    run_dir = tmp_path / "run"
    lrlab_train("trainer=ddp", f"trainer.strategy={strategy}", f"hydra.run.dir={run_dir}", *QUICK, cwd=tmp_path)
    rec = record(run_dir)
    assert rec["status"] == "completed" and rec["epochs"] == 2
    assert rec["global_step"] == 2 * STEPS_PER_RANK  # each rank saw half of every epoch
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing written outside the job's dir
    assert len(list(tmp_path.rglob("metrics.json"))) == 1 and (run_dir / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_ddp_inside_a_sweep_runs_each_point_once(tmp_path):
    sweep = tmp_path / "sweep"
    lrlab_train("-m", "trainer=ddp", "optimizer.lr=0.01,0.1", f"hydra.sweep.dir={sweep}", *QUICK, cwd=tmp_path)
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 2  # no child rank re-ran the sweep
    assert all(record(j)["status"] == "completed" and record(j)["global_step"] == 2 * STEPS_PER_RANK for j in jobs)


@pytest.mark.slow
def test_submitit_local_launcher_gives_the_same_layout_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    lrlab_train("-m", "hydra/launcher=local_processes", "optimizer.lr=0.01,0.1", f"hydra.sweep.dir={sweep}", *QUICK,
                cwd=tmp_path)
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["optimizer.lr=0.01,trainer.enable_progress_bar=False,trainer.max_epochs=2",
                    "optimizer.lr=0.1,trainer.enable_progress_bar=False,trainer.max_epochs=2"]
    assert all(record(sweep / j)["status"] == "completed" for j in jobs)
    assert "2 runs: 2 completed" in run_cli("lrlab-report", str(sweep), cwd=tmp_path).stdout
