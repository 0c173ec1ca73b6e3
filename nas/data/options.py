"""The options each dataset accepts, and their one check.

A dataset option comes from a YAML space or the command line, so a typo or a
bad value must be a one-line :class:`DataError` naming what is allowed, caught
before any data is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.data.errors import DataError

#: The subset options of the datasets that ship an official train/test split: how many
#: training and validation images to carve from the official train set (unset: all of it,
#: 10% as val); the official test set is always whole.
_SUBSETS: dict[str, int | None] = {"train_size": None, "val_size": None}

#: Options each dataset accepts, with their defaults.  Anything else is a typo.
_OPTIONS: dict[str, dict[str, int | None]] = {
    "digits": {},
    "synthetic": {"channels": 3, "image_size": 32, "classes": 10, "samples": 5000},
    "mnist": dict(_SUBSETS),
    "fashion-mnist": dict(_SUBSETS),
    "cifar10": dict(_SUBSETS),
    "cifar100": dict(_SUBSETS),
    "imagefolder": {"channels": 3, "image_size": 32},
}


def check_options(name: str, options: Mapping[str, Any] | None) -> dict[str, int | None]:
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
        if key in _SUBSETS and merged[key] < 1:
            raise DataError(f"dataset option {key} for {name} must be at least 1, got {value!r}")
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
