"""Datasets for resnas: load a named dataset into train/val/test tensors.

Every dataset ends up as one :class:`Splits` object holding whole-split
tensors (``N×C×H×W`` float32 images, int64 labels), normalised per channel
with statistics of the train split only, so nothing about val or test leaks
into training.  Keeping whole splits as tensors (on the GPU when one is
used, as airbench does) avoids a DataLoader and its per-image Python work,
which would dominate the cost of the small networks a search trains.
:func:`augment_batch` does the matching batched augmentation on whatever
device the batch lives on.

The on-disk datasets use torchvision's layout (so an existing ``data/``
folder works unchanged), but torchvision itself is not required: the idx and
CIFAR pickle formats are read here.  CIFAR pickles go through a restricted
unpickler that only builds numpy arrays, because an arbitrary pickle can run
arbitrary code.

Splits are deterministic for a seed and stratified by class; the test split
is never used for selection (the search only reads val).
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import http.client
import logging
import os
import pickle
import struct
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from nas.errors import NasError

__all__ = ["DATASETS", "DataError", "Splits", "augment_batch", "load"]

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = (
    "digits",
    "synthetic",
    "mnist",
    "fashion-mnist",
    "cifar10",
    "cifar100",
    "imagefolder",
)

AUGMENT_MODES: tuple[str, ...] = ("none", "crop", "crop-flip")

#: Options each dataset accepts, with their defaults.  Anything else is a typo.
_OPTIONS: dict[str, dict[str, int]] = {
    "digits": {},
    "synthetic": {"channels": 3, "image_size": 32, "classes": 10, "samples": 5000},
    "mnist": {},
    "fashion-mnist": {},
    "cifar10": {},
    "cifar100": {},
    "imagefolder": {"channels": 3, "image_size": 32},
}

#: Train/val/test fractions where we make all three splits ourselves.
_THREE_WAY = (0.70, 0.15, 0.15)
#: Where the dataset ships an official test set, val is this share of its train set.
_VAL_OF_TRAIN = 0.10

_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_MNIST_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": (tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",)),
    "cifar100": (("train",), ("test",)),
}
_CIFAR_CLASSES = {"cifar10": 10, "cifar100": 100}


@dataclass(frozen=True)
class _Download:
    """One file to fetch: where from, where to (relative to data_dir), its MD5."""

    url: str
    dest: str
    md5: str | None
    extract: bool = False  # a tarball to unpack into data_dir


def _mnist_downloads(base: str, folder: str, md5s: tuple[str, ...]) -> list[_Download]:
    return [
        _Download(f"{base}{name}.gz", f"{folder}/raw/{name}.gz", md5)
        for name, md5 in zip(_MNIST_FILES, md5s, strict=True)
    ]


#: What ``download=True`` fetches (torchvision's sources and checksums).  A
#: module-level table so tests can point it at local ``file://`` URLs.
_DOWNLOADS: dict[str, list[_Download]] = {
    "mnist": _mnist_downloads(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "MNIST",
        (
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    "fashion-mnist": _mnist_downloads(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "FashionMNIST",
        (
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "25c81989df183df01b3e8a0aad5dffbe",
            "bef4ecab320f06d8554ea6380940ec79",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    "cifar10": [
        _Download(
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "cifar-10-python.tar.gz",
            "c58f30108f718f92721af3b95e74349a",
            extract=True,
        )
    ],
    "cifar100": [
        _Download(
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            "cifar-100-python.tar.gz",
            "eb9058c3a382ffc7106e4002c42a8d85",
            extract=True,
        )
    ],
}

_DOWNLOAD_TIMEOUT_S = 60.0


class DataError(NasError):
    """A dataset could not be found, read or built; the message is one line for the user."""


@dataclass
class Splits:
    """Whole train/val/test splits as tensors, ready to index into batches.

    Images are float32 ``N×C×H×W`` normalised with the train split's
    per-channel mean and std; labels are int64 in ``[0, num_classes)``.
    ``augment`` names the :func:`augment_batch` mode that suits the dataset.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    augment: str

    @property
    def in_channels(self) -> int:
        """Channels of every image (the first conv layer's input width)."""
        return int(self.train_x.shape[1])

    @property
    def image_size(self) -> int:
        """Height (= width) of every image."""
        return int(self.train_x.shape[2])

    def to(self, device: torch.device | str) -> Splits:
        """A new :class:`Splits` with every tensor on ``device`` (self is unchanged)."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return replace(self, **moved)


# --------------------------------------------------------------------------- public API


def load(
    name: str,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    seed: int = 0,
    device: torch.device | str | None = None,
    options: Mapping[str, Any] | None = None,
) -> Splits:
    """Load dataset ``name`` as normalised, stratified train/val/test splits.

    ``data_dir`` (default ``./data``) is where the on-disk datasets live in
    torchvision's layout, or the class-folder root for ``imagefolder``.
    ``download`` fetches missing mnist/fashion-mnist/cifar files there.  The
    same ``seed`` always gives the same splits.  Loading happens on the CPU;
    the result is then moved to ``device`` when one is given.  Every user
    mistake (unknown name or option, missing or corrupt files, failed
    download) raises :class:`DataError`.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    opts = _check_options(key, options)
    root = Path(data_dir) if data_dir is not None else Path("data")
    target = _resolve_device(device)

    if key == "digits":
        splits = _load_digits(seed)
    elif key == "synthetic":
        splits = _load_synthetic(seed, **opts)
    elif key in _MNIST_FOLDERS:
        splits = _load_mnist(key, root, download, seed)
    elif key in _CIFAR_FOLDERS:
        splits = _load_cifar(key, root, download, seed)
    else:
        splits = _load_imagefolder(root, seed, **opts)

    if target is not None and target != torch.device("cpu"):
        try:
            splits = splits.to(target)
        except (RuntimeError, AssertionError) as exc:  # e.g. CUDA missing or out of memory
            raise DataError(f"cannot move {key} to device {target}: {_one_line(exc)}") from None
    return splits


