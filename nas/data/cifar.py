"""CIFAR-10 and CIFAR-100: their python-pickle batches, read safely.

The batches are pickles, and an arbitrary pickle can run arbitrary code, so
they go through a restricted unpickler that only builds numpy arrays.  The
files sit in torchvision's extracted folders, so an existing ``data/`` folder
works unchanged without torchvision itself.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data.download import fetch_dataset
from nas.data.errors import DataError, how_torchvision, not_found
from nas.data.splits import Splits, split_official
from nas.errors import one_line

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": (tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)),
    "cifar100": (("train",), ("test",)),
}
_CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles of bytes use it; latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refusing codec {encoding!r}")
    return text.encode("latin1")


def _pickle_allowed() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR pickle may name: what rebuilding numpy arrays needs."""
    reconstruct = np.ndarray((0,), dtype=np.uint8).__reduce__()[0]
    frombuffer = np.zeros(1, dtype=np.uint8).__reduce_ex__(5)[0]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build dicts, lists, bytes and numpy arrays, and nothing else.

    A pickle can name any importable callable and call it; refusing every
    global outside a short allow-list makes loading a downloaded file safe.
    """

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path
        self._allowed = _pickle_allowed()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"refusing to load {self._path}: the pickle asks for {module}.{name}, "
                f"but only numpy arrays are allowed"
            ) from None


def _load_cifar_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as handle:
            entry = _NumpyOnlyUnpickler(handle, path).load()
    except DataError:
        raise
    except Exception as exc:  # corrupt pickles fail in many ways (EOF, struct, type errors)
        raise DataError(f"cannot read {path}: not a CIFAR batch ({one_line(exc)})") from None
    if not isinstance(entry, dict):
        raise DataError(f"cannot read {path}: expected a dict, found {type(entry).__name__}")

    def field(key: str) -> Any:
        for k in (key.encode(), key):  # Python 2 files give bytes keys, re-pickled ones str
            if k in entry:
                return entry[k]
        raise DataError(f"cannot read {path}: it has no {key!r} entry")

    try:
        data = np.asarray(field("data"), dtype=np.uint8)
        labels = np.asarray(field(label_key), dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {one_line(exc)}") from None
    if data.size % 3072 or data.size // 3072 != labels.shape[0]:
        raise DataError(
            f"cannot read {path}: {data.size} data bytes do not make "
            f"{labels.shape[0]} 3×32×32 images"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _load_cifar_files(
    name: str, paths: list[Path], label_key: str
) -> tuple[torch.Tensor, torch.Tensor]:
    batches = [_load_cifar_batch(p, label_key) for p in paths]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    if y.size and (y.min() < 0 or y.max() >= _CIFAR_CLASSES[name]):
        raise DataError(
            f"{name}: labels in {paths[0].parent} fall outside 0..{_CIFAR_CLASSES[name] - 1}"
        )
    return torch.from_numpy(x).float().div_(255.0), torch.from_numpy(y)


def cifar_paths(name: str, root: Path, download: bool) -> list[Path]:
    """The batch files, fetched and unpacked first when missing and ``download`` is set."""
    folder = root / CIFAR_FOLDERS[name]
    train_names, test_names = _CIFAR_FILES[name]
    paths = [folder / f for f in (*train_names, *test_names)]
    if download and not all(p.is_file() for p in paths):
        fetch_dataset(name, root)
    for path in paths:
        if not path.is_file():
            raise not_found(name, path, how_torchvision())
    return paths


def load_cifar(name: str, root: Path, download: bool, seed: int,
               train_size: int | None = None, val_size: int | None = None) -> Splits:
    """CIFAR-10/100 from torchvision's extracted python-pickle folders."""
    train_names, _ = _CIFAR_FILES[name]
    paths = cifar_paths(name, root, download)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    train = _load_cifar_files(name, paths[: len(train_names)], label_key)
    test = _load_cifar_files(name, paths[len(train_names) :], label_key)
    return split_official(name, train, test, _CIFAR_CLASSES[name], "crop-flip", seed,
                          train_size, val_size)
