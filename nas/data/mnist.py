"""MNIST and Fashion-MNIST: the idx format, read without torchvision.

Both ship as four idx files (plain or gzipped) in torchvision's
``<root>/<Folder>/raw`` layout, so an existing ``data/`` folder works
unchanged; parsing the format here keeps torchvision out of the dependencies
and lets every corrupt or truncated file be named in a one-line error.

Fashion-MNIST is also found where Debian's package ``dataset-fashion-mnist``
puts it (``/usr/share/datasets/fashion-mnist``), so it needs no internet.  That
package recompresses the files, so the canonical download checksums do not
apply to it; the unpacked files are checked against the official release's
MD5s instead, wherever they come from, when they hold the official count.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from nas.data.download import DOWNLOADS, MNIST_FILES, fetch
from nas.data.errors import DataError, how_torchvision, not_found
from nas.data.splits import Splits, split_official, subset_sizes
from nas.errors import one_line

MNIST_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}

#: Where a system package installs a dataset's four idx files (one flat folder), looked
#: in after ``<data_dir>/<Folder>/raw``.  Module-level so tests can point it elsewhere.
SYSTEM_FOLDERS: dict[str, Path] = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
#: How to install what SYSTEM_FOLDERS names.
SYSTEM_PACKAGES = {"fashion-mnist": "apt-get install dataset-fashion-mnist"}

#: MD5 of each unpacked idx file of the official release, checked on a file that holds the
#: official number of items (a file of another size is the user's own data, read as it is).
#: Fashion-MNIST's from its release (zalandoresearch/fashion-mnist), equal to Debian's.
OFFICIAL_MD5 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
_OFFICIAL_COUNT = {"train": 60000, "t10k": 10000}


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


def _read_idx(path: Path, ndim: int, official_md5: str | None = None) -> np.ndarray:
    """Parse an idx file of unsigned bytes (magic 0x00 0x00 0x08 ndim, big-endian dims).

    ``official_md5`` is checked when the file holds the official release's item count.
    """
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
    if official_md5 is not None and dims[0] == _OFFICIAL_COUNT[path.name.split("-")[0]]:
        got = hashlib.md5(raw, usedforsecurity=False).hexdigest()
        if got != official_md5:
            raise DataError(f"{path} differs from the official release (unpacked MD5 {got}, "
                            f"expected {official_md5}); replace it with the official file")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=header).reshape(dims)


def _load_idx_pair(name: str, images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    md5s = OFFICIAL_MD5.get(name, {})
    x = _read_idx(images, 3, md5s.get(_stem(images)))
    y = _read_idx(labels, 1, md5s.get(_stem(labels)))
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


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz")


def mnist_paths(name: str, root: Path, download: bool) -> list[Path]:
    """The four idx files: in ``root``'s torchvision layout, else the system package's
    folder, else fetched into ``root`` when ``download`` is set."""
    raw_dir = root / MNIST_FOLDERS[name] / "raw"
    folders = [raw_dir]
    if name in SYSTEM_FOLDERS:
        folders.append(SYSTEM_FOLDERS[name])
    for folder in folders:
        paths = [_find_idx(folder, stem) for stem in MNIST_FILES]
        if all(p is not None for p in paths):
            return paths  # type: ignore[return-value]
    paths = [_find_idx(raw_dir, stem) for stem in MNIST_FILES]
    if download:
        for path, item in zip(paths, DOWNLOADS[name], strict=True):  # table follows MNIST_FILES
            if path is None:
                fetch(item, root)
        paths = [_find_idx(raw_dir, stem) for stem in MNIST_FILES]
    for stem, path in zip(MNIST_FILES, paths, strict=True):
        if path is None:
            looked = " and ".join(f"{folder / stem}[.gz]" for folder in folders)
            raise not_found(name, looked, _how_to_get(name))
    return paths  # type: ignore[return-value]


def _how_to_get(name: str) -> str:
    if name not in SYSTEM_FOLDERS:
        return how_torchvision()
    return (f"install it offline with {SYSTEM_PACKAGES[name]} (as root; or make {name}), "
            + how_torchvision())


def check_mnist_subsets(name: str, paths: list[Path], train_size: int | None = None,
                        val_size: int | None = None) -> None:
    """Refuse subset sizes the train set cannot hold, reading only its (small) labels file."""
    if train_size is not None or val_size is not None:
        available = len(_read_idx(paths[1], 1))
        subset_sizes(name, available, train_size, val_size, 10)


def load_mnist(name: str, root: Path, download: bool, seed: int,
               train_size: int | None = None, val_size: int | None = None) -> Splits:
    """MNIST / Fashion-MNIST from ``<root>/<Folder>/raw`` (plain or .gz idx files), or the
    system package's folder; ``train_size``/``val_size`` take stratified subsets."""
    train_images, train_labels, test_images, test_labels = mnist_paths(name, root, download)
    train = _load_idx_pair(name, train_images, train_labels)
    test = _load_idx_pair(name, test_images, test_labels)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(
            f"{name}: train images are {tuple(train[0].shape[2:])} "
            f"but test images are {tuple(test[0].shape[2:])}"
        )
    return split_official(name, train, test, 10, "crop", seed, train_size, val_size)
