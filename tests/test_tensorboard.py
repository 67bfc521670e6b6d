"""The HParams dashboard against a real `tensorboard` server: every run of a grid with its real metric values."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import FAST_CLI, lrlab_train

SESSION_GROUPS_REQUEST = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 100,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """A 2x1 grid, then `tensorboard --logdir <sweep>` on a free local port; yields (base URL, sweep dir)."""
    root = tmp_path_factory.mktemp("tb")
    sweep = root / "sweep"
    lrlab_train("-m", "optimizer=sgd", "optimizer.lr=0.05,0.2", f"hydra.sweep.dir={sweep}", *FAST_CLI, cwd=root)
    port = free_port()
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen([tensorboard, "--logdir", sweep, "--host", "127.0.0.1", "--port", str(port),
                               "--load_fast=false", "--reload_interval", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # poll until the server is up and has loaded both runs
            try:
                if len(get(base, "/data/runs")) == 2:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("tensorboard did not list the two runs within 60 s")
        yield base, sweep
    finally:
        server.terminate()
        server.wait(timeout=30)


def get(base: str, path: str):
    with urllib.request.urlopen(base + path, timeout=10) as response:
        return json.loads(response.read())


def post(base: str, path: str, body: dict):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_hparams_dashboard_lists_every_run_with_real_metrics(dashboard):
    base, sweep = dashboard
    deadline = time.time() + 30
    while True:
        groups = post(base, "/data/plugin/hparams/session_groups", SESSION_GROUPS_REQUEST)["sessionGroups"]
        if len(groups) == 2 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert len(groups) == 2
    records = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")}
    for group in groups:
        assert group["hparams"]["optimizer"] == "SGD" and group["hparams"]["scheduler"] == "ConstantLR"
        assert group["hparams"]["optimizer.lr"] in (0.05, 0.2)
        values = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        record = records[group["name"]]
        assert values["hparams/val_acc_best"] == pytest.approx(record["best"]["val/acc"]["value"], rel=1e-6)
        assert values["hparams/val_loss_final"] == pytest.approx(record["final"]["val/loss"], rel=1e-6)
        assert values["hparams/diverged"] == 0.0
        assert -1 not in values.values()  # no hp_metric placeholder


def test_scalar_tags_hold_loss_and_learning_rate(dashboard):
    base, _ = dashboard
    tags = get(base, "/data/plugin/scalars/tags")
    assert len(tags) == 2
    for run_tags in tags.values():
        assert {"train/loss", "val/loss", "val/acc", "lr-SGD"} <= set(run_tags)
