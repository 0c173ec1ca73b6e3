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
from nas.study import _optuna
from nas.study.algorithms import make_pruner, make_sampler
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
    multi = len(space.objectives) > 1
    if (multi or space.sampler["name"] == "nsga2") and space.pruner["name"] != "none":
        why = "this search has two objectives" if multi else "nsga2 is a multi-objective sampler"
        if warn is not None:
            warn(f"warning: {why} and Optuna cannot prune multi-objective trials; pruning is "
                 "off for this search")
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
    """

    def __init__(self, study: optuna.Study, space: SearchSpace) -> None:
        self.study, self.space = study, space
        self.prunes = not isinstance(study.pruner, optuna.pruners.NopPruner)
        # Optuna keeps per-epoch values only for single-objective studies.
        self.single = len(space.objectives) == 1

    def start(self, budget: int) -> int:
        """Queue the cheapest-first start-up design in a fresh study; how many it holds."""
        return enqueue_startup(self.study, self.space, budget)

    def ask(self, claim: dict[str, Any] | None = None) -> tuple[optuna.Trial, Candidate]:
        """The next trial (a queued one first) with ``claim`` stored in the same write, and
        the candidate the space makes of its parameters (kept as its ``candidate``)."""
        trial = _optuna.ask_claimed(self.study, claim or {})
        candidate = self.space.suggest(trial)
        trial.set_user_attr("candidate", candidate.to_dict())
        return trial, candidate

    def after_epoch(self, trial: optuna.Trial, epoch: int, value: float) -> bool:
        """Record ``value`` at ``epoch``; true when the pruner says the trial should stop."""
        if self.single:
            trial.report(value, epoch)
        return self.prunes and trial.should_prune()

    def complete(self, trial: optuna.Trial, values: Sequence[float]) -> None:
        self.study.tell(trial, list(values))

    def prune(self, trial: optuna.Trial) -> None:
        """A trial the pruner stopped: PRUNED, with its epochs so far."""
        self.study.tell(trial, state=TrialState.PRUNED)

    def fail(self, trial: optuna.Trial) -> None:
        """A trial whose candidate failed (diverged, out of memory): it is not run again."""
        self.study.tell(trial, state=TrialState.FAIL)
