"""The ``data`` config group: dataset sources and the in-memory data module that batches them."""

from lrlab.data.module import BatchChunk, Splits, StepChunks, TensorBatches, TensorDataModule

__all__ = ["BatchChunk", "Splits", "StepChunks", "TensorBatches", "TensorDataModule"]
