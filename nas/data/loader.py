"""``load`` and ``prepare``: a dataset's name to the reader for its format.

The one place that knows every dataset: it checks the name and options once,
picks the reader, and moves the result to the device, so the readers only
turn files into :class:`Splits` and every caller gets the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from nas.data.cifar import CIFAR_FOLDERS, cifar_paths, load_cifar
from nas.data.errors import DataError
from nas.data.folder import imagefolder_classes, load_imagefolder
from nas.data.generated import load_digits, load_synthetic
from nas.data.mnist import MNIST_FOLDERS, check_mnist_subsets, load_mnist, mnist_paths
from nas.data.options import check_options
from nas.data.splits import Splits
from nas.errors import one_line
from nas.names import DATASETS


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
    opts = check_options(key, options)
    root = Path(data_dir) if data_dir is not None else Path("data")
    target = _resolve_device(device)

    if key == "digits":
        splits = load_digits(seed)
    elif key == "synthetic":
        splits = load_synthetic(seed, **opts)
    elif key in MNIST_FOLDERS:
        splits = load_mnist(key, root, download, seed, **opts)
    elif key in CIFAR_FOLDERS:
        splits = load_cifar(key, root, download, seed, **opts)
    else:
        splits = load_imagefolder(root, seed, **opts)

    if target is not None and target != torch.device("cpu"):
        try:
            splits = splits.to(target)
        except (RuntimeError, AssertionError) as exc:  # e.g. CUDA missing or out of memory
            raise DataError(f"cannot move {key} to device {target}: {one_line(exc)}") from None
    return splits


def prepare(name: str, *, data_dir: str | Path | None = None, download: bool = False,
            options: Mapping[str, Any] | None = None) -> None:
    """Make sure dataset ``name`` can be loaded with ``options``, without loading it.

    ``nas search`` calls this once in the driver before any trial starts: a
    missing dataset or a bad option is one error there rather than a failed
    trial on every worker, and ``download`` fetches the files once rather than
    once per trial.
    """
    key = str(name).strip().lower()
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    opts = check_options(key, options)
    root = Path(data_dir) if data_dir is not None else Path("data")
    if key in MNIST_FOLDERS:
        check_mnist_subsets(key, mnist_paths(key, root, download), **opts)
    elif key in CIFAR_FOLDERS:
        cifar_paths(key, root, download)
    elif key == "imagefolder":
        imagefolder_classes(root)


def _resolve_device(device: torch.device | str | None) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise DataError(f"invalid device {device!r}: {one_line(exc)}") from None
