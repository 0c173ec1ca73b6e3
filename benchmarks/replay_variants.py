"""Changes to resnas's search tried in replay and dropped: kept so their figures repeat.

Each is resnas (:class:`benchmarks.replay_methods.Resnas`: the shipped space through
:class:`nas.study.policy.SearchPolicy`) with one change, named ``resnas-<change>`` for
``benchmarks/replay.py --methods``. None beat the shipped search by more than the noise
of 100 seeds (benchmarks/RESULTS.md has the figures), so none is in ``nas search``.

- ``resnas-cost-macs``, ``resnas-cost-seconds``: cost-aware proposals. TPE's acquisition
  (log l(x) - log g(x) over its 24 candidates) minus ``log cost(x)``: expected improvement
  per unit of cost, as Snoek et al. (2012) do for GP-EI. The cost is the candidate's
  multiply-accumulates (known before training) or, as an upper bound on what any cost
  model could give, the seconds the table recorded for it.
- ``resnas-promotion``: ASHA's promotions (Li et al. 2020) on resnas's rung: a trial below
  the rung's cut is paused with its checkpoint, not lost, and resumed (its last epochs
  only) once enough trials rank below it; TPE is told of it again when it completes.
- ``resnas-stratified``: the random start-up replaced by a stratified design: each block
  type, shortcut and depth in turn (shuffled), lr by Latin hypercube on its log range.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna

from benchmarks.replay_methods import METHODS, Resnas
from benchmarks.replay_sim import Job, Table
from nas.space import SearchSpace
from nas.study import algorithms


class CostAwareTPE(optuna.samplers.TPESampler):
    """TPE choosing among its candidates by acquisition minus ``log cost``."""

    def __init__(self, cost: Any, **options: Any) -> None:
        super().__init__(**options)
        self._cost, self._space_now = cost, {}

    def _sample(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        self._space_now = search_space
        return super()._sample(study, trial, search_space)

    def _compute_acquisition_func(self, samples, mpe_below, mpe_above):  # type: ignore[no-untyped-def]
        values = super()._compute_acquisition_func(samples, mpe_below, mpe_above)
        costs = np.ones(len(values))
        for i in range(len(values)):
            params = {name: self._space_now[name].to_external_repr(samples[name][i])
                      for name in samples}
            costs[i] = self._cost(params)
        return values - np.log(costs)


class _CostAware(Resnas):
    measure = "macs"

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        def cost(params: dict[str, Any]) -> float:
            if params.keys() != set(table.grid):
                return 1.0  # TPE samples one parameter alone only for a dynamic space
            curve = table.lookup({k: (float(v) if isinstance(v, float) else v)
                                  for k, v in params.items()})
            if self.measure == "macs":
                return float(curve.macs)
            return sum(curve.seconds) + curve.other_seconds

        def build(optuna_module, options, space, concurrent):  # type: ignore[no-untyped-def]
            return CostAwareTPE(cost, constant_liar=concurrent > 1, **options)

        saved = algorithms.SAMPLER_BUILDERS["tpe"]
        algorithms.SAMPLER_BUILDERS["tpe"] = build
        try:
            super().__init__(table, space, seed, workers, budget)
        finally:
            algorithms.SAMPLER_BUILDERS["tpe"] = saved


class CostMacs(_CostAware):
    name = "resnas-cost-macs"


class CostSeconds(_CostAware):
    name = "resnas-cost-seconds"
    measure = "seconds"


class Promotion(Resnas):
    """A trial the pruner stops at the rung is paused; a free worker first resumes the best
    paused trial that now ranks in the rung's top 1/reduction_factor."""

    name = "resnas-promotion"

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table, space, seed, workers, budget)
        self.rung = int(space.pruner.get("min_resource", 1))
        self.eta = float(space.pruner.get("reduction_factor", 4))
        self.at_rung: dict[int, float] = {}
        self.paused: list[Job] = []

    def next_job(self, now: float) -> Job:
        ranked = sorted(self.at_rung.values(), reverse=True)[:int(len(self.at_rung) // self.eta)]
        cut = ranked[-1] if ranked else math.inf
        for job in sorted(self.paused, key=lambda j: -self.at_rung[id(j)]):
            if self.at_rung[id(job)] >= cut:
                self.paused.remove(job)
                return Job(job.handle, job.curve, self.rung + 1, self.table.epochs,
                           resumed=True)
        return super().next_job(now)

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        if job.resumed:
            return False
        if epoch == self.rung:
            self.at_rung[id(job)] = value
        return super().after_epoch(job, epoch, value, now)

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        if job.resumed:  # the paused trial was told PRUNED: it comes back as a new trial
            trial = job.handle
            self.policy.study.add_trial(optuna.trial.create_trial(
                params=trial.params, distributions=trial.distributions,
                value=job.curve.final))
            return
        super().job_ended(job, epoch, now)
        if epoch == self.rung and epoch < self.table.epochs:
            self.paused.append(job)


class Stratified(Resnas):
    """The space's ``n_startup_trials`` random candidates replaced by a stratified design,
    queued before the first ask as resnas queues its start-up design."""

    name = "resnas-stratified"

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table, space, seed, workers, budget)
        count = int(space.sampler.get("n_startup_trials", 10))
        rng = np.random.default_rng(seed)
        columns: dict[str, list[Any]] = {}
        for name, choices in table.grid.items():
            if name == "lr":  # Latin hypercube on the space's log range
                param = space.params[name]
                low, high = math.log(param.low), math.log(param.high)
                parts = (rng.permutation(count) + rng.random(count)) / count
                columns[name] = [math.exp(low + u * (high - low)) for u in parts]
            else:  # every choice in turn, shuffled
                cycle = [choices[i % len(choices)] for i in range(count)]
                columns[name] = [cycle[i] for i in rng.permutation(count)]
        for i in range(count):
            self.policy.study.enqueue_trial({name: values[i] for name, values in columns.items()})


VARIANTS = (CostMacs, CostSeconds, Promotion, Stratified)
METHODS.update({cls.name: cls for cls in VARIANTS})
