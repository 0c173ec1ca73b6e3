"""The one error type for user mistakes.

The CLI turns a :class:`NasError` into a single line on stderr and exit
status 2; anything else escaping to the user is a bug in resnas.
"""

from __future__ import annotations


class NasError(Exception):
    """A mistake in what the user gave us (a file, a flag, a path, a URL)."""


class Diverged(NasError):
    """Training produced a non-finite loss; carries the epoch it happened in."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}: loss is {loss}")
        self.epoch = epoch
        self.loss = loss
