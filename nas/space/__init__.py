"""Search-space and candidate files: load, validate, suggest.

A space file (docs/design.md, "Files") names fixed values and searched ranges under
``space:``; a candidate file is the same format with every value fixed. The package is
split by job: reader.py reads YAML safely, checks.py holds the value checks,
algorithm_options.py what each sampler and pruner accepts, model.py the validated
:class:`SearchSpace`, parser.py the validation. Nothing here imports Optuna or
``nas.study``: a trial is duck-typed where a candidate is suggested, and the Optuna
objects are built in :mod:`nas.study.algorithms` from the names this package checked.
"""

from __future__ import annotations

from nas.space.checks import (
    CONDITIONS,
    SPACE_PARAMS,
    SpaceError,
    bool_check,
    choice_check,
    float_check,
    int_check,
)
from nas.space.model import Choice, Fixed, FloatRange, IntRange, Param, SearchSpace
from nas.space.parser import load_candidate, load_space, parse_space
from nas.space.reader import MAX_FILE_BYTES, read_yaml

__all__ = [
    "CONDITIONS", "MAX_FILE_BYTES", "SPACE_PARAMS", "Choice", "Fixed", "FloatRange", "IntRange",
    "Param", "SearchSpace", "SpaceError", "bool_check", "choice_check", "float_check",
    "int_check", "load_candidate", "load_space", "parse_space", "read_yaml",
]
