"""Divergence: a run whose loss turns NaN/Inf, or grows past a multiple of its first loss, stops at once.

Large learning rates diverge — that is the point of an LR study — so by default divergence is an outcome
(``status: diverged`` in metrics.json, the sweep goes on), not an error. ``divergence.error=true`` makes it one.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch


class Diverged(RuntimeError):
    """Raised instead of stopping quietly when ``divergence.error=true``."""


class DivergenceGuard(pl.Callback):
    """The divergence test lrlab's training step applies to the loss of every ``check_every_n_steps``-th optimizer
    step (:meth:`check`); on divergence the step stops the run right there. A Callback so that Lightning keeps its
    state (the first loss) in checkpoints.

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

    def check(self, step: int, loss: torch.Tensor) -> bool:
        """Whether ``loss``, optimizer step ``step``'s (counted from 1), shows divergence; then ``self.diverged``
        holds it (or :class:`Diverged` is raised, with ``divergence.error=true``). Reads the loss (a device sync)
        only on the steps it checks."""
        if self.diverged is not None:
            return True
        if self.first_loss is not None and step % self.every:
            return False
        value = float(loss)
        if self.first_loss is None and math.isfinite(value):
            self.first_loss = value
        too_big = self.max_loss_ratio is not None and self.first_loss is not None and value > self.max_loss_ratio * self.first_loss
        if math.isfinite(value) and not too_big:
            return False
        self.diverged = {"step": step, "loss": value, "first_loss": self.first_loss}
        if self.error:
            reason = "not finite" if not math.isfinite(value) else (
                f"above divergence.max_loss_ratio={self.max_loss_ratio} x the first loss {self.first_loss:.4g}")
            raise Diverged(f"training loss {value:.4g} at step {step} is {reason} (divergence.error=true)")
        return True
