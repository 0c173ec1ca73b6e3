"""The data loaders' one error type, and how a missing dataset is reported.

Every reader raises :class:`DataError` for a user mistake, so the CLI can turn
any of them into one line and exit status 2; the "not found" wording is shared
so every dataset says where it looked and how to get the files the same way.
"""

from __future__ import annotations

from pathlib import Path

from nas.errors import NasError


class DataError(NasError):
    """A dataset could not be found, read or built; the message is one line for the user."""


def not_found(name: str, path: Path, how: str) -> DataError:
    return DataError(f"{name} not found: looked for {path}; {how}")


HOW_TORCHVISION = "pass --data-dir DIR holding torchvision's layout, or --download to fetch it"
