"""The value checks of a space file, and the table of what each ``space:`` key accepts.

Kept apart from the YAML reading and the walk over a file so that the sampler and
pruner table (nas/study/algorithms.py) can name its options' checks with the same
functions, and so that every "allowed: ..." phrase is written once. Each check returns
the normalised value or raises :class:`Bad` with the text of what is allowed; the
validator turns that into one :class:`SpaceError` line naming the file and the field.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Callable
from typing import Any

from nas.errors import LINE_BREAKS, NasError
from nas.names import BLOCK_TYPES, OPTIMIZERS, SCHEDULES, SHORTCUT_TYPES

Check = Callable[[Any], Any]


class SpaceError(NasError):
    """A mistake in a space or candidate file."""


class Bad(Exception):
    """A value a check refuses; ``allowed`` says what it accepts."""

    def __init__(self, allowed: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed


_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any) -> float:
    """A YAML number; also '1e-5', which PyYAML reads as a string."""
    if isinstance(value, bool):
        raise Bad("a number")
    numeric_text = isinstance(value, str) and _FLOAT_TEXT.match(value.strip())
    if not (isinstance(value, (int, float)) or numeric_text):
        raise Bad("a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float (e.g. 400 digits)
        raise Bad("a finite number") from None
    if not math.isfinite(number):
        raise Bad("a finite number")
    return number


def int_check(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        allowed = _range_text("an integer", low, high)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Bad(allowed)
        if (low is not None and value < low) or (high is not None and value > high):
            raise Bad(allowed)
        return value
    check.kind = "int"  # type: ignore[attr-defined]
    return check


def float_check(low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        allowed = _range_text("a number", low, high, low_open, high_open)
        try:
            number = _number(value)
        except Bad as bad:
            finite = bad.allowed.startswith("a finite")
            raise Bad(allowed.replace("a number", "a finite number", 1) if finite
                      else allowed) from None
        too_low = low is not None and (number <= low if low_open else number < low)
        too_high = high is not None and (number >= high if high_open else number > high)
        if too_low or too_high:
            raise Bad(allowed)
        return number
    check.kind = "float"  # type: ignore[attr-defined]
    return check


def choice_check(names: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in names:
            raise Bad(", ".join(names))
        return value
    check.kind = "categorical"  # type: ignore[attr-defined]
    return check


def bool_check(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad("true or false")
    return value


bool_check.kind = "categorical"  # type: ignore[attr-defined]


def _range_text(what: str, low: float | None, high: float | None,
                low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"{what} {'>' if low_open else '>='} {low} and {'<' if high_open else '<='} {high}"
    if low is not None:
        return f"{what} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{what} {'<' if high_open else '<='} {high}"
    return what


def blocks_check(value: Any) -> int | tuple[int, ...]:
    """One int for every stage, or a list with one int per stage."""
    per_stage = int_check(1, 256)
    if isinstance(value, list):
        if not value:
            raise Bad("an integer from 1 to 256, or a non-empty list of them (one per stage)")
        try:
            return tuple(per_stage(v) for v in value)
        except Bad:
            raise Bad("a list of integers from 1 to 256, one per stage") from None
    try:
        return per_stage(value)
    except Bad:
        raise Bad("an integer from 1 to 256, or a list of them (one per stage)") from None


blocks_check.kind = "int"  # type: ignore[attr-defined]


_batch_int_check = int_check(1, 65536)


def batch_check(value: Any) -> int | None:
    """A batch size, or ``auto`` (None): scaled to the training set (Candidate.batch_for)."""
    if value == "auto" or value is None:  # None: a file written with the default
        return None
    try:
        return _batch_int_check(value)
    except Bad:
        raise Bad("an integer from 1 to 65536, or auto (scaled to the training set)") from None


batch_check.kind = "int"  # type: ignore[attr-defined]

# What each key under ``space:`` accepts: architecture first, then training.
SPACE_PARAMS: dict[str, Check] = {
    "stages": int_check(1, 8),
    "blocks_per_stage": blocks_check,
    "block": choice_check(BLOCK_TYPES),
    "shortcut": choice_check(SHORTCUT_TYPES),
    "width": int_check(1, 2048),
    "gate_bias": float_check(-20.0, 20.0),
    "lr": float_check(0.0, 10.0, low_open=True),
    "weight_decay": float_check(0.0, 1.0),
    "momentum": float_check(0.0, 1.0, high_open=True),
    "batch_size": batch_check,
    "optimizer": choice_check(OPTIMIZERS),
    "schedule": choice_check(SCHEDULES),
    "label_smoothing": float_check(0.0, 1.0, high_open=True),
    "augment": bool_check,
}
# Searched only where the named parameter has the given value.
CONDITIONS: dict[str, tuple[str, str]] = {"gate_bias": ("block", "highway")}


# --- showing what the user gave ------------------------------------------------------------

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def show(value: Any) -> str:
    """What the user gave, on one short line; bounded even for huge or aliased structures.

    A value typed with a line break must not split an error in two: each break becomes a
    space here (nas.errors.escape_line_breaks escapes them instead, for file names)."""
    text = LINE_BREAKS.sub(" ", _REPR.repr(value))
    return text if len(text) <= 60 else text[:57] + "..."
