"""In-memory data module: whole datasets as tensors, batched by slicing a shuffled index.

Per-sample ``DataLoader`` collation costs more than the seed MLP's arithmetic (see BENCHMARKS.md); datasets that
fit in memory skip it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import get_method

from lrlab.errors import ConfigError


@dataclass
class Splits:
    """What a source returns: train arrays, optional test arrays, the class count. Images are (N, C, H, W)."""

    x_train: np.ndarray
    y_train: np.ndarray
    num_classes: int
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


class TensorBatches:
    """An epoch of ``(x, y)`` batches sliced from in-memory tensors; Lightning accepts any sized iterable.

    With ``shuffle`` the order is a permutation drawn from ``seed`` and the epoch number, so a run is
    reproducible and a resumed run sees the same order. The epoch comes from ``epoch_fn`` (the Trainer's
    current epoch) when given, else from counting passes. Under distributed training each rank takes an equal,
    disjoint share of every epoch's permutation.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        epoch_fn: Callable[[], int] | None = None,
    ):
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.epoch_fn = epoch_fn
        # every rank gets the same number of samples (the tail of an uneven permutation is dropped)
        self.samples = len(x) // world_size if world_size > 1 else len(x)

    def __len__(self) -> int:
        return math.ceil(self.samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.indices():
            yield self.x[idx], self.y[idx]

    def indices(self) -> Iterator[slice | torch.Tensor]:
        """The samples of each batch of the next epoch: slices in order, index tensors when shuffled (gathering
        batch by batch: one permuted copy of a whole dataset costs more than all the batches)."""
        if self.shuffle:
            epoch = self.epoch_fn() if self.epoch_fn is not None else self.epoch
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(len(self.x), generator=generator)
            self.epoch = epoch + 1
        else:
            order = None
        if self.world_size > 1:
            order = (order if order is not None else torch.arange(len(self.x)))[self.rank :: self.world_size][: self.samples]
        for start in range(0, self.samples, self.batch_size):
            yield slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]


