"""The built wheel carries its configs: installed into a fresh venv, it trains from an unrelated directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_into_fresh_venv_and_runs_elsewhere(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, ROOT],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("lrlab-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q"]
    # the torch build already in use first (a bare `torch` requirement would pull a CUDA build), then the wheel
    subprocess.run([*pip, f"torch=={torch.__version__.split('+')[0]}"], check=True, capture_output=True)
    subprocess.run([*pip, wheel], check=True, capture_output=True)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([venv / "bin" / "python", "-c", "import lrlab; print(lrlab.__file__)"], cwd=elsewhere,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(venv))  # the installed wheel, not this checkout
    subprocess.run([venv / "bin" / "lrlab-train", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"],
                   cwd=elsewhere, check=True, capture_output=True)
    (run_dir,) = (elsewhere / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "completed"
