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
from nas.study.config import mask
from nas.study.recovery import RETRIED


def is_finished(trial: FrozenTrial) -> bool:
    """Counts towards ``--trials``: complete, pruned, or failed because of its candidate."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not is_retried(trial)


def is_retried(trial: FrozenTrial) -> bool:
    """Failed because the search, not its candidate, ended it: the candidate runs again."""
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") in RETRIED


def count_finished(study: optuna.Study) -> int:
    return sum(is_finished(t) for t in study.get_trials(deepcopy=False))


def count_finished_in(storage: optuna.storages.BaseStorage, name: str) -> int:
    """:func:`count_finished` of study ``name`` in ``storage``; 0 when there is none yet."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return 0
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