def prepare(name: str, *, data_dir: str | Path | None = None, download: bool = False) -> None:
    """Make sure dataset ``name`` can be loaded, without loading it.

    ``nas search`` calls this once in the driver before any trial starts: a
    missing dataset is one error there rather than a failed trial on every
    worker, and ``download`` fetches the files once rather than once per trial.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    root = Path(data_dir) if data_dir is not None else Path("data")
    if key in _MNIST_FOLDERS:
        _mnist_paths(key, root, download)
    elif key in _CIFAR_FOLDERS:
        _cifar_paths(key, root, download)
    elif key == "imagefolder":
        _imagefolder_classes(root)


def augment_batch(
    x: torch.Tensor, mode: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Randomly augment a batch ``N×C×H×W`` on its own device, without a per-image loop.

    ``"crop"`` zero-pads ``H // 14`` px (at least 1: 1 px for the 16-px digits,
    2 px for 28-px MNIST) and crops back to the original size at a random
    offset per image (a random translation by up to that much; zero is the train
    mean after normalisation).  ``"crop-flip"`` does the CIFAR recipe: 4 px
    pad and random crop, plus a horizontal flip of a random half.  ``"none"``
    returns ``x`` itself.  Random numbers come from ``generator`` (which may
    live on the CPU while ``x`` is on a GPU), so a seeded generator makes the
    result reproducible.
    """
    if mode not in AUGMENT_MODES:
        raise DataError(f"unknown augmentation {mode!r}; choose one of: {', '.join(AUGMENT_MODES)}")
    if mode == "none":
        return x
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects an N×C×H×W batch, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        return x
    # A shift of 2 px on the 16-px digits (upsampled from 8) moves them by a
    # whole source pixel, which costs several points in a 10-epoch run.
    pad = max(1, x.shape[2] // 14) if mode == "crop" else 4
    out = _random_crop(x, pad, generator)
    if mode == "crop-flip":
        flip = _rand(x.shape[0], generator, x.device) < 0.5
        out = torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)
    return out


# --------------------------------------------------------------------------- augmentation


def _generator_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device):
    """``n`` integers in ``[0, high)`` drawn on the generator's device, returned on ``device``."""
    src = _generator_device(generator, device)
    return torch.randint(0, high, (n,), generator=generator, device=src).to(device)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    src = _generator_device(generator, device)
    return torch.rand(n, generator=generator, device=src).to(device)


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Pad by ``pad`` zeros and crop an ``H×W`` window at a random offset per image.

    Two ``gather`` calls pick each image's rows and then its columns, so the
    whole batch is cropped in a couple of kernels on any device.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = _randint(2 * pad + 1, n, generator, x.device)
    dx = _randint(2 * pad + 1, n, generator, x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # n×h
    cols = dx[:, None] + torch.arange(w, device=x.device)  # n×w
    rows = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, rows)  # n×c×h×(w+2p)
    cols = cols.view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, cols)


