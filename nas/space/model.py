"""A validated space file as plain values, and how a trial turns it into a Candidate.

The parser (parser.py) builds these; the search, the CLI and the tests only read them.
Keeping the model free of YAML and of Optuna (a trial is only duck-typed here) lets a
space be loaded, overridden from the command line and checked before anything heavy
is imported.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.candidate import Candidate
from nas.errors import NasError, option
from nas.names import MULTI_OBJECTIVE_PRUNERS
from nas.space.algorithm_options import PRUNER_OPTIONS
from nas.space.checks import CONDITIONS, SPACE_PARAMS, SpaceError

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]


Param = Fixed | IntRange | FloatRange | Choice


@dataclass(frozen=True)
class SearchSpace:
    """A validated space file; ``suggest`` turns an Optuna trial into a Candidate."""

    path: str
    name: str
    dataset: str = "digits"
    metric: str = "val_accuracy"
    epochs: int = 10
    trials: int = 20
    seed: int = 0
    params: dict[str, Param] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    trial_resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    usefulness: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "tolerance": 0.01})
    objectives: tuple[str, ...] = ("val_accuracy",)
    data: dict[str, Any] = field(default_factory=dict)
    # the latency objective's second timing: per image at this batch size (besides batch 1)
    latency: dict[str, int] = field(default_factory=lambda: {"batch": 64})
    text: str = ""

    @property
    def searched(self) -> dict[str, Param]:
        return {k: p for k, p in self.params.items() if not isinstance(p, Fixed)}

    def candidate(self, values: Mapping[str, Any]) -> Candidate:
        """A Candidate from values for every searched parameter (fixed ones filled in)."""
        merged = {k: p.value for k, p in self.params.items() if isinstance(p, Fixed)}
        merged.update(values)
        return Candidate(
            dataset=self.dataset, epochs=self.epochs, seed=self.seed, data=dict(self.data),
            **merged,
        )

    def fixed_candidate(self) -> Candidate:
        """The candidate of a file whose values are all fixed."""
        if self.searched:
            name = next(iter(self.searched))
            raise SpaceError(
                f"{self.path}: space.{name}: a candidate file needs one value, not a search "
                f"range; allowed: a single {_kind(name)} value"
            )
        return self.candidate({})

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Define-by-run: conditional parameters are asked only where they apply."""
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, Fixed):
                values[name] = param.value
                continue
            condition = CONDITIONS.get(name)
            if condition and values.get(condition[0]) != condition[1]:
                continue
            if isinstance(param, IntRange):
                values[name] = trial.suggest_int(
                    name, param.low, param.high, step=param.step, log=param.log)
            elif isinstance(param, FloatRange):
                values[name] = trial.suggest_float(
                    name, param.low, param.high, step=param.step, log=param.log)
            else:
                values[name] = trial.suggest_categorical(name, list(param.choices))
        return self.candidate({k: v for k, v in values.items()
                               if not isinstance(self.params[k], Fixed)})

    def with_overrides(self, dataset: str | None = None, epochs: int | None = None,
                       seed: int | None = None, sampler: str | None = None,
                       pruner: str | None = None) -> SearchSpace:
        """This space with the command line's overrides (None: keep the file's value).

        A new seed also seeds the sampler; a sampler named on its own gets the run's seed
        (not the file's sampler options); a pruner that needs options cannot be named alone.
        """
        changes: dict[str, Any] = {}
        if dataset is not None:
            changes["dataset"] = dataset
        if epochs is not None:
            changes["epochs"] = epochs
        if seed is not None:
            changes["seed"] = seed
            changes["sampler"] = {**self.sampler, "seed": seed}
        if sampler is not None:
            changes["sampler"] = {"name": sampler, "seed": changes.get("seed", self.seed)}
        if pruner is not None:
            algorithm = PRUNER_OPTIONS.get(pruner)
            if algorithm is not None and algorithm.required:
                raise NasError(f"{option('pruner')} {pruner}: needs options; set it in the space "
                               "file's pruner: section")
            misfit = pruner_misfit(pruner, self.objectives)
            if misfit:
                raise NasError(f"{option('pruner')} {pruner}: {misfit}")
            changes["pruner"] = {"name": pruner}
        return dataclasses.replace(self, **changes)


def default_pruner(objectives: tuple[str, ...]) -> str:
    """One objective: Optuna's median pruner; two: none (the search trains every trial
    whole, as before the pareto pruner existed), unless the file names ``pareto``."""
    return "median" if len(objectives) == 1 else "none"


def pruner_misfit(pruner: str, objectives: tuple[str, ...]) -> str:
    """Why ``pruner`` cannot prune a search of ``objectives`` ('' when it can).

    Optuna's pruners rank one value per epoch (a multi-objective study cannot even report
    one); the pareto pruner ranks two, and needs the cost while the trial trains, which
    the useful depth, measured after training, is not.
    """
    if len(objectives) > 1 and pruner not in MULTI_OBJECTIVE_PRUNERS:
        return (f"{pruner} prunes on one objective and this search has two "
                f"({', '.join(objectives)}); allowed: {' or '.join(MULTI_OBJECTIVE_PRUNERS)}")
    if pruner == "pareto" and len(objectives) == 1:
        return ("pareto ranks trials on two objectives and this search has one; allowed: "
                "objectives [val_accuracy, params|macs|latency], or a one-objective pruner "
                "such as median or successive-halving")
    if pruner == "pareto" and objectives[1] == "useful_layers":
        return ("pareto needs the cost while a trial trains, and useful_layers is measured "
                "after; allowed: objectives [val_accuracy, params|macs|latency] with pareto, "
                "or pruner none with useful_layers")
    return ""


def _kind(name: str) -> str:
    return getattr(SPACE_PARAMS[name], "kind", "")