class BatchChunk:
    """Consecutive batches of an epoch, one Lightning training step's worth: it holds their indices and gathers
    each batch when the step reaches it, so a chunk costs no memory ahead of its use. Lightning moves any batch
    with a ``to`` method to the device; here that moves each batch as it is gathered."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, indices: list[slice | torch.Tensor],
                 device: torch.device | None = None):
        self.x, self.y, self.indices, self.device = x, y, indices, device

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, part: slice) -> BatchChunk:
        return BatchChunk(self.x, self.y, self.indices[part], self.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self.indices:
            if self.device is None:
                yield self.x[idx], self.y[idx]
            else:
                yield self.x[idx].to(self.device, non_blocking=True), self.y[idx].to(self.device, non_blocking=True)

    def to(self, device: torch.device | str, **kwargs: Any) -> BatchChunk:
        device = torch.device(device)
        return BatchChunk(self.x, self.y, self.indices, None if device == self.x.device else device)


class StepChunks:
    """An epoch's batches grouped into :class:`BatchChunk` s of up to ``size`` consecutive batches: one Lightning
    training step each, in which lrlab's module takes one optimizer step per batch (see lrlab.module). The
    batches and their order are the ones ``batches`` yields, whatever ``size`` is."""

    def __init__(self, batches: TensorBatches, size: int):
        self.batches, self.size = batches, size

    def __len__(self) -> int:
        return math.ceil(len(self.batches) / self.size)

    def steps(self, chunks: int) -> int:
        """Optimizer steps (batches) in the first ``chunks`` chunks of an epoch."""
        return min(len(self.batches), chunks * self.size)

    def __iter__(self) -> Iterator[BatchChunk]:
        indices = list(self.batches.indices())
        for start in range(0, len(indices), self.size):
            yield BatchChunk(self.batches.x, self.batches.y, indices[start : start + self.size])


class TensorDataModule(pl.LightningDataModule):
    """Loads a source once, splits off a validation set, normalises with train statistics, batches in memory.

    ``source`` is a dotted path (or callable) returning :class:`Splits`; every extra keyword goes to it, so a
    data config reads ``data.data_dir``, ``data.samples`` … at the top level. Training batches come in
    :class:`StepChunks` of ``steps_per_call`` batches (the top-level ``steps_per_call`` key).
    """

    def __init__(
        self,
        source: str | Callable[..., Splits],
        batch_size: int = 64,
        eval_batch_size: int = 1024,
        val_fraction: float = 0.1,
        split_seed: int = 0,
        shuffle_seed: int = 0,
        normalize: str = "standard",
        steps_per_call: int = 1,
        **source_kwargs: Any,
    ):
        super().__init__()
        self.source = get_method(source) if isinstance(source, str) else source
        self.source_kwargs = source_kwargs
        if batch_size < 1:
            raise ConfigError("data.batch_size", f"must be >= 1 (got {batch_size})")
        if not 0 <= val_fraction < 1:
            raise ConfigError("data.val_fraction", f"must be in [0, 1) (got {val_fraction})")
        if normalize not in ("standard", "unit", "none"):
            raise ConfigError("data.normalize", f"must be standard, unit or none (got {normalize!r})")
        if steps_per_call < 1:
            raise ConfigError("steps_per_call", f"must be >= 1 (got {steps_per_call})")
        self.batch_size = batch_size
        self.steps_per_call = steps_per_call
        self.eval_batch_size = eval_batch_size
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.shuffle_seed = shuffle_seed
        self.normalize = normalize
        self.tensors: dict[str, torch.Tensor] | None = None
        self.num_classes = 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample, e.g. (1, 28, 28) or (20,): models are built from it (late binding)."""
        self.setup()
        return tuple(self.tensors["x_train"].shape[1:])

    def setup(self, stage: str | None = None) -> None:
        if self.tensors is not None:
            return
        splits = self.source(**self.source_kwargs)
        x = torch.as_tensor(np.ascontiguousarray(splits.x_train), dtype=torch.float32)
        y = torch.as_tensor(splits.y_train, dtype=torch.long)
        n_val = int(round(len(x) * self.val_fraction))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
        tensors = {"x_train": x[order[n_val:]], "y_train": y[order[n_val:]]}
        if n_val:
            tensors |= {"x_val": x[order[:n_val]], "y_val": y[order[:n_val]]}
        if splits.x_test is not None:
            tensors |= {
                "x_test": torch.as_tensor(np.ascontiguousarray(splits.x_test), dtype=torch.float32),
                "y_test": torch.as_tensor(splits.y_test, dtype=torch.long),
            }
        shift, scale = self._normalisation(tensors["x_train"])
        for key in [k for k in tensors if k.startswith("x_")]:
            tensors[key] = (tensors[key] - shift) / scale
        self.tensors = tensors
        self.num_classes = splits.num_classes

    def _normalisation(self, x_train: torch.Tensor) -> tuple[float, float]:
        if self.normalize == "standard":
            return x_train.mean().item(), x_train.std().item() or 1.0
        if self.normalize == "unit":
            return 0.0, x_train.abs().max().item() or 1.0
        return 0.0, 1.0

    def has_split(self, split: str) -> bool:
        self.setup()
        return f"x_{split}" in self.tensors

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> StepChunks:
        rank, world = self._rank()
        trainer = self.trainer
        batches = TensorBatches(
            self.tensors["x_train"], self.tensors["y_train"], self.batch_size, shuffle=True,
            seed=self.shuffle_seed, rank=rank, world_size=world,
            epoch_fn=(lambda: trainer.current_epoch) if trainer is not None else None,
        )
        return StepChunks(batches, self.steps_per_call)

    def _eval_batches(self, split: str) -> TensorBatches | list:
        if not self.has_split(split):
            return []
        rank, world = self._rank()
        return TensorBatches(self.tensors[f"x_{split}"], self.tensors[f"y_{split}"], self.eval_batch_size,
                             shuffle=False, rank=rank, world_size=world)

    def val_dataloader(self) -> TensorBatches | list:
        return self._eval_batches("val")

    def test_dataloader(self) -> TensorBatches | list:
        return self._eval_batches("test")