# --------------------------------------------------------------------------- helpers


def _one_line(exc: BaseException | str) -> str:
    """An error's text squeezed onto one line (the CLI prints exactly one)."""
    text = str(exc)
    if not text and isinstance(exc, BaseException):
        text = type(exc).__name__
    return " ".join(text.split())


def _resolve_device(device: torch.device | str | None) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataError(f"invalid device {device!r}: {_one_line(exc)}") from None


def _check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, int]:
    """Merge ``options`` over the dataset's defaults, refusing unknown keys and bad values."""
    allowed = _OPTIONS[name]
    if options is None:
        return dict(allowed)
    if not isinstance(options, Mapping):
        raise DataError(f"dataset options for {name} must be a mapping, got {options!r}")
    merged = dict(allowed)
    for key, value in options.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed)) if allowed else "none"
            raise DataError(f"unknown option {key!r} for dataset {name}; allowed options: {known}")
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        ):
            raise DataError(f"dataset option {key} for {name} must be an integer, got {value!r}")
        merged[key] = int(value)
    if "channels" in merged:
        if name == "imagefolder" and merged["channels"] not in (1, 3):
            raise DataError(f"imagefolder option channels must be 1 or 3, got {merged['channels']}")
        if merged["channels"] < 1:
            raise DataError(f"dataset option channels must be at least 1, got {merged['channels']}")
    if merged.get("image_size", 1) < 1:
        raise DataError(f"dataset option image_size must be at least 1, got {merged['image_size']}")
    if name == "synthetic":
        if merged["classes"] < 2:
            raise DataError(f"synthetic option classes must be at least 2, got {merged['classes']}")
        if merged["samples"] < 3 * merged["classes"]:
            raise DataError(
                f"synthetic option samples must be at least 3 × classes "
                f"({3 * merged['classes']}) so every split holds every class, "
                f"got {merged['samples']}"
            )
    return merged


def _seed_int(seed: int) -> int:
    """Any Python int as a non-negative seed numpy and torch both accept."""
    return int(seed) % (2**63)


def _class_counts(n: int, fractions: tuple[float, ...]) -> list[int]:
    """How many of a class's ``n`` items go to each split; the first split takes the rest.

    Rounded per class; a class big enough gets at least one item in every
    split with a non-zero fraction, and the first (train) split always keeps
    at least one.
    """
    rest = [round(n * f) for f in fractions[1:]]
    wanted = sum(1 for f in fractions[1:] if f > 0)
    if n > wanted:
        rest = [max(k, 1) if f > 0 else k for k, f in zip(rest, fractions[1:], strict=True)]
    while rest and sum(rest) > max(n - 1, 0):
        rest[rest.index(max(rest))] -= 1
    return [n - sum(rest), *rest]


def _stratified_indices(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into disjoint, shuffled parts, class by class.

    Each class is shuffled with the seed and cut by ``fractions``, so every
    split has (about) the same class balance and the same seed always gives
    the same parts.
    """
    rng = np.random.default_rng(_seed_int(seed))
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        start = 0
        for part, count in zip(parts, _class_counts(len(idx), fractions), strict=True):
            part.append(idx[start : start + count])
            start += count
    return [rng.permutation(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def _normalise(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every split by the train split's per-channel mean and std."""
    std, mean = torch.std_mean(train, dim=(0, 2, 3), keepdim=True, correction=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))  # a constant channel stays put
    return [((t - mean) / std).contiguous() for t in (train, *others)]


def _make_splits(
    name: str,
    x: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    y: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    num_classes: int,
    augment: str,
) -> Splits:
    train_x, val_x, test_x = _normalise(*(t.float() for t in x))
    train_y, val_y, test_y = (t.long().contiguous() for t in y)
    return Splits(name, train_x, train_y, val_x, val_y, test_x, test_y, num_classes, augment)


def _split_three_way(
    name: str, x: torch.Tensor, y: torch.Tensor, num_classes: int, augment: str, seed: int
) -> Splits:
    """Stratified 70/15/15 train/val/test split of one pool of images."""
    parts = [torch.from_numpy(p) for p in _stratified_indices(y.numpy(), _THREE_WAY, seed)]
    return _make_splits(
        name, tuple(x[p] for p in parts), tuple(y[p] for p in parts), num_classes, augment
    )


