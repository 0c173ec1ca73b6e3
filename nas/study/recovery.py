"""Trials a stopped driver left behind: who runs a trial, heartbeats, and recovery.

A search tags each trial with its driver (host, pid, start time) and, where the
storage keeps heartbeats, beats for it while it runs. A later search (on any
host) fails the trials of a driver that is gone and queues their candidates
again, so a crash or a Ctrl-C never loses a candidate and never counts against
``--trials``.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.study import _optuna

DRIVER_STOPPED = "driver stopped"  # the search, not the candidate, ended this trial
PROCESS_LOST = "process lost"  # the trial's Ray worker died (node lost, killed, Ctrl-C)
DISK_FULL = "disk full"  # no space for the trial's files: it reruns once space is freed
# such trials do not count; their candidates rerun
RETRIED = (DRIVER_STOPPED, PROCESS_LOST, DISK_FULL)
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
    resnas search stores the tag with the trial (``_optuna.ask_claimed``); a
    trial without one was asked for by another client (or an older resnas, which
    tagged it in a second write): it is stale only once it is UNTAGGED_GRACE_S old.
    """
    storage = _optuna.storage_of(study)
    stale = _optuna.stale_trial_ids(study)
    count = 0
    now = datetime.datetime.now()
    for trial in _optuna.running_trials(study):
        driver = trial.user_attrs.get("driver")
        if driver is not None:
            alive = _driver_alive(driver)
        else:
            started = trial.datetime_start or now
            alive = (now - started).total_seconds() < UNTAGGED_GRACE_S
        if alive is False or (alive is None and _optuna.trial_id(trial) in stale):
            try:
                storage.set_trial_user_attr(_optuna.trial_id(trial), "fail_reason", DRIVER_STOPPED)
                failed = storage.set_trial_state_values(_optuna.trial_id(trial), TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another driver recovered it first
            if failed:
                requeue(study, trial)
                count += 1
    return count


def requeue(study: optuna.Study, trial: FrozenTrial | optuna.Trial) -> None:
    """Queue the candidate of a trial the search, not the candidate, ended, to run again."""
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


def fail_and_retry(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    """FAIL a trial the search, not its candidate, ended, and queue its candidate again."""
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    requeue(study, trial)


@contextlib.contextmanager
def heartbeats(study: optuna.Study, live: Callable[[], list[optuna.Trial]]):
    """Keep beating for every running trial while the search runs.

    Another driver on the same study (on any host) then tells a dead driver's
    trials by their stale heartbeat and fails them (recover_stale_trials),
    when it starts and, while it runs, after every beat.
    """
    if not _optuna.heartbeat_enabled(study):
        yield
        return
    stop = threading.Event()
    interval = _optuna.heartbeat_seconds(study) or 60

    def run() -> None:
        while not stop.wait(interval):
            for trial in live():
                with contextlib.suppress(Exception):  # a missed beat is retried next round
                    _optuna.record_heartbeat(study, trial)
            with contextlib.suppress(Exception):  # likewise a missed check
                recover_stale_trials(study)

    thread = threading.Thread(target=run, name="resnas-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
