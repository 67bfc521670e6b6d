"""No lost work: SIGTERM stops a run with a checkpoint, resume continues it to the same result, a rerun sweep
skips what is done, resumes what was interrupted and reruns what failed."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

from conftest import lrlab_train

# slow enough to be stopped mid-run: batch 8 on digits is 180 steps an epoch
LONG = ["data.batch_size=8", "trainer.max_epochs=8", "trainer.enable_progress_bar=false", "threads=1"]


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def start(*args: str, cwd: Path) -> subprocess.Popen:
    exe = Path(__import__("sys").executable).with_name("lrlab-train")
    return subprocess.Popen([exe, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_epochs(record_path: Path, epochs: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stdout.read()
        try:
            if json.loads(record_path.read_text()).get("epochs", 0) >= epochs:
                return
        except (OSError, json.JSONDecodeError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{record_path} never reached {epochs} epochs")


def test_sigterm_then_resume_equals_an_uninterrupted_run(tmp_path):
    run_dir = tmp_path / "stopped"
    proc = start(f"hydra.run.dir={run_dir}", *LONG, cwd=tmp_path)
    wait_for_epochs(run_dir / "metrics.json", 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out
    stopped = record(run_dir)
    assert stopped["status"] == "interrupted" and stopped["signal"] == "SIGTERM" and stopped["epochs"] < 8
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert f"lrlab-train resume={run_dir}" in out

    lrlab_train(f"resume={run_dir}", cwd=tmp_path)
    resumed = record(run_dir)
    lrlab_train(f"hydra.run.dir={tmp_path / 'straight'}", *LONG, cwd=tmp_path)
    straight = record(tmp_path / "straight")
    assert resumed["status"] == straight["status"] == "completed"
    assert [h["epoch"] for h in resumed["history"]] == list(range(8))
    assert resumed["final"] == straight["final"] and resumed["best"] == straight["best"]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) >= 2  # the same TensorBoard run, continued


def test_rerun_sweep_skips_done_resumes_interrupted(tmp_path):
    sweep = tmp_path / "sweep"
    grid = ["-m", "optimizer.lr=0.001,0.002,0.003", f"hydra.sweep.dir={sweep}", *LONG]
    proc = start(*grid, cwd=tmp_path)
    second = None
    deadline = time.time() + 120
    while second is None and time.time() < deadline:  # the second job's dir, once it exists
        found = [p for p in sweep.glob("*optimizer.lr=0.002*")] if sweep.exists() else []
        second = found[0] if found else None
        time.sleep(0.05)
    wait_for_epochs(second / "metrics.json", 1, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    first = next(sweep.glob("*optimizer.lr=0.001*"))
    assert record(first)["status"] == "completed" and record(second)["status"] == "interrupted"
    assert not list(sweep.glob("*optimizer.lr=0.003*"))  # the sweep stopped with the signal
    first_bytes = (first / "metrics.json").read_bytes()

    proc = lrlab_train(*grid, "resume=true", cwd=tmp_path)
    assert "resume: " in proc.stdout and "already completed; skipped" in proc.stdout
    assert (first / "metrics.json").read_bytes() == first_bytes  # skipped, untouched
    assert record(second)["status"] == "completed" and [h["epoch"] for h in record(second)["history"]] == list(range(8))
    third = next(sweep.glob("*optimizer.lr=0.003*"))
    assert record(third)["status"] == "completed"
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted([first.name, second.name, third.name])


def test_rerun_sweep_reruns_failed_jobs_and_keeps_the_failed_attempt(tmp_path, mnist_dir):
    later = tmp_path / "later"
    later.mkdir()
    grid = ["-m", "data=mnist", f"data.data_dir={mnist_dir},{later}", "model.hidden=[8]",
            f"hydra.sweep.dir={tmp_path / 's'}", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    assert lrlab_train(*grid, cwd=tmp_path, check=False).returncode == 2  # preflight: `later` has no files yet
    for f in mnist_dir.iterdir():
        shutil.copy(f, later / f.name)
    lrlab_train(*grid, cwd=tmp_path)
    # as if that job had failed (a node lost its data mount, say)
    failed_dir = next(p for p in (tmp_path / "s").iterdir() if p.name.startswith(f"data.data_dir={str(later).replace('/', '_')}"))
    (failed_dir / "metrics.json").write_text(json.dumps(record(failed_dir) | {"status": "failed"}))
    lrlab_train(*grid, "resume=true", cwd=tmp_path)
    assert record(failed_dir)["status"] == "completed"
    assert json.loads((failed_dir / "attempts" / "0" / "metrics.json").read_text())["status"] == "failed"


def test_resume_of_a_dir_that_is_not_a_run(tmp_path):
    proc = lrlab_train(f"resume={tmp_path}", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"lrlab: error: resume {tmp_path} is not a run dir" in proc.stderr
