"""Bad input: one clear line naming the key, a non-zero exit, no traceback, and nothing on disk lost.

Each case runs the real CLI in a directory that already holds a finished run; afterwards every byte of that run is
still there.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

import numpy as np

from conftest import FAST_CLI, lrlab_train, run_cli, write_idx

CASES = [
    # (id, arguments, expected exit status, a fragment of the message)
    ("unknown-option", ["scheduler=cosin"], 1, "Could not find 'scheduler/cosin'"),
    ("unknown-key", ["optimizer.lrr=0.1"], 1, "Could not override 'optimizer.lrr'"),
    ("lr-type", ["optimizer.lr=abc"], 2, "optimizer.lr must be a number > 0 (got 'abc')"),
    ("lr-negative", ["optimizer.lr=-0.1"], 2, "optimizer.lr must be a number > 0 (got -0.1)"),
    ("lr-zero", ["optimizer.lr=0"], 2, "optimizer.lr must be a number > 0 (got 0)"),
    ("epochs-zero", ["trainer.max_epochs=0"], 2, "trainer.max_epochs must be an integer >= 1 (got 0)"),
    ("epochs-float", ["trainer.max_epochs=2.5"], 2, "trainer.max_epochs must be an integer >= 1 (got 2.5)"),
    ("batch-zero", ["data.batch_size=0"], 2, "data.batch_size must be an integer >= 1 (got 0)"),
    ("val-fraction", ["data.val_fraction=1.0"], 2, "data.val_fraction must be a number in [0, 1) (got 1.0)"),
    ("dropout", ["model.dropout=1.0"], 2, "model.dropout must be a number in [0, 1) (got 1.0)"),
    ("width", ["model.width=0"], 2, "model.width must be an integer >= 1 (got 0)"),
    ("hidden", ["model.hidden=[64,-1]"], 2, "model.hidden must be a list of widths >= 1"),
    ("activation", ["model.activation=Relu"], 2, "model.activation must name a torch.nn activation class"),
    ("step-size", ["scheduler=step", "scheduler.step_size=0"], 2, "scheduler.step_size must be an integer >= 1 (got 0)"),
    ("gamma", ["scheduler=step", "scheduler.gamma=0"], 2, "scheduler.gamma must be a number > 0 (got 0)"),
    ("milestones", ["scheduler=multistep", "scheduler.milestones=[8,5]"], 2,
     "scheduler.milestones must be an increasing list of steps >= 1 (got [8, 5])"),
    ("plateau-monitor", ["scheduler=plateau", "scheduler.monitor=val/los"], 2,
     "scheduler.monitor must be a metric the run logs"),
    ("interval", ["scheduler.interval=batch"], 2, "scheduler.interval must be epoch or step (got 'batch')"),
    ("warmup-negative", ["warmup=linear", "warmup.steps=-1"], 2, "warmup.steps must be an integer >= 0 (got -1)"),
    ("warmup-too-long", ["warmup=linear", "warmup.interval=epoch", "warmup.steps=1"], 2,
     "warmup.steps must be shorter than the run (1 >= trainer.max_epochs=1 epochs)"),
    ("warmup-no-schedule", ["warmup.steps=5"], 2, "warmup.steps is 5 but warmup has no schedule"),
    ("accumulate", ["+trainer.accumulate_grad_batches=4"], 2,
     "trainer.accumulate_grad_batches must be 1: every batch is one optimizer step"),
    ("steps-per-call", ["steps_per_call=0"], 2, "steps_per_call must be an integer >= 1 (got 0)"),
    ("clip-algorithm", ["+trainer.gradient_clip_val=1", "+trainer.gradient_clip_algorithm=max"], 2,
     "trainer.gradient_clip_algorithm must be norm or value (got 'max')"),
    ("objective-mode", ["objective.mode=maximum"], 2, "objective.mode must be max or min (got 'maximum')"),
    ("objective-metric", ["objective.metric=val/accuracy"], 2, "objective.metric must be a metric the run logs"),
    ("divergence-ratio", ["divergence.max_loss_ratio=0.5"], 2, "divergence.max_loss_ratio must be a number > 1"),
    ("tune-range", ["tune.min_lr=1", "tune.max_lr=0.1"], 2, "tune.min_lr must be below tune.max_lr (got 1 >= 0.1)"),
    ("unknown-target", ["model=custom", "model._target_=nope.Net"], 2, "model._target_ cannot be imported (got 'nope.Net')"),
    ("unknown-optimizer", ["optimizer._target_=torch.optim.Nope"], 2, "optimizer._target_ cannot be imported"),
    ("missing-data", ["data=mnist", "data.data_dir=nowhere"], 2, "data.data_dir has no train-images-idx3-ubyte.gz"),
    ("not-gzip", ["data=mnist", "data.data_dir=corrupt"], 2, "train-images-idx3-ubyte.gz cannot be read (Not a gzipped"),
    ("bad-idx-header", ["data=mnist", "data.data_dir=badheader"], 2, "is not an unsigned-byte IDX file (bad header)"),
    ("resume-not-a-run", ["resume=empty"], 2, "resume "),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A folder that already holds a finished run, broken MNIST files and an empty dir."""
    root = tmp_path_factory.mktemp("bad")
    lrlab_train(*FAST_CLI, cwd=root)
    corrupt = root / "corrupt"
    corrupt.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        write_idx(corrupt / name, np.zeros((2, 2), dtype=np.uint8))
    (corrupt / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    badheader = root / "badheader"
    badheader.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (badheader / name).write_bytes(gzip.compress(b"\x01\x02\x08\x01" + b"\x00" * 8))
    (root / "empty").mkdir()
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file of the earlier run(s), by content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in (root / "outputs").rglob("*") if p.is_file()}


def test_the_table_is_long_enough():
    assert len({case[0] for case in CASES}) >= 20


@pytest.mark.parametrize(("args", "status", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(workdir, args, status, message):
    before = snapshot(workdir)
    proc = lrlab_train(*FAST_CLI, *args, cwd=workdir, check=False)
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    if status == 2:
        assert proc.stderr.strip().splitlines()[-1].startswith("lrlab: error: ")
    after = snapshot(workdir)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing earlier lost or changed


def test_full_traceback_on_request(workdir):
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("lrlab-train")
    proc = subprocess.run([exe, "optimizer.lr=-1", *FAST_CLI], cwd=workdir, capture_output=True, text=True,
                          env={**os.environ, "HYDRA_FULL_ERROR": "1"})
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "optimizer.lr must be a number > 0" in proc.stderr


def test_bad_grid_point_stops_everything_before_it_starts(workdir, tmp_path):
    sweep = tmp_path / "sweep"
    proc = lrlab_train("-m", "optimizer.lr=0.1,-1", "model.width=8,16", f"hydra.sweep.dir={sweep}", *FAST_CLI,
                       cwd=workdir, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    bad = [line for line in proc.stderr.splitlines() if line.startswith("lrlab: bad grid point")]
    assert len(bad) == 2 and all("optimizer.lr=-1" in line and "optimizer.lr must be a number > 0" in line for line in bad)
    assert proc.stderr.strip().splitlines()[-1] == "lrlab: error: 2 of 4 grid points are invalid; nothing was started"
    assert not sweep.exists()


def test_report_on_a_dir_without_runs(workdir):
    proc = run_cli("lrlab-report", "empty", cwd=workdir, check=False)
    assert proc.returncode != 0 and "no runs with metrics.json" in proc.stderr and "Traceback" not in proc.stderr
