"""``metrics.json``: each run's machine-readable record, the file that reports and sweepers read.

It is written when the run starts (``status: running``), after every epoch, and at the end (``completed`` or
``failed``), atomically, so a reader never sees half a file. Nothing in it depends on how the run was executed.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from lrlab.divergence import DivergenceGuard



class RunRecord:
    """Collects per-epoch metrics and writes them, with the status and the best values, to ``path``.

    ``best_of`` maps a metric to ``min`` or ``max``; ``objective`` names the one metric sweepers optimise.
    """

    def __init__(self, path: Path, objective: str, best_of: dict[str, str], info: dict[str, Any] | None = None):
        self.path = path
        self.objective = objective
        self.best_of = dict(best_of)
        self.info = dict(info or {})
        self.started = time.time()
        self.history: list[dict[str, Any]] = []
        self.test: dict[str, float] = {}
        self.global_step = 0

    def add_epoch(self, epoch: int, metrics: dict[str, float], global_step: int) -> None:
        # an epoch seen again (a run resumed from a checkpoint taken at that epoch's end) replaces its first record
        self.history = [row for row in self.history if row["epoch"] < epoch]
        self.history.append({"epoch": epoch, **metrics})
        self.global_step = global_step
        self.write("running")

    def adopt_written(self) -> None:
        """Take over what another process wrote to the file (under ddp_spawn, training runs in spawned workers)."""
        if not self.path.exists():
            return
        written = json.loads(self.path.read_text())
        if len(written.get("history", [])) > len(self.history):
            self.history = written["history"]
            self.global_step = written.get("global_step", self.global_step)
            self.test = written.get("test") or self.test
            if written.get("diverged"):
                self.info["diverged"] = written["diverged"]

    def best(self) -> dict[str, dict[str, float]]:
        out = {}
        for metric, mode in self.best_of.items():
            rows = [r for r in self.history if metric in r and math.isfinite(r[metric])]
            if rows:
                pick = (min if mode == "min" else max)(rows, key=lambda r: r[metric])
                out[metric] = {"value": pick[metric], "epoch": pick["epoch"]}
        return out

    def objective_value(self) -> float | None:
        best = self.best().get(self.objective)
        return best["value"] if best else None

    def write(self, status: str, **fields: Any) -> None:
        final = {k: v for k, v in self.history[-1].items() if k not in ("epoch", "train_s")} if self.history else {}
        record = {
            "status": status,
            **fields,
            "epochs": len(self.history),
            "global_step": self.global_step,
            "wall_time_s": round(time.time() - self.started, 3),
            "started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds"),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "objective": {"metric": self.objective, "mode": self.best_of.get(self.objective), "value": self.objective_value()},
            "final": final,
            "best": self.best(),
            "test": self.test,
            "history": self.history,
            **self.info,
        }
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)


def _floats(metrics: dict[str, Any], prefix: str | None = None) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if prefix is None or k.startswith(prefix)}


class RecordCallback(pl.Callback):
    """Feeds a :class:`RunRecord` from Lightning: epoch-end metrics (after validation) and the LR, test metrics."""

    def __init__(self, record: RunRecord, guard: DivergenceGuard | None = None):
        self.record = record
        self.epoch_start, self.train_s = 0.0, None
        self.guard = guard  # a DivergenceGuard: its finding travels in the record, also out of spawned workers

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch_start, self.train_s = time.perf_counter(), None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self.train_s is None:  # the epoch's training part ends here
            self.train_s = time.perf_counter() - self.epoch_start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        metrics = _floats(trainer.callback_metrics)
        # seconds of this epoch's training steps (validation excluded): the figure benchmarks compare
        metrics["train_s"] = self.train_s if self.train_s is not None else time.perf_counter() - self.epoch_start
        metrics["lr"] = trainer.optimizers[0].param_groups[0]["lr"]
        if self.guard is not None and self.guard.diverged:
            self.record.info["diverged"] = self.guard.diverged
        self.record.add_epoch(trainer.current_epoch, metrics, trainer.global_step)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            self.record.test = _floats(trainer.callback_metrics, "test/")
