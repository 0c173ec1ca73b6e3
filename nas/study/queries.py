"""Reading studies: what is finished, what is best, and a trial's candidate.

Optuna only; shared by ``nas search``, ``nas studies``, ``nas best`` and the report.
"""

from __future__ import annotations

from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from nas.candidate import Candidate
from nas.errors import NasError, option
from nas.study import _optuna
from nas.study.config import mask
from nas.study.recovery import RETRIED

# What the report's figures read of every trial (the rest only of the trials they show).
REPORT_KEYS = ("candidate", "useful_layers", "total_layers", "useful_layers_interval",
               "params", "layers", "random_deletions")
# ... and what they only need to know a trial has: a lesion profile.
REPORT_MARKS = ("block_importance",)


def is_finished(trial: FrozenTrial) -> bool:
    """Counts towards ``--trials``: complete, pruned, or failed because of its candidate."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not is_retried(trial)


def is_retried(trial: FrozenTrial) -> bool:
    """Failed because the search, not its candidate, ended it: the candidate runs again."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") in RETRIED


def count_finished(study: optuna.Study) -> int:
    """The trials that count towards ``--trials`` (:func:`is_finished`): one counting
    query on an SQL storage, whatever the study holds."""
    return _count_finished(_optuna.storage_of(study), _optuna.study_id(study))


def count_finished_in(storage: optuna.storages.BaseStorage, name: str) -> int:
    """:func:`count_finished` of study ``name`` in ``storage``; 0 when there is none yet."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
    return _count_finished(storage, study_id)


def _count_finished(storage: optuna.storages.BaseStorage, study_id: int) -> int:
    counted = _optuna.count_finished(storage, study_id, RETRIED)
    if counted is not None:
        return counted
    trials = storage.get_all_trials(study_id, deepcopy=False,
                                    states=(TrialState.COMPLETE, TrialState.PRUNED,
                                            TrialState.FAIL))
    return sum(is_finished(t) for t in trials)


def state_counts(trials: list[FrozenTrial]) -> dict[str, int]:
    counts = {s.name: 0 for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                  TrialState.RUNNING, TrialState.WAITING)}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def load_study(name: str | None, storage: Any, storage_url: str) -> optuna.Study:
    """The named study, or the only one in the storage; one-line errors otherwise."""
    names = optuna.get_all_study_names(storage)
    if name is None:
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise NasError(f"no study in {mask(storage_url)}; run 'nas search' first")
        else:
            raise NasError(f"{mask(storage_url)} holds {len(names)} studies; pick one with "
                           f"{option('study')}: {', '.join(sorted(names))}")
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise NasError(f"{option('study')} {name}: not in {mask(storage_url)}; allowed: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Best trials, most accurate first: one for a single objective, the front for two."""
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:
            return []
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def trial_cost(trial: FrozenTrial, name: str) -> float | None:
    """A trial's cost ``name`` (params, macs, latency, useful_layers) as recorded, or None."""
    from nas.study.costs import COST_ATTRS

    value = trial.user_attrs.get(COST_ATTRS.get(name, name))
    return float(value) if isinstance(value, int | float) else None


def within_budget(front: list[FrozenTrial], bounds: dict[str, float]) -> FrozenTrial:
    """The most accurate trial of ``front`` whose every cost named in ``bounds`` is at most
    its bound (``nas best --max macs=2e6``); a one-line error naming the cheapest when
    none is. Given every complete trial, the answer is on the front of accuracy against
    the bounded cost, whatever the study's own objectives."""
    fits = [t for t in front if all((cost := trial_cost(t, name)) is not None and cost <= bound
                                    for name, bound in bounds.items())]
    if fits:
        return max(fits, key=lambda t: t.values[0])
    name, bound = next(iter(bounds.items()))
    known = [(cost, t.number) for t in front if (cost := trial_cost(t, name)) is not None]
    if not known:
        raise NasError(f"{option('max')} {name}={bound:g}: no complete trial records "
                       f"{name}; allowed: a cost the study records (its objective, params, "
                       "macs, or latency where timed)")
    cheapest, number = min(known)
    raise NasError(f"{option('max')} {name}={bound:g}: no complete trial is that cheap "
                   f"(the cheapest, trial {number}, has {name} {cheapest:,.6g}); allowed: "
                   f"a bound of {cheapest:,.6g} or more")


