"""What a search decides, apart from what runs its trials: :class:`SearchPolicy`.

Which candidate to train next (the space's sampler, after the cheapest-first start-up
design), whether a running trial should stop after an epoch (the space's pruner), and how
each trial's end is told to the study. ``nas search`` drives it from Ray Tune's callbacks
(:mod:`nas.tuning.searcher`); ``benchmarks/replay.py`` drives the very same object from a
simulated clock over recorded training curves. So a search strategy measured in replay is
the one users run, not a re-implementation of it. Nothing here imports Ray.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.candidate import Candidate
from nas.space import SearchSpace
from nas.study import _optuna, costs
from nas.study.algorithms import make_pruner, make_sampler
from nas.study.pareto_pruner import ParetoPruner
from nas.study.startup import enqueue_startup, startup_size


def search_directions(space: SearchSpace) -> list[str]:
    """Validation accuracy up; a second objective (a cost) down."""
    return ["maximize"] + ["minimize"] * (len(space.objectives) - 1)


def create_search_study(space: SearchSpace, storage: str | optuna.storages.BaseStorage,
                        study_name: str, *, budget: int, concurrent: int, held: int = 0,
                        warn: Callable[[str], None] | None = None) -> optuna.Study:
    """The study of a search of ``space``, created or loaded, with its sampler (built once)
    and its pruner.

    ``held``: the trials ``storage`` already holds for ``study_name`` (queued and running
    ones too). The sampler is seeded past what the study will hold when it first samples:
    those trials, or for a fresh study the start-up design queued before it
    (:func:`nas.study.algorithms.make_sampler` says why). ``warn`` hears why a pruner was
    turned off. Optuna's ``ValueError`` passes through; a study loaded under that name
    keeps its own directions, so the caller compares them with :func:`search_directions`.
    """
    history = held or startup_size(space, budget)
    sampler = make_sampler(space, concurrent, history=history)
    pruner = make_pruner(space.pruner, space.epochs)
    # (two objectives with a one-objective pruner never get here: the space refuses them)
    if len(space.objectives) == 1 and space.sampler["name"] == "nsga2" and not isinstance(
            pruner, optuna.pruners.NopPruner):
        if warn is not None:
            warn("warning: nsga2 is a multi-objective sampler and Optuna cannot prune "
                 "multi-objective trials; pruning is off for this search")
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                               pruner=pruner, directions=search_directions(space),
                               load_if_exists=True)


class SearchPolicy:
    """The decisions of one search over one study.

    :meth:`start` queues the start-up design, :meth:`ask` gives the next trial and its
    candidate, :meth:`after_epoch` records an epoch and says whether to stop, and
    :meth:`complete` / :meth:`prune` / :meth:`fail` tell the study how a trial ended.
    Callers own everything else: where the trial runs, its attributes, retries.

    A two-objective search records each trial's cost as soon as it is known
    (:mod:`nas.study.costs`) and, with the pareto pruner, ranks each epoch on the
    accuracy so far and that cost. ``known_costs``: what gives a candidate's parameters
    and multiply-accumulates (the replay passes the recorded ones).
    """

    def __init__(self, study: optuna.Study, space: SearchSpace,
                 known_costs: Callable[[Candidate], dict[str, int]] | None = None) -> None:
        self.study, self.space = study, space
        self.prunes = not isinstance(study.pruner, optuna.pruners.NopPruner)
        # Optuna keeps per-epoch values only for single-objective studies.
        self.single = len(space.objectives) == 1
        self.cost_objective = None if self.single else space.objectives[1]
        self.known_costs = known_costs or costs.known_costs
        self.costs: dict[int, float] = {}  # per running trial number, once known
        self.last: dict[int, float] = {}  # per running trial number: its last accuracy
        self.pareto = study.pruner if isinstance(study.pruner, ParetoPruner) else None
        if self.pareto is not None:  # a resumed search ranks against what came before
            self.pareto.load(_optuna.lean_trials(study, ("val_history",), steps=False)
                             or study.get_trials(deepcopy=False))

    def start(self, budget: int) -> int:
        """Queue the cheapest-first start-up design in a fresh study; how many it holds."""
        return enqueue_startup(self.study, self.space, budget)

    def ask(self, claim: dict[str, Any] | None = None) -> tuple[optuna.Trial, Candidate]:
        """The next trial (a queued one first) with ``claim`` stored in the same write, and
        the candidate the space makes of its parameters (kept as its ``candidate``)."""
        trial = _optuna.ask_claimed(self.study, claim or {})
        candidate = self.space.suggest(trial)
        attrs: dict[str, Any] = {"candidate": candidate.to_dict()}
        if self.cost_objective in costs.BEFORE_TRAINING:  # known now: recorded now
            known = self.known_costs(candidate)
            attrs.update(known)
            self.costs[trial.number] = float(known[self.cost_objective])
        _optuna.set_user_attrs(self.study, trial, attrs)
        return trial, candidate

    def after_epoch(self, trial: optuna.Trial, epoch: int, value: float,
                    result: dict[str, Any] | None = None) -> bool:
        """Record ``value`` at ``epoch``; true when the pruner says the trial should stop.
        ``result``: the epoch's Tune result, where a cost timed on the trial's device
        (its latency) arrives with the first epoch."""
        if self.single:
            trial.report(value, epoch)
            return self.prunes and trial.should_prune()
        self.last[trial.number] = value
        cost = self.costs.get(trial.number)
        if cost is None and result and costs.COST_ATTRS[self.cost_objective] in result:
            timed = {key: float(result[key]) for key in costs.TIMED_ATTRS if key in result}
            _optuna.set_user_attrs(self.study, trial, timed)
            cost = self.costs[trial.number] = timed[costs.COST_ATTRS[self.cost_objective]]
        if self.pareto is None or cost is None:
            return False
        return self.pareto.record(trial.number, epoch, value, cost)

    def objective_values(self, trial: optuna.Trial, result: dict[str, Any]) -> tuple[float, ...]:
        """A finished trial's values: its accuracy, and its cost from ``result`` (what the
        trial measured) or as recorded when it started."""
        if self.single:
            return (float(result["val_accuracy"]),)
        key = costs.COST_ATTRS[self.cost_objective]
        cost = result[key] if key in result else self.costs[trial.number]
        return float(result["val_accuracy"]), float(cost)

    def complete(self, trial: optuna.Trial, values: Sequence[float]) -> None:
        self.forget(trial)
        self.study.tell(trial, list(values))

    def prune(self, trial: optuna.Trial) -> None:
        """A trial the pruner stopped: PRUNED, with its values so far (one objective: its
        last epoch's, as Optuna records it; two: that accuracy and the trial's cost)."""
        last, cost = self.last.get(trial.number), self.costs.get(trial.number)
        self.forget(trial)
        if self.single or last is None or cost is None:
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            _optuna.tell_pruned(self.study, trial, (last, cost))

    def fail(self, trial: optuna.Trial) -> None:
        """A trial whose candidate failed (diverged, out of memory): it is not run again."""
        self.forget(trial)
        self.study.tell(trial, state=TrialState.FAIL)

    def forget(self, trial: optuna.Trial) -> None:
        """Drop what the policy kept of a trial that ended (idempotent)."""
        self.costs.pop(trial.number, None)
        self.last.pop(trial.number, None)
