"""The one error type for user mistakes, and how any error becomes one line.

The CLI turns a :class:`NasError` into a single line on stderr and exit
status 2; anything else escaping to the user is a bug in resnas. An error names the
input that is wrong as its caller wrote it: :func:`option` gives ``--storage`` while
the command line runs and ``storage`` for a Python caller of ``nas.search``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

_flag_names = False  # True while the command line runs (nas.cli.main)


def option(name: str) -> str:
    """How an error names the parameter ``name`` (a Python name such as ``data_dir``):
    ``--data-dir`` on the command line, ``data_dir`` for a Python caller."""
    return "--" + name.replace("_", "-") if _flag_names else name


@contextlib.contextmanager
def flag_names() -> Iterator[None]:
    """Errors raised inside name command-line flags (``nas.cli.main`` runs in this)."""
    global _flag_names
    before, _flag_names = _flag_names, True
    try:
        yield
    finally:
        _flag_names = before


class NasError(Exception):
    """A mistake in what the user gave us (a file, a flag, a path, a URL)."""


class DiskFull(NasError):
    """No space left where resnas writes (the study, ``results/``, Ray's temporary folder).

    Not the user's mistake but not a bug either: the search stops as on Ctrl-C (finished
    trials kept, running ones queued again) and the command line exits with
    :data:`DISK_FULL_EXIT`, naming the full place, the space it had free and how to resume.
    """

    def __init__(self, what: str, where: str, free: int | None = None) -> None:
        held = f" ({human_bytes(free)} free there)" if free is not None else ""
        super().__init__(f"no space left on the disk of {what}: {where}{held}")
        self.what, self.where, self.free = what, where, free


class DiskShort(NasError):
    """A search refused before it starts: its results folder clearly lacks the space it
    would write. Exits with :data:`DISK_FULL_EXIT` too: free space, then run again."""


# sysexits.h's EX_TEMPFAIL: "a temporary failure; the user is invited to retry".
DISK_FULL_EXIT = 75
TERMINATED_EXIT = 128 + 15  # SIGTERM, as a shell reports a process it ended


def human_bytes(count: float) -> str:
    """``1.5 MB``: sizes as a person reads them (powers of 1,000, as ``df -H``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class Diverged(NasError):
    """Training produced a non-finite loss; carries the epoch it happened in."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch}: loss is {loss}")
        self.epoch = epoch
        self.loss = loss


def one_line(error: BaseException | str, limit: int | None = None) -> str:
    """An error's text squeezed onto one line (whitespace runs become one space), cut to
    ``limit`` characters; an exception without text gives its type's name."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text[:limit] if limit is not None else text


LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def escape_line_breaks(text: str) -> str:
    """``text`` with every line break escaped: a value or file name typed with a newline in
    it must not split an error in two (str.splitlines() breaks at all of these)."""
    return LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)
