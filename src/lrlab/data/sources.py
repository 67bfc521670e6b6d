"""Dataset sources: functions that return a :class:`~lrlab.data.module.Splits` of in-memory arrays.

Each ``conf/data/*.yaml`` names one of them as ``source._target_`` (with ``_partial_: true``); the data module
calls it once in ``setup``. Add your own by pointing ``data.source._target_`` at any function returning Splits.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import shutil
import struct
import urllib.request
from pathlib import Path

import numpy as np

from lrlab.data.module import Splits
from lrlab.errors import ConfigError

# IDX header: two zero bytes, a type code, the number of dimensions (http://yann.lecun.com/exdb/mnist/).
_IDX_UBYTE = 0x08


def digits() -> Splits:
    """scikit-learn's bundled 8×8 digits (1,797 images, 10 classes, pixel values 0–16): works offline.

    The CSV is read straight from the installed scikit-learn, without importing it (which costs ~0.7 s).
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("data.source", "needs scikit-learn for the digits data: pip install scikit-learn")
    csv = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if csv.exists():
        table = np.loadtxt(csv, delimiter=",", dtype=np.float32)
        images, labels = table[:, :-1], table[:, -1].astype(np.int64)
    else:  # a scikit-learn that stores the file elsewhere
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images, labels = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    return Splits(x_train=images.reshape(-1, 1, 8, 8), y_train=labels, num_classes=10)


def synthetic(
    samples: int = 1000,
    features: int = 20,
    classes: int = 10,
    test_samples: int = 0,
    noise: float = 1.0,
    seed: int = 0,
    image_shape: list[int] | None = None,
) -> Splits:
    """Seeded Gaussian blobs: one random centre per class, ``noise`` std around it.

    ``image_shape`` (e.g. ``[1, 28, 28]``) reshapes each sample, for MNIST-shaped benchmarks and tests; its
    product must equal ``features``.
    """
    if image_shape is not None and int(np.prod(image_shape)) != features:
        raise ConfigError("data.image_shape", f"must multiply to data.features={features} (got {list(image_shape)})")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal(size=(classes, features), dtype=np.float32)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, classes, size=n)
        x = rng.standard_normal(size=(n, features), dtype=np.float32)  # drawn in float32: 4x faster than a cast
        x *= noise
        x += centres[y]
        return (x.reshape(n, *image_shape) if image_shape else x), y.astype(np.int64)

    x_train, y_train = draw(samples)
    x_test, y_test = draw(test_samples) if test_samples else (None, None)
    return Splits(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, num_classes=classes)


def idx(
    data_dir: str,
    files: dict[str, str],
    num_classes: int,
    download: bool = False,
    url: str | None = None,
    md5: dict[str, str] | None = None,
) -> Splits:
    """IDX-format datasets (MNIST, Fashion-MNIST): ``files`` maps train_images/train_labels/test_images/test_labels
    to file names in ``data_dir`` (``.gz`` or raw). With ``download`` the missing ones are fetched from ``url`` and
    checked against ``md5``.
    """
    root = Path(data_dir).expanduser()
    missing = _missing(root, files)
    if missing and download:
        if not url:
            raise ConfigError("data.url", "is needed to download the dataset (got null)")
        root.mkdir(parents=True, exist_ok=True)
        for name in missing:
            _download(url.rstrip("/") + "/" + name, root / name, (md5 or {}).get(name))
    check_idx_files(data_dir, files)
    arrays = {split: _read_idx(root / name) for split, name in files.items()}
    return Splits(
        x_train=_as_images(arrays["train_images"]),
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=_as_images(arrays["test_images"]) if "test_images" in arrays else None,
        y_test=arrays["test_labels"].astype(np.int64) if "test_labels" in arrays else None,
        num_classes=num_classes,
    )


def _missing(root: Path, files: dict[str, str]) -> list[str]:
    return [name for name in files.values() if not (root / name).exists()]


def check_idx_files(data_dir: str, files: dict[str, str]) -> None:
    """The files exist and each starts with an unsigned-byte IDX header (cheap: reads a few bytes of each)."""
    root = Path(data_dir).expanduser()
    missing = _missing(root, files)
    if missing:
        raise ConfigError(
            "data.data_dir",
            f"has no {', '.join(missing)} (looked in {root}): copy the IDX files there, point data.data_dir at "
            "them, or set data.download=true to fetch them from data.url",
        )
    for name in files.values():
        _header(root / name)


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _header(path: Path) -> tuple[int, ...]:
    """The shape an IDX file declares; a ConfigError naming the file if it is not one."""
    try:
        with _open(path) as f:
            head = f.read(4)
            ndim = head[3] if len(head) == 4 else 0
            dims = f.read(4 * ndim)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ConfigError("data.data_dir", f"file {path} cannot be read ({err}): re-download it") from err
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != _IDX_UBYTE or len(dims) != 4 * ndim:
        raise ConfigError("data.data_dir", f"file {path} is not an unsigned-byte IDX file (bad header): re-download it")
    return struct.unpack(f">{ndim}I", dims)


def _as_images(array: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 → (N, 1, H, W) float32, still in 0–255: the data module normalises."""
    return array.reshape(array.shape[0], 1, *array.shape[1:]).astype(np.float32)


def _read_idx(path: Path) -> np.ndarray:
    shape = _header(path)
    with _open(path) as f:
        data = f.read()
    header = 4 + 4 * len(shape)
    if len(data) - header != int(np.prod(shape)):
        raise ConfigError("data.data_dir", f"file {path} is truncated ({len(data) - header} bytes for shape {shape}): re-download it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _download(url: str, dest: Path, md5: str | None) -> None:
    partial = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ConfigError("data.url", f"download of {url} failed ({err}): check data.url or copy the files to data.data_dir") from err
    if md5 is not None:
        digest = hashlib.md5(partial.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != md5:
            partial.unlink()
            raise ConfigError("data.md5", f"mismatch for {url} (got {digest}, want {md5}): the mirror serves other bytes")
    partial.rename(dest)
