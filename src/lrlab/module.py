"""The LightningModule: a network, an optimizer factory and a scheduler factory, and the metrics it logs."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.core.optimizer import LightningOptimizer
from pytorch_lightning.plugins.precision import Precision
from pytorch_lightning.strategies import SingleDeviceStrategy
from pytorch_lightning.utilities.model_helpers import is_overridden
from pytorch_lightning.utilities.types import LRSchedulerConfig as LightningSchedulerConfig
from torch import nn

from lrlab.data import BatchChunk
from lrlab.divergence import DivergenceGuard
from lrlab.errors import ConfigError
from lrlab.scheduler import LRSchedulerConfig, RunLength, is_due

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer, RunLength], list[LRSchedulerConfig]]
# Lightning compares its training steps per epoch with log_every_n_steps; each of lrlab's training steps holds
# steps_per_call optimizer steps, and the logger interval counts optimizer steps.
warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging interval")

# Hooks Lightning's manual_backward and LightningOptimizer.step run on every step (see Classifier._can_step_directly)
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")

# keyword arguments of LightningModule.clip_gradients: gradient_clip_val, gradient_clip_algorithm
GradientClip = dict[str, Any]


class Classifier(pl.LightningModule):
    """Trains ``net`` with cross-entropy. Each training step takes a chunk of batches (``steps_per_call`` of them,
    see lrlab.data.StepChunks) and runs one optimizer step per batch, stepping the schedulers as Lightning would
    (their ``interval``/``frequency``/``monitor``); Lightning's own loop (~0.8 ms per step on a CPU) is paid once
    per chunk. What a run computes and logs does not depend on the chunk length: the same batches in the same
    order, the same optimizer and scheduler steps, the same logged steps.

    Logs ``train/loss``, ``train/acc`` and the learning rate (``lr-<Optimizer>``, ``/pg<n>`` per param group when
    there are several) on the steps the logger writes (``trainer.log_every_n_steps``), the epoch means as
    ``train/loss_epoch`` and ``train/acc_epoch``, and ``val/*`` / ``test/*`` per epoch.

    The network, the optimizer and the schedulers are built by separate steps (see lrlab.training): the module
    only wires them into Lightning, so a different executor can reuse each piece.
    """

    def __init__(
        self,
        net: nn.Module,
        make_optimizer: OptimizerFactory,
        make_schedulers: SchedulerFactory,
        hparams: dict[str, Any] | None = None,
        gradient_clip: GradientClip | None = None,
        divergence: DivergenceGuard | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False  # several optimizer steps per training step (see the class doc)
        self.net = net
        self.make_optimizer = make_optimizer
        self.make_schedulers = make_schedulers
        self.gradient_clip = gradient_clip
        self.divergence = divergence
        self.direct_steps = False  # set when training starts: see _can_step_directly and _direct_step
        if hparams:
            self.save_hyperparameters(hparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss_correct(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        logits = self.net(x)
        return F.cross_entropy(logits, y), (logits.argmax(dim=-1) == y).sum()

    def on_train_start(self) -> None:
        optimizer = self.optimizers().optimizer
        name = f"lr-{type(optimizer).__name__}"  # LearningRateMonitor's names, so dashboards read the same
        groups = len(optimizer.param_groups)
        self._lr_tags = [name] if groups == 1 else [f"{name}/pg{i + 1}" for i in range(groups)]
        self.direct_steps = self._can_step_directly()
        self._step_progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress

    def _can_step_directly(self) -> bool:
        """Whether Lightning's per-step plumbing (``manual_backward``, ``LightningOptimizer.step``: ~0.1 ms a step
        on a CPU) would only call torch: one device, 32-bit precision, and no callback or module implementing a
        hook it runs. Then each step calls ``loss.backward()`` and the torch optimizer's ``step()`` itself."""
        trainer = self.trainer
        if type(trainer.strategy) is not SingleDeviceStrategy or type(trainer.precision_plugin) is not Precision:
            return False
        hooked = [c for c in trainer.callbacks for hook in STEP_HOOKS if is_overridden(hook, c, pl.Callback)]
        hooked += [hook for hook in (*STEP_HOOKS, "backward") if is_overridden(hook, self, pl.LightningModule)]
        return not hooked

    def on_train_epoch_start(self) -> None:
        # every step's loss, correct count and batch size, kept on the device until the epoch ends: no per-step
        # sync, and the epoch means sum the same vector whatever steps_per_call is
        self._epoch_steps: list[torch.Tensor] = []

    def training_step(self, batches: BatchChunk, chunk_idx: int) -> torch.Tensor | None:
        trainer = self.trainer
        start = self.global_step  # optimizer steps so far: the first batch's step on the logger's x-axis
        if trainer.max_steps >= 0:
            batches = batches[: trainer.max_steps - start]  # the run ends inside this chunk
        first_batch = chunk_idx * trainer.train_dataloader.size  # within the epoch, as Lightning counts `frequency`
        losses, outputs, targets, lrs = self._steps(batches, start, first_batch)
        if not losses:  # told to stop before the first step
            return None
        losses = torch.stack(losses)
        sizes = torch.tensor([len(y) for y in targets], device=self.device, dtype=losses.dtype)
        correct = _correct_per_step(outputs, targets, sizes)
        self._epoch_steps.append(torch.stack([losses, correct, sizes]))
        self._log_steps(start, losses, correct / sizes, lrs)
        if self.divergence is not None and trainer.world_size > 1:  # one rank's divergence stops them all
            trainer.should_stop = trainer.strategy.reduce_boolean_decision(self.divergence.diverged is not None, all=False)
        if chunk_idx + 1 >= trainer.num_training_batches:  # the epoch's last chunk: Lightning steps epoch-interval
            self._step_schedulers("epoch", trainer.current_epoch + 1, plateau=False)  # schedules here, before validation
        # Lightning counts its logging step in training steps (it adds this one's 1 itself); keep it in optimizer
        # steps, so epoch metrics (train/*_epoch, val/*) share the x-axis of the per-step ones whatever
        # steps_per_call is.
        trainer.fit_loop.epoch_loop._batches_that_stepped = self.global_step - 1
        return losses[-1]

    def _steps(self, batches: BatchChunk, start: int, first_batch: int
               ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], dict[int, list[float]]]:
        """One optimizer step per batch, with the step-interval schedulers due after it, until the batches end or
        the run is told to stop (a divergence, a stop signal: ``trainer.should_stop``). Returns the losses, the
        logits (detached), the targets and, for the steps the logger writes, the learning rates each step used.
        Everything else is left for after the loop: per-step Python and tensor work is what it exists to avoid."""
        trainer = self.trainer
        optimizer = self.optimizers()
        every = trainer.log_every_n_steps
        per_step = [c for c in trainer.lr_scheduler_configs if c.interval == "step"]
        # Under DDP every rank must take the same steps: the ranks stop together, after the chunk (training_step)
        stop_here = trainer.world_size == 1 and not trainer.should_stop
        optimizer_step = self._direct_step if self.direct_steps else self._lightning_step
        losses, outputs, targets, lrs = [], [], [], {}
        for i, (x, y) in enumerate(batches):
            if stop_here and trainer.should_stop:
                break
            if every and (start + i + 1) % every == 0:  # the steps Lightning itself would send to the logger
                lrs[i] = [group["lr"] for group in optimizer.param_groups]
            logits = self.net(x)
            loss = F.cross_entropy(logits, y)
            optimizer_step(optimizer, loss)
            for config in per_step:
                if is_due(config.interval, config.frequency, "step", first_batch + i + 1):
                    self._step_scheduler(config)
            loss = loss.detach()
            losses.append(loss)
            outputs.append(logits.detach())
            targets.append(y)
            if self.divergence is not None and self.divergence.check(start + i + 1, loss) and stop_here:
                trainer.should_stop = True
        return losses, outputs, targets, lrs

    def _lightning_step(self, optimizer: LightningOptimizer, loss: torch.Tensor) -> None:
        """Lightning's manual-optimization calls: precision scaling, DDP gradient sync, the step hooks; they count
        ``trainer.global_step``."""
        optimizer.zero_grad()
        self.manual_backward(loss)
        self._clip(optimizer)
        optimizer.step()

    def _direct_step(self, optimizer: LightningOptimizer, loss: torch.Tensor) -> None:
        """The same through torch's own calls (see _can_step_directly), counting ``trainer.global_step`` as
        Lightning does."""
        optimizer.zero_grad()
        loss.backward()
        self._clip(optimizer)
        self._step_progress.increment_ready()
        optimizer.optimizer.step()
        self._step_progress.increment_completed()

    def _clip(self, optimizer: LightningOptimizer) -> None:
        if self.gradient_clip is not None:
            self.clip_gradients(optimizer, **self.gradient_clip)

    def _log_steps(self, start: int, losses: torch.Tensor, accs: torch.Tensor, lrs: dict[int, list[float]]) -> None:
        if not lrs or not self.loggers:
            return
        at = list(lrs)
        values = torch.stack([losses[at], accs[at]]).tolist()  # one device sync for the whole chunk
        for k, i in enumerate(at):
            metrics = {"train/loss": values[0][k], "train/acc": values[1][k], **dict(zip(self._lr_tags, lrs[i]))}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=start + i)

    def _step_schedulers(self, interval: str, count: int, plateau: bool) -> None:
        """Steps the schedulers due at the ``count``-th (1-based) ``interval``: the metric-driven ones
        (``plateau``) or the others."""
        for config in self.trainer.lr_scheduler_configs:
            if (config.scheduler in self._monitors) == plateau and is_due(config.interval, config.frequency, interval, count):
                self._step_scheduler(config)

    def _step_scheduler(self, config: LightningSchedulerConfig) -> None:
        metric = None
        if config.scheduler in self._monitors:
            monitor, strict = self._monitors[config.scheduler]
            metric = self.trainer.callback_metrics.get(monitor)
            if metric is None:
                if strict:
                    logged = ", ".join(self.trainer.callback_metrics) or "nothing"
                    raise ConfigError("scheduler.monitor", f"{monitor!r} is not logged when the schedule steps "
                                      f"(logged: {logged}): name a logged metric, or validate every epoch")
                return
        self.lr_scheduler_step(config.scheduler, metric)

    def on_train_epoch_end(self) -> None:
        if self._epoch_steps:
            losses, correct, sizes = torch.cat(self._epoch_steps, dim=1)
            n = sizes.sum()
            self.log_dict({"train/loss_epoch": (losses * sizes).sum() / n, "train/acc_epoch": correct.sum() / n},
                          sync_dist=True)
            # the epoch's last step, for monitors and metrics.json (self.log costs ~0.7 ms a call: not per step;
            # the logger got every logged step's value from _log_steps)
            self.log_dict({"train/loss": losses[-1], "train/acc": correct[-1] / sizes[-1]}, logger=False)
        self._step_schedulers("epoch", self.trainer.current_epoch + 1, plateau=True)  # after validation, as Lightning

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
        """The optimizer and its schedulers. Lightning keeps the schedulers (it checkpoints them) but, under
        manual optimization, drops ``monitor``/``strict``: the module keeps those itself and steps every scheduler
        in Lightning's list (a tuner swaps in its own) by the ``interval``/``frequency`` Lightning keeps."""
        optimizer = self.make_optimizer(self.net.parameters())
        configs = self.make_schedulers(optimizer, self.run_length)
        self._monitors = {c["scheduler"]: (c["monitor"], c.get("strict", True)) for c in configs if c.get("monitor")}
        return [optimizer], [{k: v for k, v in c.items() if k not in ("monitor", "strict")} for c in configs]

    def run_length(self, interval: str) -> int:
        """Length of the whole run in ``interval`` units (Lightning's ``epoch`` or optimizer ``step``)."""
        if interval == "step":
            trainer = self.trainer
            estimate = trainer.estimated_stepping_batches  # in training steps; it also sets up the training data
            if trainer.max_epochs == -1 or not math.isfinite(trainer.num_training_batches):
                return int(estimate)  # then it is max_steps: already optimizer steps
            per_epoch = trainer.train_dataloader.steps(trainer.num_training_batches)
            total = per_epoch * max(trainer.max_epochs, 1)
            return min(total, trainer.max_steps) if trainer.max_steps != -1 else total
        if self.trainer.max_epochs is None or self.trainer.max_epochs < 1:
            raise ConfigError("trainer.max_epochs", "must be set (>= 1) for a per-epoch schedule to know its length")
        return self.trainer.max_epochs


def _correct_per_step(outputs: list[torch.Tensor], targets: list[torch.Tensor], sizes: torch.Tensor) -> torch.Tensor:
    """Correct predictions of each step, from its logits and targets: a few tensor ops for all the steps at once."""
    hits = (torch.cat(outputs).argmax(dim=-1) == torch.cat(targets)).to(sizes.dtype)
    step_of = torch.repeat_interleave(torch.arange(len(sizes), device=sizes.device), sizes.long())
    return torch.zeros_like(sizes).index_add_(0, step_of, hits)
