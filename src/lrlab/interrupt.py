"""Graceful interruption: SIGTERM/SIGUSR2 (what a cluster sends before its time limit) or SIGINT (Ctrl+C) stops the run
after the current optimizer step (under DDP: the current training step, at most ``steps_per_call`` batches),
recorded ``status: interrupted``; ``resume`` continues it from its last checkpoint.

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
    """Catches SIGTERM/SIGINT while training; raises :class:`Interrupted` once the current step is done.

    On one process the handler also sets ``trainer.should_stop``, which lrlab's training step checks before each
    optimizer step; under DDP the ranks must take the same steps, so they stop at the end of the training step.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._trainer: pl.Trainer | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        if self._trainer is not None and self._trainer.world_size == 1:
            self._trainer.should_stop = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trainer = trainer
        self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}

    def _raise_if_signalled(self) -> None:
        if self.received is not None:
            raise Interrupted(self.received)

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self._raise_if_signalled()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a signal during validation: should_stop would end the run as if complete; stop it as interrupted instead
        # (before the checkpoint callbacks, which Lightning runs last, save this epoch)
        self._raise_if_signalled()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restore()
        self._raise_if_signalled()  # a signal after the last check: its should_stop ended the loop early

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.restore()

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
        self._trainer = None
