"""What each sampler and pruner a space file may name accepts: plain data, no Optuna.

A row lists an algorithm's options, the check each value must pass and which are
required. The space parser validates ``sampler:`` and ``pruner:`` against these rows;
:mod:`nas.study.algorithms` builds the Optuna objects from builders keyed by the same
names. So the knowledge flows one way, study -> space: parsing a file needs neither
Optuna nor the study package, and adding an algorithm is a row here, a builder there
and its name in :mod:`nas.names` (a test checks that the three agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.space.checks import Bad, Check, bool_check, float_check, int_check


@dataclass(frozen=True)
class AlgorithmOptions:
    """One sampler's or pruner's options: the check of each (None marks an option the
    parser validates itself, a patient pruner's ``wrapped`` pruner) and the required ones.
    Defaults are Optuna's own, except where a builder in :mod:`nas.study.algorithms`
    says otherwise (hyperband's ``max_resource``: the space's epochs)."""

    options: Mapping[str, Check | None] = field(default_factory=dict)
    required: tuple[str, ...] = ()


_ints = int_check(0)
_pos_ints = int_check(1)


def _history(value: Any) -> int:
    """TPE's ``history`` (nas.study.tpe_sampler): 0 (every trial) or above its 25 best."""
    if isinstance(value, bool) or not isinstance(value, int) or 0 < value <= 25 or value < 0:
        raise Bad("0 (every trial) or an integer of 26 or more")
    return value

SAMPLER_OPTIONS: dict[str, AlgorithmOptions] = {
    "tpe": AlgorithmOptions({"seed": _ints, "n_startup_trials": _ints,
                             "multivariate": bool_check, "shortest_first": bool_check,
                             "history": _history}),
    "random": AlgorithmOptions({"seed": _ints, "shortest_first": bool_check}),
    "grid": AlgorithmOptions({"seed": _ints}),
    "gp": AlgorithmOptions({"seed": _ints, "n_startup_trials": _ints,
                            "shortest_first": bool_check}),
    "nsga2": AlgorithmOptions({"seed": _ints, "population_size": int_check(2)}),
}

_WARMUP = {"n_startup_trials": _ints, "n_warmup_steps": _ints, "interval_steps": _pos_ints}
PRUNER_OPTIONS: dict[str, AlgorithmOptions] = {
    "none": AlgorithmOptions(),
    "median": AlgorithmOptions({**_WARMUP, "n_min_trials": _pos_ints}),
    "percentile": AlgorithmOptions(
        {**_WARMUP, "n_min_trials": _pos_ints, "percentile": float_check(0.0, 100.0)},
        required=("percentile",)),
    "successive-halving": AlgorithmOptions({
        "min_resource": _pos_ints, "reduction_factor": int_check(2),
        "min_early_stopping_rate": _ints,
    }),
    "hyperband": AlgorithmOptions({
        "min_resource": _pos_ints, "max_resource": _pos_ints, "reduction_factor": int_check(2),
    }),
    "threshold": AlgorithmOptions({
        "lower": float_check(), "upper": float_check(),
        "n_warmup_steps": _ints, "interval_steps": _pos_ints,
    }),
    "patient": AlgorithmOptions({"patience": _ints, "min_delta": float_check(0.0),
                                 "wrapped": None}, required=("patience",)),
    # nas.study.pareto_pruner: rungs at min_resource * reduction_factor**k epochs
    "pareto": AlgorithmOptions({"min_resource": _pos_ints, "reduction_factor": int_check(2)}),
}
