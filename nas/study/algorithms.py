"""The Optuna sampler and pruner behind each name a space file may use.

What each accepts (its options, their checks, the required ones) is plain data in
:mod:`nas.space.algorithm_options`, which the space parser validates against; here are
only the builders, keyed by the same names, so the study depends on the space and never
the other way. Optuna is imported only inside :func:`make_sampler` and :func:`make_pruner`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nas.space.checks import SpaceError
from nas.space.model import Choice, FloatRange, IntRange, SearchSpace

if TYPE_CHECKING:
    import optuna

# A builder gets Optuna, the validated options (a sampler's with its seed filled in) and
# its context: (space, concurrent trials) for a sampler, (epochs) for a pruner.
Builder = Callable[..., Any]


def _plain(kind: str, class_name: str) -> Builder:
    """A builder that passes the options straight to ``optuna.<kind>.<class_name>``."""
    def build(optuna: ModuleType, options: dict[str, Any], *_: Any) -> Any:
        return getattr(getattr(optuna, kind), class_name)(**options)
    return build


# --- samplers: build(optuna, options, space, concurrent) -----------------------------------


def _tpe(optuna: ModuleType, options: dict[str, Any], space: SearchSpace,
         concurrent: int) -> Any:
    from nas.study.tpe_sampler import RecentTPESampler

    # With trials running side by side, pretend running ones scored badly so
    # parallel workers do not all sample the same spot.
    return RecentTPESampler(constant_liar=concurrent > 1, **options)


def _grid(optuna: ModuleType, options: dict[str, Any], space: SearchSpace,
          concurrent: int) -> Any:
    from nas.study.grid_sampler import SearchGridSampler

    return SearchGridSampler(grid_of(space), **options)


SAMPLER_BUILDERS: dict[str, Builder] = {
    "tpe": _tpe,
    "random": _plain("samplers", "RandomSampler"),
    "grid": _grid,
    "gp": _plain("samplers", "GPSampler"),
    "nsga2": _plain("samplers", "NSGAIISampler"),
}


# --- pruners: build(optuna, options, epochs) -----------------------------------------------


def _hyperband(optuna: ModuleType, options: dict[str, Any], epochs: int) -> Any:
    options.setdefault("max_resource", epochs)
    return optuna.pruners.HyperbandPruner(**options)


def _patient(optuna: ModuleType, options: dict[str, Any], epochs: int) -> Any:
    wrapped = options.pop("wrapped", None)
    inner = make_pruner(wrapped, epochs) if wrapped else None
    with warnings.catch_warnings():  # a user who names it has chosen it: no nagging
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.pruners.PatientPruner(inner, **options)


def _pareto(optuna: ModuleType, options: dict[str, Any], epochs: int) -> Any:
    from nas.study.pareto_pruner import ParetoPruner

    return ParetoPruner(epochs, **options)


PRUNER_BUILDERS: dict[str, Builder] = {
    "none": _plain("pruners", "NopPruner"),
    "median": _plain("pruners", "MedianPruner"),
    "percentile": _plain("pruners", "PercentilePruner"),
    "successive-halving": _plain("pruners", "SuccessiveHalvingPruner"),
    "hyperband": _hyperband,
    "threshold": _plain("pruners", "ThresholdPruner"),
    "patient": _patient,
    "pareto": _pareto,
}


# --- building ------------------------------------------------------------------------------


def make_sampler(space: SearchSpace, concurrent: int = 1,
                 history: int = 0) -> optuna.samplers.BaseSampler:
    """The space's sampler; ``history``: the trials its study already holds, queued ones
    included.

    Optuna's samplers draw their random candidates from a generator seeded once, so a
    sampler seeded as before draws the same candidates again: those of the previous run
    of a resumed search, and those of the start-up design (drawn with the space's seed) in
    TPE's own random phase, one of the 16 default trials wasted. Mixed with ``history``,
    the seed gives each run a stream of its own; the same search from scratch still draws
    the same candidates.
    """
    import optuna

    options = dict(space.sampler)
    name = options.pop("name")
    options["seed"] = _mixed_seed(options.pop("seed", space.seed), history)
    options.pop("shortest_first", None)  # resnas's, not Optuna's: see nas.study.startup
    if name not in SAMPLER_BUILDERS:
        raise AssertionError(f"unvalidated sampler {name}")
    return SAMPLER_BUILDERS[name](optuna, options, space, concurrent)


def _mixed_seed(seed: int | None, history: int) -> int | None:
    if seed is None or history == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, history]).generate_state(1)[0])


def make_pruner(spec: dict[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    options = dict(spec)
    name = options.pop("name")
    if name not in PRUNER_BUILDERS:
        raise AssertionError(f"unvalidated pruner {name}")
    return PRUNER_BUILDERS[name](optuna, options, epochs)


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
