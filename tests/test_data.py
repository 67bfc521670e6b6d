"""Data sources and in-memory batching, on arrays and IDX files the tests write."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading

import numpy as np
import pytest
import torch

from conftest import write_idx
from lrlab.data import StepChunks, TensorBatches, TensorDataModule
from lrlab.data import sources
from lrlab.errors import ConfigError

FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}


def test_idx_reader_reads_gz_and_raw_files(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / "a.gz", images)
    write_idx(tmp_path / "b", images)
    assert np.array_equal(sources._read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(sources._read_idx(tmp_path / "b"), images)


def test_mnist_source_shapes(mnist_dir):
    splits = sources.idx(str(mnist_dir), FILES, num_classes=10)
    assert splits.x_train.shape == (200, 1, 28, 28) and splits.x_test.shape == (50, 1, 28, 28)
    assert splits.y_train.dtype == np.int64 and splits.num_classes == 10


def test_missing_files_name_the_key_and_the_fix(tmp_path):
    with pytest.raises(ConfigError) as err:
        sources.idx(str(tmp_path), FILES, num_classes=10)
    assert str(err.value).startswith("data.data_dir has no train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz")
    assert "data.download=true" in str(err.value)


@pytest.mark.parametrize(("data", "problem"), [(b"\x00\x00\x0d\x03" + b"\x00" * 12, "bad header"),
                                                (b"\x00\x00\x08\x01\x00\x00\x00\x09" + b"\x00" * 3, "truncated")])
def test_corrupt_idx_file_is_named(tmp_path, data, problem):
    (tmp_path / "x").write_bytes(data)
    with pytest.raises(ConfigError, match=problem):
        sources._read_idx(tmp_path / "x")


@pytest.fixture
def http_mirror(mnist_dir):
    """A real HTTP server on 127.0.0.1 serving the test's MNIST files."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(mnist_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_fetches_and_checks_md5(tmp_path, mnist_dir, http_mirror):
    md5 = {name: hashlib.md5((mnist_dir / name).read_bytes()).hexdigest() for name in FILES.values()}
    target = tmp_path / "fetched"
    splits = sources.idx(str(target), FILES, num_classes=10, download=True, url=http_mirror, md5=md5)
    assert splits.x_train.shape == (200, 1, 28, 28)
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES.values())


def test_download_with_wrong_md5_keeps_nothing(tmp_path, http_mirror):
    target = tmp_path / "fetched"
    bad = {name: "0" * 32 for name in FILES.values()}
    with pytest.raises(ConfigError, match="data.md5 mismatch"):
        sources.idx(str(target), FILES, num_classes=10, download=True, url=http_mirror, md5=bad)
    assert list(target.iterdir()) == []


def test_synthetic_is_seeded_and_shaped():
    a = sources.synthetic(samples=50, features=784, image_shape=[1, 28, 28], seed=3)
    b = sources.synthetic(samples=50, features=784, image_shape=[1, 28, 28], seed=3)
    assert a.x_train.shape == (50, 1, 28, 28) and np.array_equal(a.x_train, b.x_train)
    with pytest.raises(ConfigError, match="data.image_shape must multiply to data.features=784"):
        sources.synthetic(features=784, image_shape=[1, 27, 28])


def test_digits_offline():
    splits = sources.digits()
    assert splits.x_train.shape == (1797, 1, 8, 8) and set(np.unique(splits.y_train)) == set(range(10))


def test_batches_cover_each_sample_once_per_epoch_in_a_seeded_order():
    x = torch.arange(10).float().unsqueeze(1)
    batches = TensorBatches(x, torch.arange(10), batch_size=4, shuffle=True, seed=1)
    assert len(batches) == 3
    epoch0 = torch.cat([xb for xb, _ in batches]).squeeze(1)
    epoch1 = torch.cat([xb for xb, _ in batches]).squeeze(1)
    assert sorted(epoch0.tolist()) == list(range(10)) and not torch.equal(epoch0, epoch1)
    again = TensorBatches(x, torch.arange(10), batch_size=4, shuffle=True, seed=1)
    assert torch.equal(torch.cat([xb for xb, _ in again]).squeeze(1), epoch0)


@pytest.mark.parametrize("size", [1, 3, 100])
def test_step_chunks_hold_the_same_batches_in_the_same_order(size):
    x, y = torch.arange(22).float().unsqueeze(1), torch.arange(22)
    plain = [yb for _, yb in TensorBatches(x, y, batch_size=4, shuffle=True, seed=3)]
    chunks = list(StepChunks(TensorBatches(x, y, batch_size=4, shuffle=True, seed=3), size))
    assert len(chunks) == len(StepChunks(TensorBatches(x, y, 4, shuffle=True), size)) == -(-6 // size)
    chunked = [yb for chunk in chunks for _, yb in chunk]
    assert len(chunked) == len(plain) == 6 and all(torch.equal(a, b) for a, b in zip(chunked, plain))
    first = chunks[0][:1]  # a chunk cut short (trainer.max_steps inside it)
    assert len(first) == 1 and torch.equal(next(iter(first))[1], chunked[0])


def test_a_chunk_moves_each_batch_to_the_device_lightning_names():
    chunk = next(iter(StepChunks(TensorBatches(torch.ones(8, 2), torch.zeros(8, dtype=torch.long), 4, shuffle=False), 2)))
    assert chunk.to("cpu").device is None  # already there: nothing to move
    moved = list(chunk.to(torch.device("meta")))  # Lightning's batch_to_device calls .to(device)
    assert len(moved) == 2 and all(xb.device.type == yb.device.type == "meta" for xb, yb in moved)
    assert all(xb.device.type == "cpu" for xb, _ in chunk)  # the chunk itself is unchanged


def test_distributed_ranks_take_disjoint_equal_shares():
    x, y = torch.arange(11).float().unsqueeze(1), torch.arange(11)
    shares = [torch.cat([yb for _, yb in TensorBatches(x, y, 4, shuffle=True, seed=0, rank=r, world_size=2)])
              for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 5
    assert not set(shares[0].tolist()) & set(shares[1].tolist())


def test_datamodule_splits_and_normalises_with_train_statistics():
    dm = TensorDataModule(source=sources.synthetic, samples=500, features=8, val_fraction=0.2, seed=0)
    dm.setup()
    assert len(dm.tensors["x_train"]) == 400 and len(dm.tensors["x_val"]) == 100
    assert dm.tensors["x_train"].mean().item() == pytest.approx(0, abs=1e-5)
    assert dm.tensors["x_train"].std().item() == pytest.approx(1, abs=1e-4)
    assert dm.input_shape == (8,) and dm.num_classes == 10
    loader = dm.train_dataloader()  # the in-memory fast path: no DataLoader, several optimizer steps per call
    assert isinstance(loader, StepChunks) and isinstance(loader.batches, TensorBatches)


def test_datamodule_rejects_bad_settings():
    with pytest.raises(ConfigError, match=r"data.val_fraction must be in \[0, 1\) \(got 1.0\)"):
        TensorDataModule(source=sources.digits, val_fraction=1.0)
