"""Reading and repairing studies: what is finished, what was left running, what is best.

Optuna only; shared by ``nas search``, ``nas studies``, ``nas best`` and the report.
"""

from __future__ import annotations

import datetime
import os
import socket
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from nas.candidate import Candidate
from nas.errors import NasError
from nas.storage import mask

DRIVER_STOPPED = "driver stopped"  # the search, not the candidate, ended this trial
PROCESS_LOST = "process lost"  # the trial's Ray worker died (node lost, killed, Ctrl-C)
RETRIED = (DRIVER_STOPPED, PROCESS_LOST)  # such trials do not count; their candidates rerun
UNTAGGED_GRACE_S = 600  # a RUNNING trial no driver has claimed is stale after this


def this_driver() -> str:
    """Who runs the search: host, pid and the process's start time (pids get reused)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def _driver_alive(driver: str) -> bool | None:
    """Whether the driver process still runs; None when it is on another host."""
    try:
        host, pid_text, started = driver.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return started == "?" or _start_time(pid) == started


def recover_stale_trials(study: optuna.Study) -> int:
    """Trials left RUNNING by a driver that died: FAIL them and queue their candidates again.

    A driver on this host is checked by its process; one on another host by the
    trial's heartbeat, where the storage keeps heartbeats (RDB storages do). A
    trial not yet tagged with its driver was asked for a moment ago (the tag is
    the driver's next write): it is stale only once it is UNTAGGED_GRACE_S old.
    """
    storage = study._storage
    stale = set(storage._get_stale_trial_ids(study._study_id)
                if is_heartbeat_enabled(storage) else ())
    count = 0
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        driver = trial.user_attrs.get("driver")
        if driver is not None:
            alive = _driver_alive(driver)
        else:
            started = trial.datetime_start or now
            alive = (now - started).total_seconds() < UNTAGGED_GRACE_S
        if alive is False or (alive is None and trial._trial_id in stale):
            try:
                storage.set_trial_user_attr(trial._trial_id, "fail_reason", DRIVER_STOPPED)
                failed = storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another driver recovered it first
            if failed:
                requeue(study, trial)
                count += 1
    return count


def requeue(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    """Queue the candidate of a trial the search, not the candidate, ended, to run again."""
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def is_finished(trial: FrozenTrial) -> bool:
    """Counts towards ``--trials``: complete, pruned, or failed because of its candidate."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") not in RETRIED


def count_finished(study: optuna.Study) -> int:
    return sum(is_finished(t) for t in study.get_trials(deepcopy=False))


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
                           f"--study: {', '.join(sorted(names))}")
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise NasError(f"--study {name}: not in {mask(storage_url)}; allowed: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """Best trials, most accurate first: one for a single objective, the front for two."""
    if len(study.directions) == 1:
        try:
            return [study.best_trial]
        except ValueError:
            return []
    return sorted(study.best_trials, key=lambda t: -t.values[0])


def best_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """Trial ``number``, or the most accurate trial of the Pareto front."""
    if number is not None:
        trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
        if not trials or trials[0].state != TrialState.COMPLETE:
            raise NasError(f"--trial {number}: no complete trial {number} in study "
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
    data = values.pop("data")
    if data:
        top["data"] = data
    top["space"] = values
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    return header + yaml.safe_dump(top, sort_keys=False)


def describe(candidate: Candidate) -> str:
    depth = "x".join(map(str, candidate.stage_depths))
    return (f"{candidate.block}/{candidate.shortcut}, {depth} blocks, width {candidate.width}, "
            f"lr {candidate.lr:.3g}, weight decay {candidate.weight_decay:.2g}, "
            f"batch {candidate.batch_size}")
