"""Optuna's grid sampler, made safe for trials told outside ``study.optimize``.

Apart from the sampler table (algorithms.py) because subclassing needs Optuna at
import time, and the table must stay importable without it (the space parser uses it).
"""

from __future__ import annotations

import optuna


class SearchGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered.

    That call raises outside ``study.optimize`` (our trials are told by Ray's
    searcher), and ``nas search`` already stops after the grid's size in trials.
    """

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None
