"""The two-objective searches ``benchmarks/mo_pruning.py`` replays, each as its tool runs it.

- ``resnas-pareto``: :class:`nas.study.policy.SearchPolicy` on the space file as
  ``nas search`` builds it: TPE's multi-objective mode and the pareto pruner
  (:mod:`nas.study.pareto_pruner`).
- ``resnas-unpruned``: the same policy, sampler and seed with ``pruner: none``.
- ``moasha``: Syne Tune's ``MOASHA`` scheduler with its default multi-objective priority,
  drawing its own random candidates from the same space, as Syne Tune's MOASHA example
  runs it; given the same rungs as resnas (grace period, reduction factor, max epochs).

Each records every trial trained to the end as (time, val accuracy, MACs).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna

from benchmarks.replay_methods import COSTS, TRIAL_BUDGET, _quiet
from benchmarks.replay_sim import Costs, Job, Method, Table
from nas.space import SearchSpace
from nas.space.model import Choice, FloatRange, IntRange
from nas.study.policy import SearchPolicy, create_search_study


class MoMethod(Method):
    """A method whose complete trials are points (time, accuracy, MACs)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.points: list[tuple[float, float, float]] = []

    def completed(self, job: Job, now: float) -> None:
        self.points.append((now, job.curve.final, float(job.curve.macs)))


class ResnasMo(MoMethod):
    name = "resnas-pareto"
    costs = COSTS["resnas"]
    pruner: dict[str, Any] | None = None  # None: the space file's (pareto)

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table)
        _quiet()
        space = dataclasses.replace(space, sampler={**space.sampler, "seed": seed},
                                    pruner=self.pruner or space.pruner)
        study = create_search_study(space, optuna.storages.InMemoryStorage(), "replay",
                                    budget=TRIAL_BUDGET, concurrent=workers)

        def recorded_costs(candidate) -> dict[str, int]:  # what nas.study.costs computes
            curve = table.lookup(candidate.to_dict())
            return {"macs": curve.macs, "params": curve.params}

        self.policy = SearchPolicy(study, space, known_costs=recorded_costs)
        self.policy.start(TRIAL_BUDGET)
        self.history: dict[int, list[float]] = {}

    def next_job(self, now: float) -> Job:
        trial, _ = self.policy.ask()
        return Job(trial, self.table.lookup(trial.params), 1, self.table.epochs)

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        self.history.setdefault(job.handle.number, []).append(value)
        return self.policy.after_epoch(job.handle, epoch, value)

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        trial = job.handle  # the searcher's record of a multi-objective trial's epochs
        trial.set_user_attr("val_history", self.history.pop(trial.number, []))
        if epoch == self.table.epochs:
            self.policy.complete(trial, (job.curve.final, float(job.curve.macs)))
            self.completed(job, now)
        else:
            self.policy.prune(trial)


class ResnasUnpruned(ResnasMo):
    name = "resnas-unpruned"
    pruner = {"name": "none"}


class SyneTuneMoasha(MoMethod):
    name = "moasha"
    # Syne Tune's own fixed costs were not measured here: it gets the cheapest tool's
    # (a plain Python process, as Optuna alone), which can only flatter it.
    costs = Costs(start=3.0, per_trial=0.05)

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table)
        from benchmarks.mo_moasha import make_moasha

        pruner = space.pruner
        self.scheduler, self.trial_of = make_moasha(
            syne_space(space), seed, max_t=table.epochs,
            grace_period=int(pruner.get("min_resource", 1)),
            reduction_factor=int(pruner.get("reduction_factor", 3)))
        self.count = 0

    def next_job(self, now: float) -> Job:
        trial = self.trial_of(self.count)
        self.count += 1
        return Job(trial, self.table.lookup(trial.config), 1, self.table.epochs)

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        result = {"epoch": epoch, "val_accuracy": value, "macs": float(job.curve.macs)}
        return self.scheduler.on_trial_result(job.handle, result).lower() == "stop"

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        if epoch == self.table.epochs:
            result = {"epoch": epoch, "val_accuracy": job.curve.final,
                      "macs": float(job.curve.macs)}
            self.scheduler.on_trial_complete(job.handle, result)
            self.completed(job, now)


def syne_space(space: SearchSpace) -> dict[str, Any]:
    """The space's searched values as a Syne Tune config space (same ranges, log scales)."""
    from syne_tune.config_space import choice, loguniform, randint, uniform

    out: dict[str, Any] = {}
    for name, param in space.searched.items():
        if isinstance(param, Choice):
            out[name] = choice(list(param.choices))
        elif isinstance(param, IntRange):
            out[name] = randint(param.low, param.high)
        elif isinstance(param, FloatRange):
            out[name] = (loguniform if param.log else uniform)(param.low, param.high)
    return out


MO_METHODS = {cls.name: cls for cls in (ResnasMo, ResnasUnpruned, SyneTuneMoasha)}
