"""The search strategies the replay compares, each as its own tool runs it.

- ``resnas``: :class:`nas.study.policy.SearchPolicy` over an in-memory study built by
  :func:`nas.study.policy.create_search_study`, exactly as ``nas search`` builds it: the
  space's sampler (TPE with constant liar when trials run side by side), its pruner, the
  cheapest-first start-up design.
- ``optuna``: Optuna alone as its documentation recommends for TPE: ``TPESampler`` with
  its defaults and ``HyperbandPruner`` (Optuna's benchmarks name it the best pruner for
  TPE), several processes sharing one study (here, workers asking the same study).
- ``tune-asha``: Ray Tune's ``OptunaSearch`` (a default ``TPESampler``; a trial stopped by
  the scheduler is told COMPLETE with its last value, as OptunaSearch does) with
  ``ASHAScheduler``'s defaults (grace period 1, reduction factor 4): Ray's own bracket
  class decides.
- ``asha-promotion``: ASHA as Li et al. (2020) define it, random candidates promoted
  from rung to rung (epochs 1, 3, then the full budget; reduction factor 3), a paused
  trial resuming from its checkpoint.
- ``random``: random candidates trained to the end: the floor.
- ``one-epoch``: Egele et al. (2023): random candidates trained one epoch each for the
  first 40% of the budget, then the top 3 trained on to the end from their checkpoints.

Every method gets the same table, seeds, workers and budget; each pays the fixed costs
its real tool pays (:data:`COSTS`).
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import optuna

from benchmarks.replay_sim import Costs, Job, Method, Table
from nas.space import SearchSpace
from nas.study.policy import SearchPolicy, create_search_study

#: Fixed costs per tool, in seconds, from real runs on the 2-core machine
#: (benchmarks/RESULTS.md, search_startup.py and replay.py's sections). Ray's start is
#: imports 2.5 + ray.init 3.8 + Tune 0.6 + the first worker's start and imports 3.8;
#: a real 4-trial `nas search` of fashion-mnist.yaml began its first epoch 12 s after its
#: process started, and spent 2.7-10.6 s per complete trial on the lesion analysis.
COSTS = {
    "resnas": Costs(start=12.0, per_trial=0.3, per_resume=0.5, per_complete=0.5,
                    analysis=0.018),
    "optuna": Costs(start=3.0, per_trial=0.05, per_resume=0.3),
    "tune-asha": Costs(start=10.7, per_trial=0.3),
    "asha-promotion": Costs(start=10.7, per_trial=0.3, per_resume=0.5),
    "random": Costs(start=3.0, per_trial=0.05),
    "one-epoch": Costs(start=3.0, per_trial=0.05, per_resume=0.3),
}
TRIAL_BUDGET = 10**6  # the clock, not a trial count, ends every replayed search
#: The first epoch at which each peer's early stopping may act (its grace period, minimum
#: resource, first rung, the epochs of "one-epoch"). 1 is each tool's default; the replay's
#: --min-epoch gives every peer the same prior a tuned resnas space file uses.
MIN_EPOCH = {"value": 1}


def _quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


class StudyMethod(Method):
    """A method that asks an Optuna study for candidates through the space's own
    ``suggest`` (the same distributions resnas's sampler sees)."""

    def __init__(self, table: Table, space: SearchSpace, study: optuna.Study) -> None:
        _quiet()
        self.table, self.space, self.study = table, space, study

    def new_job(self) -> Job:
        trial = self.study.ask()
        self.space.suggest(trial)
        return Job(trial, self.table.lookup(trial.params), 1, self.table.epochs)


class Resnas(Method):
    name = "resnas"
    costs = COSTS["resnas"]

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        _quiet()
        space = dataclasses.replace(space, sampler={**space.sampler, "seed": seed})
        study = create_search_study(space, optuna.storages.InMemoryStorage(), "replay",
                                    budget=TRIAL_BUDGET, concurrent=workers)
        self.table, self.policy = table, SearchPolicy(study, space)
        self.policy.start(TRIAL_BUDGET)

    def next_job(self, now: float) -> Job:
        trial, _ = self.policy.ask()
        return Job(trial, self.table.lookup(trial.params), 1, self.table.epochs)

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        return self.policy.after_epoch(job.handle, epoch, value)

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        if epoch == self.table.epochs:
            self.policy.complete(job.handle, [job.curve.final])
        else:
            self.policy.prune(job.handle)


class OptunaHyperband(StudyMethod):
    name = "optuna"
    costs = COSTS["optuna"]

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        pruner = optuna.pruners.HyperbandPruner(min_resource=MIN_EPOCH["value"],
                                                max_resource=table.epochs)
        # Hyperband puts a trial in a bracket by a hash of the study's name: a fixed name
        # per seed makes a replay repeatable (Optuna's default name is a random UUID).
        super().__init__(table, space, optuna.create_study(
            study_name=f"optuna-{seed}", direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed), pruner=pruner))

    def next_job(self, now: float) -> Job:
        return self.new_job()

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        job.handle.report(value, epoch)
        return job.handle.should_prune()

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        if epoch == self.table.epochs:
            self.study.tell(job.handle, job.curve.final)
        else:
            self.study.tell(job.handle, state=optuna.trial.TrialState.PRUNED)


