"""The data loaders' one error type, and how a missing dataset is reported.

Every reader raises :class:`DataError` for a user mistake, so the CLI can turn
any of them into one line and exit status 2; the "not found" wording is shared
so every dataset says where it looked and how to get the files the same way.
"""

from __future__ import annotations

from pathlib import Path

from nas.errors import NasError, option


class DataError(NasError):
    """A dataset could not be found, read or built; the message is one line for the user."""


def not_found(name: str, path: Path | str, how: str) -> DataError:
    return DataError(f"{name} not found: looked for {path}; {how}")


def how_torchvision() -> str:
    """How to get a torchvision dataset, in the words of the caller (flags or parameters)."""
    return (f"pass {option('data_dir')} DIR holding torchvision's layout, or "
            f"{option('download')} to fetch it")