def _split_official(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    augment: str,
    seed: int,
) -> Splits:
    """Official test set as test; val is a stratified share of the official train set."""
    x, y = train
    tr, va = (
        torch.from_numpy(p)
        for p in _stratified_indices(y.numpy(), (1 - _VAL_OF_TRAIN, _VAL_OF_TRAIN), seed)
    )
    return _make_splits(
        name, (x[tr], x[va], test[0]), (y[tr], y[va], test[1]), num_classes, augment
    )


def _not_found(name: str, path: Path, how: str) -> DataError:
    return DataError(f"{name} not found: looked for {path}; {how}")


_HOW_TORCHVISION = "pass --data-dir DIR holding torchvision's layout, or --download to fetch it"


# --------------------------------------------------------------------------- digits, synthetic


def _load_digits(seed: int) -> Splits:
    """scikit-learn's 1,797 real 8×8 digits, scaled to [0, 1] and upsampled to 16×16.

    Bundled with scikit-learn, so it needs no download, yet deep plain nets
    already fail on it where residual ones do not.
    """
    from sklearn.datasets import load_digits  # lazy: only this dataset needs scikit-learn

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    return _split_three_way("digits", images, labels, 10, "crop", seed)


def _load_synthetic(
    seed: int, *, channels: int, image_size: int, classes: int, samples: int
) -> Splits:
    """Class prototypes (smooth random images) plus per-sample noise.

    Any shape or size, no files, learnable by a network: meant for
    throughput benchmarks and device checks, not for accuracy claims.
    """
    gen = torch.Generator().manual_seed(_seed_int(seed))
    low = max(2, image_size // 4)
    protos = torch.randn(classes, channels, low, low, generator=gen)
    protos = F.interpolate(
        protos, size=(image_size, image_size), mode="bilinear", align_corners=False
    )
    protos = protos / protos.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    labels = (torch.arange(samples) % classes)[torch.randperm(samples, generator=gen)]
    images = protos[labels] + torch.randn(samples, channels, image_size, image_size, generator=gen)
    augment = "crop-flip" if channels == 3 else "crop"
    return _split_three_way("synthetic", images, labels, classes, augment, seed)


# --------------------------------------------------------------------------- downloads


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(item: _Download, root: Path) -> Path:
    """Download one file into ``root`` atomically (via ``.part``), checking its MD5."""
    dest = root / item.dest
    if dest.is_file() and (item.md5 is None or _md5(dest) == item.md5):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {dest.parent}: {_one_line(exc)}") from None
    part = dest.with_name(dest.name + ".part")
    log.info("downloading %s to %s", item.url, dest)
    try:
        with (
            urllib.request.urlopen(item.url, timeout=_DOWNLOAD_TIMEOUT_S) as response,
            part.open("wb") as out,
        ):
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise DataError(
            f"download of {item.url} failed: {_one_line(str(reason))}; "
            f"fetch it yourself into {dest.parent}"
        ) from None
    if item.md5 is not None and (got := _md5(part)) != item.md5:
        part.unlink(missing_ok=True)
        raise DataError(f"download of {item.url} failed: MD5 is {got}, expected {item.md5}")
    os.replace(part, dest)
    return dest


def _extract(archive: Path, root: Path) -> None:
    """Unpack a tarball into ``root``, refusing links and paths that escape it."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(root, filter="data")
            else:  # Python < 3.10.12 has no extraction filters: check members ourselves
                base = root.resolve()
                for member in tar.getmembers():
                    target = (base / member.name).resolve()
                    if not (member.isreg() or member.isdir()) or (
                        target != base and base not in target.parents
                    ):
                        raise DataError(f"{archive}: refusing unsafe archive member {member.name}")
                tar.extractall(root)  # noqa: S202 - members checked above
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot unpack {archive}: {_one_line(exc)}") from None


def _download(name: str, root: Path) -> None:
    for item in _DOWNLOADS[name]:
        path = _fetch(item, root)
        if item.extract:
            _extract(path, root)


# --------------------------------------------------------------------------- mnist, fashion-mnist


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
        raise DataError(f"cannot read {path}: {_one_line(exc)}") from None


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


def _mnist_paths(name: str, root: Path, download: bool) -> list[Path]:
    """The four idx files, fetched first when missing and ``download`` is set."""
    raw_dir = root / _MNIST_FOLDERS[name] / "raw"
    paths = [_find_idx(raw_dir, stem) for stem in _MNIST_FILES]
    if download and any(p is None for p in paths):
        for path, item in zip(paths, _DOWNLOADS[name], strict=True):  # table follows _MNIST_FILES
            if path is None:
                _fetch(item, root)
        paths = [_find_idx(raw_dir, stem) for stem in _MNIST_FILES]
    for stem, path in zip(_MNIST_FILES, paths, strict=True):
        if path is None:
            raise _not_found(name, raw_dir / f"{stem}[.gz]", _HOW_TORCHVISION)
    return paths  # type: ignore[return-value]


def _load_mnist(name: str, root: Path, download: bool, seed: int) -> Splits:
    """MNIST / Fashion-MNIST from ``<root>/<Folder>/raw`` (plain or .gz idx files)."""
    train_images, train_labels, test_images, test_labels = _mnist_paths(name, root, download)
    train = _load_idx_pair(name, train_images, train_labels)
    test = _load_idx_pair(name, test_images, test_labels)
    if train[0].shape[1:] != test[0].shape[1:]:
        raise DataError(
            f"{name}: train images are {tuple(train[0].shape[2:])} "
            f"but test images are {tuple(test[0].shape[2:])}"
        )
    return _split_official(name, train, test, 10, "crop", seed)


# --------------------------------------------------------------------------- cifar10, cifar100


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
        raise DataError(f"cannot read {path}: not a CIFAR batch ({_one_line(exc)})") from None
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
        raise DataError(f"cannot read {path}: {_one_line(exc)}") from None
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


def _cifar_paths(name: str, root: Path, download: bool) -> list[Path]:
    """The batch files, fetched and unpacked first when missing and ``download`` is set."""
    folder = root / _CIFAR_FOLDERS[name]
    train_names, test_names = _CIFAR_FILES[name]
    paths = [folder / f for f in (*train_names, *test_names)]
    if download and not all(p.is_file() for p in paths):
        _download(name, root)
    for path in paths:
        if not path.is_file():
            raise _not_found(name, path, _HOW_TORCHVISION)
    return paths


def _load_cifar(name: str, root: Path, download: bool, seed: int) -> Splits:
    """CIFAR-10/100 from torchvision's extracted python-pickle folders."""
    train_names, _ = _CIFAR_FILES[name]
    paths = _cifar_paths(name, root, download)
    label_key = "labels" if name == "cifar10" else "fine_labels"
    train = _load_cifar_files(name, paths[: len(train_names)], label_key)
    test = _load_cifar_files(name, paths[len(train_names) :], label_key)
    return _split_official(name, train, test, _CIFAR_CLASSES[name], "crop-flip", seed)


# --------------------------------------------------------------------------- imagefolder


def _imagefolder_classes(root: Path) -> list[str]:
    how = "pass --data-dir DIR holding one subfolder of images per class"
    if not root.is_dir():
        raise _not_found("imagefolder", root, how)
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DataError(
            f"imagefolder {root} has {len(classes)} class subfolder(s); "
            f"it needs at least 2 (one subfolder of images per class)"
        )
    return classes


def _load_imagefolder(root: Path, seed: int, *, channels: int, image_size: int) -> Splits:
    """One subfolder per class (sorted names give the label), images resized square."""
    from PIL import Image, UnidentifiedImageError  # lazy: only this dataset needs Pillow

    classes = _imagefolder_classes(root)
    mode = "L" if channels == 1 else "RGB"
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, cls in enumerate(classes):
        files = sorted(
            p
            for p in (root / cls).rglob("*")
            if p.suffix.lower() in _IMAGE_SUFFIXES and p.is_file()
        )
        if not files:
            raise DataError(
                f"imagefolder class folder {root / cls} has no images "
                f"({', '.join(sorted(_IMAGE_SUFFIXES))})"
            )
        for path in files:
            try:
                with Image.open(path) as img:
                    img = img.convert(mode).resize(
                        (image_size, image_size), Image.Resampling.BILINEAR
                    )
                    array = np.asarray(img, dtype=np.uint8)
            except (OSError, UnidentifiedImageError, ValueError) as exc:
                raise DataError(f"cannot read image {path}: {_one_line(exc)}") from None
            images.append(array.reshape(image_size, image_size, channels))
            labels.append(label)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)
    y = torch.tensor(labels, dtype=torch.int64)
    augment = "crop-flip" if channels == 3 else "crop"
    return _split_three_way("imagefolder", x, y, len(classes), augment, seed)