class TuneAsha(StudyMethod):
    name = "tune-asha"
    costs = COSTS["tune-asha"]

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        from ray.tune.schedulers.async_hyperband import _Bracket

        super().__init__(table, space, optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)))
        # ASHAScheduler(max_t=epochs) with its defaults: one bracket, grace 1, factor 4
        self.bracket = _Bracket(MIN_EPOCH["value"], table.epochs, 4, 0, stop_last_trials=True)

    def next_job(self, now: float) -> Job:
        return self.new_job()

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        ray_trial = SimpleNamespace(trial_id=str(job.handle.number))
        return self.bracket.on_result(ray_trial, epoch, value) == "STOP"

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        self.study.tell(job.handle, job.curve.val[epoch - 1])  # OptunaSearch's COMPLETE


class RandomFull(StudyMethod):
    name = "random"
    costs = COSTS["random"]

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table, space, optuna.create_study(
            direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)))

    def next_job(self, now: float) -> Job:
        return self.new_job()

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        self.study.tell(job.handle, job.curve.final)


class AshaPromotion(RandomFull):
    """Li et al. (2020), Algorithm 2: a free worker promotes the best unpromoted trial of
    the highest rung that has one in its top 1/eta, else starts a new trial."""

    name = "asha-promotion"
    costs = COSTS["asha-promotion"]
    eta = 3

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table, space, seed, workers, budget)
        rungs = [MIN_EPOCH["value"]]
        while rungs[-1] * self.eta < table.epochs:
            rungs.append(rungs[-1] * self.eta)
        self.rungs = [*rungs, table.epochs]  # 1, 3, 6 for 6 epochs
        self.results: list[dict[Any, float]] = [{} for _ in self.rungs]
        self.promoted: list[set[Any]] = [set() for _ in self.rungs]

    def next_job(self, now: float) -> Job:
        for k in reversed(range(len(self.rungs) - 1)):
            rung = self.results[k]
            top = sorted(rung, key=rung.get, reverse=True)[:len(rung) // self.eta]
            for job in top:
                if job not in self.promoted[k]:
                    self.promoted[k].add(job)
                    return Job(job.handle, job.curve, self.rungs[k] + 1, self.rungs[k + 1],
                               resumed=True)
        job = self.new_job()
        job.last = self.rungs[0]
        return job

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        k = self.rungs.index(epoch)
        first = next(j for j in self.results[0] if j.handle is job.handle) if k else job
        self.results[k][first] = job.curve.val[epoch - 1]


class OneEpochTopK(RandomFull):
    """Egele et al. (2023): one epoch each for many random candidates, then the top k
    trained to the end."""

    name = "one-epoch"
    costs = COSTS["one-epoch"]
    k, explore_share = 3, 0.4

    def __init__(self, table: Table, space: SearchSpace, seed: int, workers: int,
                 budget: float) -> None:
        super().__init__(table, space, seed, workers, budget)
        self.explore_until = self.explore_share * budget
        self.scored: list[tuple[float, Job]] = []
        self.chosen: list[Job] | None = None
        self.running_first = 0

    def next_job(self, now: float) -> Job | None:
        if now < self.explore_until:
            job = self.new_job()
            job.last = MIN_EPOCH["value"]
            self.running_first += 1
            return job
        if self.running_first:
            return None  # the one-epoch phase's last trials are still training
        if self.chosen is None:
            ranked = sorted(self.scored, key=lambda pair: pair[0], reverse=True)
            self.chosen = [job for _, job in ranked[:self.k]]
        if not self.chosen:
            return None
        job = self.chosen.pop(0)
        return Job(job.handle, job.curve, job.last + 1, self.table.epochs, resumed=True)

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        if not job.resumed:
            self.scored.append((job.curve.val[epoch - 1], job))
            self.running_first -= 1

    def done(self) -> bool:
        return self.chosen == []


METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (
    Resnas, OptunaHyperband, TuneAsha, AshaPromotion, RandomFull, OneEpochTopK)}
