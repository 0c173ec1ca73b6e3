"""Every sampler and pruner a space file may name, in one table per kind.

A row says what options the algorithm takes (with the check each value must pass),
which of them are required, and how to build the Optuna object. The space parser
validates ``sampler:`` and ``pruner:`` against these rows and the search builds from
the same rows, so adding an algorithm is one row here (and its name in nas.names).
Parsing a space must not import Optuna: it is imported only inside the builders.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nas.space.checks import Check, SpaceError, bool_check, float_check, int_check
from nas.space.model import Choice, FloatRange, IntRange, SearchSpace

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Algorithm:
    """One sampler or pruner: how to build it, its options and their checks, which are
    required. ``build(optuna, options, context...)`` gets the validated options (the
    sampler's with its seed filled in); a check of None marks an option the parser
    validates itself (a patient pruner's ``wrapped`` pruner)."""

    build: Callable[..., Any]
    options: Mapping[str, Check | None] = field(default_factory=dict)
    required: tuple[str, ...] = ()


def _plain(kind: str, class_name: str) -> Callable[..., Any]:
    """A builder that passes the options straight to ``optuna.<kind>.<class_name>``."""
    def build(optuna: ModuleType, options: dict[str, Any], *_: Any) -> Any:
        return getattr(getattr(optuna, kind), class_name)(**options)
    return build


# --- samplers: build(optuna, options, space, concurrent) -----------------------------------


def _tpe(optuna: ModuleType, options: dict[str, Any], space: SearchSpace,
         concurrent: int) -> Any:
    # With trials running side by side, pretend running ones scored badly so
    # parallel workers do not all sample the same spot.
    return optuna.samplers.TPESampler(constant_liar=concurrent > 1, **options)


def _grid(optuna: ModuleType, options: dict[str, Any], space: SearchSpace,
          concurrent: int) -> Any:
    from nas.study.grid_sampler import SearchGridSampler

    return SearchGridSampler(grid_of(space), **options)


_ints = int_check(0)
_pos_ints = int_check(1)
SAMPLER_TABLE: dict[str, Algorithm] = {
    "tpe": Algorithm(_tpe, {"seed": _ints, "n_startup_trials": _ints,
                            "multivariate": bool_check, "shortest_first": bool_check}),
    "random": Algorithm(_plain("samplers", "RandomSampler"),
                        {"seed": _ints, "shortest_first": bool_check}),
    "grid": Algorithm(_grid, {"seed": _ints}),
    "gp": Algorithm(_plain("samplers", "GPSampler"),
                    {"seed": _ints, "n_startup_trials": _ints, "shortest_first": bool_check}),
    "nsga2": Algorithm(_plain("samplers", "NSGAIISampler"),
                       {"seed": _ints, "population_size": int_check(2)}),
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


_WARMUP = {"n_startup_trials": _ints, "n_warmup_steps": _ints, "interval_steps": _pos_ints}
PRUNER_TABLE: dict[str, Algorithm] = {
    "none": Algorithm(_plain("pruners", "NopPruner")),
    "median": Algorithm(_plain("pruners", "MedianPruner"), {**_WARMUP, "n_min_trials": _pos_ints}),
    "percentile": Algorithm(
        _plain("pruners", "PercentilePruner"),
        {**_WARMUP, "n_min_trials": _pos_ints, "percentile": float_check(0.0, 100.0)},
        required=("percentile",)),
    "successive-halving": Algorithm(_plain("pruners", "SuccessiveHalvingPruner"), {
        "min_resource": _pos_ints, "reduction_factor": int_check(2),
        "min_early_stopping_rate": _ints,
    }),
    "hyperband": Algorithm(_hyperband, {
        "min_resource": _pos_ints, "max_resource": _pos_ints, "reduction_factor": int_check(2),
    }),
    "threshold": Algorithm(_plain("pruners", "ThresholdPruner"), {
        "lower": float_check(), "upper": float_check(),
        "n_warmup_steps": _ints, "interval_steps": _pos_ints,
    }),
    "patient": Algorithm(_patient, {"patience": _ints, "min_delta": float_check(0.0),
                                    "wrapped": None}, required=("patience",)),
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
    if name not in SAMPLER_TABLE:
        raise AssertionError(f"unvalidated sampler {name}")
    return SAMPLER_TABLE[name].build(optuna, options, space, concurrent)


def _mixed_seed(seed: int | None, history: int) -> int | None:
    if seed is None or history == 0:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, history]).generate_state(1)[0])


def make_pruner(spec: dict[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    import optuna

    options = dict(spec)
    name = options.pop("name")
    if name not in PRUNER_TABLE:
        raise AssertionError(f"unvalidated pruner {name}")
    return PRUNER_TABLE[name].build(optuna, options, epochs)


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
