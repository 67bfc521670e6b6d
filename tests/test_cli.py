"""The real command line: lrlab-train as a user runs it, in subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys


from conftest import FAST_CLI, lr_tag, lrlab_train, scalars



def heavy_modules_after(args: list[str], cwd) -> tuple[str, str]:
    """Run lrlab-train with ``args`` in-process; its output, and which of torch / Lightning it imported."""
    code = (f"import sys; sys.argv = ['lrlab-train', *{args!r}]\nfrom lrlab.cli import train\n"
            "try:\n    train()\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('torch', 'pytorch_lightning') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return out, out.rsplit("HEAVY", 1)[1].strip()


def test_cfg_job_imports_neither_torch_nor_lightning(tmp_path):
    out, heavy = heavy_modules_after(["--cfg", "job", "scheduler=onecycle"], tmp_path)
    assert heavy == "[]" and "OneCycleLR" in out


def test_help_lists_groups_without_importing_torch(tmp_path):
    out, heavy = heavy_modules_after(["--help"], tmp_path)
    assert heavy == "[]"
    assert "scheduler: constant, cosine, cosine_restarts, exponential, linear, multistep, onecycle" in out
    assert "experiment: seed_cosine_adam, seed_fixed_adam, seed_sgd_steplr" in out


def test_cfg_job_shows_the_composed_config(tmp_path):
    args = ["--cfg", "job", "scheduler=cosine", "optimizer.lr=3e-3", "model.depth=4"]
    out = subprocess.run([sys.executable, "-m", "lrlab", *args], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout  # python -m lrlab is the same app
    assert "CosineAnnealingLR" in out and "lr: 0.003" in out and "depth: 4" in out
    assert not (tmp_path / "outputs").exists()  # printing the config runs nothing


def test_single_run_from_any_directory(tmp_path):
    proc = lrlab_train(*FAST_CLI, cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["overrides"] == FAST_CLI
    assert (run_dir / ".hydra" / "config.yaml").exists() and (run_dir / "checkpoints" / "last.ckpt").exists()
    assert "completed: 1 epochs" in proc.stdout and str(run_dir) in proc.stdout


def test_grid_makes_one_named_run_dir_per_point(tmp_path):
    sweep = tmp_path / "sweep"
    lrlab_train("-m", "optimizer.lr=0.001,0.01", "scheduler=constant,cosine", f"hydra.sweep.dir={sweep}", *FAST_CLI,
                cwd=tmp_path)
    runs = sorted(p for p in sweep.iterdir() if (p / "metrics.json").exists())
    # named by Hydra's override_dirname: the job's overrides, sorted, joined by commas
    named = [tuple(kv for kv in p.name.split(",") if kv.startswith(("optimizer.lr=", "scheduler="))) for p in runs]
    assert named == [(lr, sched) for lr in ("optimizer.lr=0.001", "optimizer.lr=0.01")
                     for sched in ("scheduler=constant", "scheduler=cosine")]
    for run_dir in runs:
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
        tags = scalars(run_dir)
        assert "train/loss" in tags and lr_tag(tags)


def test_two_runs_in_one_dir_pattern_get_separate_dirs(tmp_path):
    """lrlab.fresh_dir: a second run aimed at an existing run's dir lands next to it instead."""
    target = "hydra.run.dir=${lrlab.fresh_dir:" + str(tmp_path / "same") + "}"
    lrlab_train(target, *FAST_CLI, cwd=tmp_path)
    lrlab_train(target, *FAST_CLI, cwd=tmp_path)
    assert (tmp_path / "same" / "metrics.json").exists() and (tmp_path / "same-1" / "metrics.json").exists()


def test_missing_mnist_files_say_what_to_do(tmp_path):
    proc = lrlab_train("data=mnist", f"data.data_dir={tmp_path / 'nowhere'}", *FAST_CLI, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "data.data_dir has no train-images-idx3-ubyte.gz" in proc.stderr and "data.download=true" in proc.stderr
