"""MNIST and Fashion-MNIST: the idx format, read without torchvision.

Both ship as four idx files (plain or gzipped) in torchvision's
``<root>/<Folder>/raw`` layout, so an existing ``data/`` folder works
unchanged; parsing the format here keeps torchvision out of the dependencies
and lets every corrupt or truncated file be named in a one-line error.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from nas.data.download import DOWNLOADS, MNIST_FILES, fetch
from nas.data.errors import DataError, how_torchvision, not_found
from nas.data.splits import Splits, split_official
from nas.errors import one_line

MNIST_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def _find_idx(raw_dir: Path, stem: str) -> Path | None:
    for candidate in (raw_dir / stem, raw_dir / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}") from None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Parse an idx file of unsigned bytes (magic 0x00 0x00 0x08 ndim, big-endian dims)."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or raw[3] != ndim:
        found = raw[:4].hex() if raw else "an empty file"
        raise DataError(
            f"{path} is not an idx file of {ndim}-d unsigned bytes "
            f"(magic is {found}, expected 000008{ndim:02x})"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count:
        raise DataError(
            f"{path} is corrupt or truncated: holds {len(raw) - header} data bytes, "
            f"its header says {count}"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=header).reshape(dims)


def _load_idx_pair(name: str, images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x = _read_idx(images, 3)
    y = _read_idx(labels, 1)
    if x.shape[0] != y.shape[0]:
        raise DataError(
            f"{name}: {images} holds {x.shape[0]} images but {labels} holds {y.shape[0]} labels"
        )
    if x.shape[1] != x.shape[2]:
        raise DataError(
            f"{name}: {images} holds {x.shape[1]}×{x.shape[2]} images, expected square ones"
        )
    if y.size and int(y.max()) >= 10:
        raise DataError(f"{name}: {labels} holds label {int(y.max())}, expected 0..9")
    x_t = torch.from_numpy(x.copy()).unsqueeze(1).float().div_(255.0)
    return x_t, torch.from_numpy(y.astype(np.int64))


def mnist_paths(name: str, root: Path, download: bool) -> list[Path]:
    """The four idx files, fetched first when missing and ``download`` is set."""
    raw_dir = root / MNIST_FOLDERS[name] / "raw"
    paths = [_find_idx(raw_dir, stem) for stem in MNIST_FILES]
    if download and any(p is None for p in paths):
        for path, item in zip(paths, DOWNLOADS[name], strict=True):  # table follows MNIST_FILES
            if path is None:
                fetch(item, root)
        paths = [_find_idx(raw_dir, stem) for stem in MNIST_FILES]
    for stem, path in zip(MNIST_FILES, paths, strict=True):
        if path is None:
            raise not_found(name, raw_dir / f"{stem}[.gz]", how_torchvision())
    return paths  # type: ignore[return-value]


def load_mnist(name: str, root: Path, download: bool, seed: int) -> Splits:
    """MNIST / Fashion-MNIST from ``<root>/<Folder>/raw`` (plain or .gz idx files)."""
    train_images, train_labels, test_images, test_labels = mnist_paths(name, root, download)
    train = _load_idx_pair(name, train_images, train_labels)
    test = _load_idx_pair(name, test_images, test_labels)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(
            f"{name}: train images are {tuple(train[0].shape[2:])} "
            f"but test images are {tuple(test[0].shape[2:])}"
        )
    return split_official(name, train, test, 10, "crop", seed)
