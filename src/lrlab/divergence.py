"""Divergence: a run whose loss turns NaN/Inf, or grows past a multiple of its first loss, stops at once.

Large learning rates diverge — that is the point of an LR study — so by default divergence is an outcome
(``status: diverged`` in metrics.json, the sweep goes on), not an error. ``divergence.error=true`` makes it one.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl


class Diverged(RuntimeError):
    """Raised instead of stopping quietly when ``divergence.error=true``."""


class DivergenceGuard(pl.Callback):
    """Watches the training loss every ``check_every_n_steps`` steps; on divergence stops the Trainer.

    ``max_loss_ratio``: a loss above this multiple of the first step's loss counts as diverged (null: only
    NaN/Inf does). ``self.diverged`` then holds the step and the loss.
    """

    def __init__(self, max_loss_ratio: float | None = 10.0, check_every_n_steps: int = 1, error: bool = False):
        self.max_loss_ratio = max_loss_ratio
        self.every = check_every_n_steps
        self.error = error
        self.first_loss: float | None = None
        self.diverged: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"first_loss": self.first_loss}  # in checkpoints: a resumed run keeps measuring against the same loss

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.first_loss = state.get("first_loss")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        step = trainer.global_step  # already counts this batch's optimizer step
        if self.first_loss is not None and step % self.every:
            return
        loss = float(outputs["loss"] if isinstance(outputs, dict) else outputs)
        if self.first_loss is None and math.isfinite(loss):
            self.first_loss = loss
        too_big = self.max_loss_ratio is not None and self.first_loss is not None and loss > self.max_loss_ratio * self.first_loss
        if math.isfinite(loss) and not too_big:
            return
        self.diverged = {"step": step, "loss": loss, "first_loss": self.first_loss}
        reason = "not finite" if not math.isfinite(loss) else f"above divergence.max_loss_ratio={self.max_loss_ratio} x the first loss {self.first_loss:.4g}"
        if self.error:
            raise Diverged(f"training loss {loss:.4g} at step {step} is {reason} (divergence.error=true)")
        trainer.should_stop = True
