"""Optuna samplers and pruners from a space file's ``sampler:`` and ``pruner:``.

The space loader has already validated names and options; this maps them to
Optuna objects, filling in what depends on the search (the epoch budget).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import optuna

from nas.space import Choice, FloatRange, IntRange, SearchSpace, SpaceError


class SearchGridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` once the grid is covered.

    That call raises outside ``study.optimize`` (our trials are told by Ray's
    searcher), and ``nas search`` already stops after the grid's size in trials.
    """

    def after_trial(self, study, trial, state, values) -> None:  # noqa: D102
        return None


def make_sampler(space: SearchSpace, concurrent: int = 1) -> optuna.samplers.BaseSampler:
    spec = dict(space.sampler)
    name = spec.pop("name")
    seed = spec.pop("seed", space.seed)
    if name == "tpe":
        # With trials running side by side, pretend running ones scored badly so
        # parallel workers do not all sample the same spot.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=concurrent > 1, **spec)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return SearchGridSampler(grid_of(space), seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **spec)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **spec)
    raise AssertionError(f"unvalidated sampler {name}")


def grid_of(space: SearchSpace) -> dict[str, list[Any]]:
    """Every searched value, for the grid sampler; continuous ranges cannot be a grid."""
    grid: dict[str, list[Any]] = {}
    for name, param in space.searched.items():
        if isinstance(param, Choice):
            grid[name] = list(param.choices)
        elif isinstance(param, IntRange) and not param.log:
            grid[name] = list(range(param.low, param.high + 1, param.step))
        elif isinstance(param, FloatRange) and param.step and not param.log:
            count = int(round((param.high - param.low) / param.step)) + 1
            grid[name] = [param.low + i * param.step for i in range(count)]
        else:
            raise SpaceError(f"{space.path}: space.{name}: the grid sampler needs a list of "
                             "values; allowed: type: categorical, an int range, or a float "
                             "range with step")
    return grid


def grid_size(space: SearchSpace) -> int:
    return len(list(itertools.product(*grid_of(space).values())))


def make_pruner(spec: dict[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    spec = dict(spec)
    name = spec.pop("name")
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(**spec)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(**spec)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(**spec)
    if name == "hyperband":
        spec.setdefault("max_resource", epochs)
        return optuna.pruners.HyperbandPruner(**spec)
    if name == "threshold":
        return optuna.pruners.ThresholdPruner(**spec)
    if name == "patient":
        wrapped = spec.pop("wrapped", None)
        inner = make_pruner(wrapped, epochs) if wrapped else None
        with warnings.catch_warnings():  # a user who names it has chosen it: no nagging
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.pruners.PatientPruner(inner, **spec)
    raise AssertionError(f"unvalidated pruner {name}")
