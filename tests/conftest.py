"""Shared fixtures: real Hydra composition of conf/, tiny real runs on the bundled digits data."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from lrlab.paths import register_resolvers

register_resolvers()

# Small and quick: no progress bar, every step logged (tests read per-step values back from TensorBoard).
# threads=1: bitwise reproducible (two threads may reduce a matmul in another order, changing the last bits)
FAST = ["trainer.max_epochs=2", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "threads=1"]


FAST_CLI = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1", "threads=1"]


def run_cli(program: str, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """One of lrlab's console scripts, as a user runs it (from this venv's bin/)."""
    exe = Path(sys.executable).with_name(program)
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def lrlab_train(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli("lrlab-train", *args, cwd=cwd, check=check)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with overrides, writing into a fresh dir under tmp_path."""
    counter = iter(range(1000))

    def _make(*overrides: str, fast: bool = True) -> DictConfig:
        out = tmp_path / f"run{next(counter)}"
        with initialize_config_module("lrlab.conf", version_base="1.3"):
            return compose("train", overrides=[*(FAST if fast else []), f"output_dir={out}", *overrides])

    return _make


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the TensorBoard event files in run_dir: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def lr_tag(tags: dict[str, list]) -> str:
    """The learning-rate tag the module writes (lr-<Optimizer>, as Lightning's LearningRateMonitor names it)."""
    found = [t for t in tags if t.startswith("lr-")]
    assert found, f"no learning-rate tag among {sorted(tags)}"
    return sorted(found)[0]


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (the MNIST format), gzipped when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A tiny MNIST-shaped dataset in IDX files: 200 train and 50 test 28x28 images."""
    rng = np.random.default_rng(0)
    root = tmp_path / "mnist"
    root.mkdir()
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 50, (n, 28, 28)) + labels[:, None, None] * 20
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root

