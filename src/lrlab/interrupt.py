"""Graceful interruption: SIGTERM/SIGUSR2 (what a cluster sends before its time limit) or SIGINT (Ctrl+C) stops the run
after the current step, recorded ``status: interrupted``; ``resume`` continues it from its last checkpoint.

The checkpoint to resume from is ``checkpoints/last.ckpt``, written at the end of every epoch. Stopping mid-epoch
never overwrites it with a half-finished epoch, so a resumed run replays exactly what an uninterrupted one does.
"""

from __future__ import annotations

import signal
from typing import Any

import pytorch_lightning as pl

# SIGTERM: what SLURM and most schedulers send before killing; SIGINT: Ctrl+C; SIGUSR2: what submitit's SLURM
# launcher asks SLURM to send `signal_delay_s` before the time limit.
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2)


class Interrupted(Exception):
    """Raised at the end of the step during which a stop signal arrived."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


class GracefulStop(pl.Callback):
    """Catches SIGTERM/SIGINT while training; raises :class:`Interrupted` once the current step is done."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.received is not None:
            raise Interrupted(self.received)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