def best_value(study: optuna.Study) -> float | None:
    """The best accuracy any complete trial reached (the first objective), or None."""
    front = pareto_front(study)
    return front[0].values[0] if front else None


def best_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """Trial ``number``, or the most accurate trial of the Pareto front."""
    if number is not None:
        trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
        if not trials or trials[0].state != TrialState.COMPLETE:
            raise NasError(f"{option('trial')} {number}: no complete trial {number} in study "
                           f"'{study.study_name}'")
        return trials[0]
    front = pareto_front(study)
    if not front:
        raise NasError(f"study '{study.study_name}' has no complete trial yet")
    return front[0]


def trial_candidate(trial: FrozenTrial) -> Candidate:
    values = trial.user_attrs.get("candidate")
    if not isinstance(values, dict):
        raise NasError(f"trial {trial.number} has no recorded candidate")
    return Candidate.from_dict(values)


def candidate_yaml(candidate: Candidate, name: str, comment: str = "") -> str:
    """A candidate file (a space file with every value fixed) that ``nas train`` reads."""
    values = candidate.to_dict()
    top = {"name": name, "dataset": values.pop("dataset"), "epochs": values.pop("epochs"),
           "seed": values.pop("seed")}
    if values["batch_size"] is None:
        values["batch_size"] = "auto"  # what the space file says for the scaled default
    data = values.pop("data")
    if data:
        top["data"] = data
    top["space"] = values
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump(top, sort_keys=False)


def useful_depth(trial: FrozenTrial) -> dict[str, Any] | None:
    """The trial's useful depth as its analysis recorded it, or None (not analysed: pruned,
    failed, or a search with the analysis off)."""
    attrs = trial.user_attrs
    if "useful_layers" not in attrs:
        return None
    keys = ("useful_layers", "total_layers", "useful_blocks", "total_blocks",
            "useful_layers_interval")
    return {key: attrs[key] for key in keys if key in attrs}


def describe_depth(trial: FrozenTrial) -> str:
    """``16 of 20 layers useful (90% interval 14-20)``, or ``20 layers (useful depth not
    analysed)``."""
    depth = useful_depth(trial)
    if depth is None:
        return f"{trial.user_attrs.get('layers', '?')} layers (useful depth not analysed)"
    text = f"{depth['useful_layers']} of {depth['total_layers']} layers useful"
    interval = depth.get("useful_layers_interval")
    if interval:
        text += f" (90% interval {interval[0]}-{interval[1]})"
    return text


class LeanStudy:
    """A study read once, lean: every trial with only the user attributes ``user_keys``
    name (those in ``marked`` only as present), through SQL where the storage has it
    (:func:`nas.study._optuna.lean_trials`); whole where it has not (a journal file).

    It answers what the report's collectors ask of an ``optuna.Study`` (``get_trials``,
    ``directions``, ``best_trial``, ``best_trials``, ``study_name``, ``user_attrs``), and
    :meth:`full_trial` gives one trial whole, for the few trials a figure shows in detail.
    Without ``steps``, the trials come without their per-epoch values.
    The best trials come back whole. At 10,000 trials: 0.8 s and ~70 MB instead of 20 s
    and 1.1 GB (issue 28).
    """

    def __init__(self, study: optuna.Study, user_keys: tuple[str, ...] = REPORT_KEYS,
                 marked: tuple[str, ...] = REPORT_MARKS, steps: bool = True) -> None:
        self.study = study
        self.study_name, self.directions = study.study_name, study.directions
        lean = _optuna.lean_trials(study, user_keys, marked, steps=steps)
        self.lean = lean is not None
        self._trials = lean if lean is not None else study.get_trials(deepcopy=False)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self.study.user_attrs

    def get_trials(self, deepcopy: bool = False,
                   states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        return [t for t in self._trials if states is None or t.state in states]

    def full_trial(self, trial: FrozenTrial) -> FrozenTrial:
        """``trial`` with every attribute (one read where the study was read lean)."""
        if not self.lean:
            return trial
        return _optuna.storage_of(self.study).get_trial(_optuna.trial_id(trial))

    @property
    def best_trial(self) -> FrozenTrial:
        return self.study.best_trial  # one query: Optuna asks the storage for it

    @property
    def best_trials(self) -> list[FrozenTrial]:
        return [self.full_trial(t) for t in _optuna.pareto_front_of(self._trials,
                                                                    self.directions)]
