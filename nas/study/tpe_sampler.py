"""Optuna's TPE sampler, with a cost per trial that stops growing with the study.

Optuna's TPE fits its two densities to every finished trial at every suggestion, in
Python loops over the trials, and lists every trial of the study from Optuna's cache a few
times per suggestion: 0.2 s a trial at 10,000 trials, on the search driver's thread, for
every trial it starts (issue 28). :class:`RecentTPESampler` fits them to at most
``history`` trials: the best ``BEST_KEPT`` complete trials of the whole study and the most
recent ones. TPE's "good" density is fitted to its best ``min(ceil(n / 10), 25)`` trials,
so for a study past 250 trials it sees exactly the trials it would have seen; only the
"bad" density loses the oldest trials, which Optuna's own weights already discount the
most (they ramp from 1/n up to 1 for the 25 most recent). A study of at most ``history``
trials is sampled exactly as Optuna's TPE samples it.

:class:`_TrialFeed` keeps that window up to date from an SQL storage with one small read
per suggestion (the trials new or unfinished since the last: what Optuna's own cache
reads), never listing the whole study; other storages are listed and cut each time.

Apart from the sampler table (algorithms.py) because subclassing needs Optuna at import
time, and the table must stay importable without it (the space parser uses it).
"""

from __future__ import annotations

import heapq
from collections.abc import Container
from typing import Any

import optuna
from optuna.samplers import TPESampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.study import _optuna

DEFAULT_HISTORY = 1000
BEST_KEPT = 25  # TPE's largest "good" group (optuna.samplers._tpe.sampler.default_gamma)


class RecentTPESampler(TPESampler):
    """TPE over the best ``BEST_KEPT`` and the most recent trials, ``history`` at most
    (0: every trial, Optuna's TPE as it is). Multi-objective studies keep every trial:
    their "good" group is a Pareto ranking of all of them."""

    def __init__(self, *args: Any, history: int = DEFAULT_HISTORY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if history and history <= BEST_KEPT:
            raise ValueError(f"history must be 0 or more than {BEST_KEPT}")
        self.history = history
        self._feeds: dict[int, _TrialFeed] = {}

    def _view(self, study: optuna.Study, trial: FrozenTrial) -> Any:
        if not self.history or len(study.directions) > 1:
            return study
        feed = self._feeds.get(_optuna.study_id(study))
        if feed is None:
            feed = self._feeds[_optuna.study_id(study)] = _TrialFeed(study, self.history)
        feed.refresh(trial.number)
        return _Windowed(study, feed)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, Any]:
        return super().infer_relative_search_space(self._view(study, trial), trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        return super().sample_relative(self._view(study, trial), trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return super().sample_independent(self._view(study, trial), trial, param_name,
                                          param_distribution)


class _TrialFeed:
    """The window of one study's trials that the sampler sees: the best ``BEST_KEPT``
    complete trials numbered before the recent ones, the ``history - BEST_KEPT`` most
    recent trials, and the older ones still unfinished (running ones count under
    constant liar)."""

    def __init__(self, study: optuna.Study, history: int) -> None:
        self.study, self.span = study, history - BEST_KEPT
        self.sign = 1.0 if study.directions[0] == StudyDirection.MAXIMIZE else -1.0
        self.backend = _optuna.rdb_backend(study)
        self.recent: dict[int, FrozenTrial] = {}  # by number, above ``boundary``
        self.open_older: dict[int, FrozenTrial] = {}  # unfinished, at or below it
        self.best_older: list[tuple[float, int, FrozenTrial]] = []  # a min-heap
        self.boundary = -1  # the highest number no longer recent
        self.unfinished_ids: set[int] = set()
        self.last_finished_id = -1
        self.refreshed_for: int | None = None
        self.trials: list[FrozenTrial] = []

    def refresh(self, asking: int) -> None:
        """Bring the window up to date, once per trial being sampled."""
        if asking == self.refreshed_for:
            return
        self.refreshed_for = asking
        if self.backend is None:  # no SQL: list the study and keep the window of it
            self._rebuild(self.study._get_trials(deepcopy=False, use_cache=False), asking)
            return
        if self.last_finished_id < 0 and not self.unfinished_ids:
            # The first read, of every trial: lean (params, values, no user attributes),
            # 1 s at 10,000 trials where reading them whole takes 16 s and 1.1 GB.
            changed = _optuna.lean_trials(self.study, (), params=True) or []
        else:  # then only the trials new or unfinished since (as Optuna's cache reads)
            changed = self.backend._get_trials(
                _optuna.study_id(self.study), states=None,
                included_trial_ids=self.unfinished_ids,
                trial_id_greater_than=self.last_finished_id)
        for trial in changed:
            tid = _optuna.trial_id(trial)
            if trial.state.is_finished():
                self.unfinished_ids.discard(tid)
                self.last_finished_id = max(self.last_finished_id, tid)
            else:
                self.unfinished_ids.add(tid)
            self._place(trial)
        # recent: the ``span`` trials numbered just before the one asking, and any newer
        while self.boundary < asking - 1 - self.span:
            self.boundary += 1
            left = self.recent.pop(self.boundary, None)
            if left is not None:
                self._place(left)
        self.trials = sorted((*self.recent.values(), *self.open_older.values(),
                              *(t for _, _, t in self.best_older)), key=lambda t: t.number)

    def _place(self, trial: FrozenTrial) -> None:
        if trial.number > self.boundary:
            self.recent[trial.number] = trial
            return
        self.open_older.pop(trial.number, None)
        if not trial.state.is_finished():
            self.open_older[trial.number] = trial
        elif trial.state == TrialState.COMPLETE and trial.values:
            entry = (self.sign * trial.values[0], -trial.number, trial)
            if len(self.best_older) < BEST_KEPT:
                heapq.heappush(self.best_older, entry)
            elif entry[:2] > self.best_older[0][:2]:
                heapq.heapreplace(self.best_older, entry)

    def _rebuild(self, trials: list[FrozenTrial], asking: int) -> None:
        self.recent, self.open_older, self.best_older = {}, {}, []
        self.boundary = asking - 1 - self.span
        for trial in trials:
            self._place(trial)
        self.trials = sorted((*self.recent.values(), *self.open_older.values(),
                              *(t for _, _, t in self.best_older)), key=lambda t: t.number)


class _Windowed:
    """The study as the TPE sampler reads it: every attribute its own, but its trials the
    feed's window."""

    def __init__(self, study: optuna.Study, feed: _TrialFeed) -> None:
        self._study, self._feed = study, feed

    def _get_trials(self, deepcopy: bool = False, states: Container[TrialState] | None = None,
                    use_cache: bool = False) -> list[FrozenTrial]:
        return [t for t in self._feed.trials if states is None or t.state in states]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
