"""Small path rules shared by the storage checks, the search's inputs and the command line.

They refuse, before any training, a file that could never be written or a data folder
that is not there; the "nearest folder that exists must let us make the rest" walk lives
here once. Errors name the input as the caller wrote it (:func:`nas.errors.option`).
"""

from __future__ import annotations

import os
from pathlib import Path

from nas.errors import NasError, option
from nas.names import DATASETS


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest ancestor that does."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return probe


def shown_path(path: str | Path) -> str:
    """Relative to the working folder when inside it: shorter, and what the user typed."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_writable(path: Path, name: str = "--save") -> None:
    """Fail before training, not after, when the file ``path`` cannot be written; ``name``
    is the input as the caller wrote it (``--save``, ``results``)."""
    folder = path.parent if str(path.parent) else Path(".")
    probe = nearest_existing(folder)
    if path.is_dir():
        raise NasError(f"{name} {path}: is a folder; allowed: a file path")
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        shown = path.parent if path.name == ".probe" else path  # a folder was named
        raise NasError(f"{name} {shown}: {probe} is not a writable folder")


def check_data_inputs(dataset: str | None, data_dir: str | Path | None) -> None:
    """A dataset name and a data folder, checked before anything heavy is imported."""
    if dataset is not None and dataset not in DATASETS:
        raise NasError(f"{option('dataset')}: got '{dataset}'; allowed: {', '.join(DATASETS)}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise NasError(f"{option('data_dir')} {data_dir}: no such folder")
