"""The LightningModule: a network, an optimizer factory and a scheduler factory, and the metrics it logs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from lrlab.errors import ConfigError
from lrlab.scheduler import LRSchedulerConfig, RunLength

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, RunLength], list[LRSchedulerConfig]]


class Classifier(pl.LightningModule):
    """Trains ``net`` with cross-entropy; logs ``train/loss`` and ``train/acc`` on the steps the logger writes
    (``trainer.log_every_n_steps``), their epoch means as ``train/loss_epoch`` and ``train/acc_epoch``, and
    ``val/*`` / ``test/*`` per epoch.

    The network, the optimizer and the schedulers are built by separate steps (see lrlab.training): the module
    only wires them into Lightning, so a different executor can reuse each piece.
    """

    def __init__(
        self,
        net: nn.Module,
        make_optimizer: OptimizerFactory,
        make_schedulers: SchedulerFactory,
        hparams: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.net = net
        self.make_optimizer = make_optimizer
        self.make_schedulers = make_schedulers
        if hparams:
            self.save_hyperparameters(hparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss_correct(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x)
        return F.cross_entropy(logits, y), (logits.argmax(dim=-1) == y).sum()

    def on_train_epoch_start(self) -> None:
        # epoch sums stay on the device: no per-step sync, no per-step self.log bookkeeping
        self._epoch_sums = torch.zeros(3, device=self.device)  # loss x samples, correct, samples

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss, correct = self._loss_correct(batch)
        n = len(batch[1])
        self._epoch_sums.add_(torch.stack([loss.detach() * n, correct, torch.tensor(n, device=self.device)]))
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # the steps Lightning sends to the logger
            self.log_dict({"train/loss": loss, "train/acc": correct / n}, on_step=True, on_epoch=False)
        return loss

    def on_train_epoch_end(self) -> None:
        loss_sum, correct, n = self._epoch_sums
        self.log_dict({"train/loss_epoch": loss_sum / n, "train/acc_epoch": correct / n}, sync_dist=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, correct = self._loss_correct(batch)
        self.log_dict({"val/loss": loss, "val/acc": correct / len(batch[1])}, prog_bar=True, sync_dist=True,
                      batch_size=len(batch[1]))

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, correct = self._loss_correct(batch)
        self.log_dict({"test/loss": loss, "test/acc": correct / len(batch[1])}, sync_dist=True,
                      batch_size=len(batch[1]))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["torch_rng_state"] = torch.get_rng_state()  # dropout draws continue exactly after a resume

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["torch_rng_state"])

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[LRSchedulerConfig]]:
        optimizer = self.make_optimizer(self.net.parameters())
        return [optimizer], self.make_schedulers(optimizer, self.run_length)

    def run_length(self, interval: str) -> int:
        """Length of the whole run in ``interval`` units (Lightning's ``epoch`` or ``step``)."""
        if interval == "step":
            return int(self.trainer.estimated_stepping_batches)
        if self.trainer.max_epochs is None or self.trainer.max_epochs < 1:
            raise ConfigError("trainer.max_epochs", "must be set (>= 1) for a per-epoch schedule to know its length")
        return self.trainer.max_epochs
