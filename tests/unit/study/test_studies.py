"""Which RUNNING trials a search takes for abandoned: never one its driver just asked for."""

from __future__ import annotations

import socket
import subprocess
import sys

import optuna
from optuna.trial import TrialState

from nas.study import recovery
from nas.study.recovery import DRIVER_STOPPED, recover_stale_trials, this_driver
from nas.study.storage import open_storage

LR = optuna.distributions.FloatDistribution(0.01, 0.1)


def _study(tmp_path) -> optuna.Study:
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    return optuna.create_study(study_name="s", storage=storage, direction="maximize")


def _dead_driver() -> str:
    """A driver of this host whose process has ended."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{proc.stdout.strip()}:?"


def test_a_trial_just_asked_for_is_not_taken_for_abandoned(tmp_path) -> None:
    study = _study(tmp_path)
    fresh = study.ask({"lr": LR})  # its driver has not tagged it yet
    mine = study.ask({"lr": LR})
    mine.set_user_attr("driver", this_driver())
    dead = study.ask({"lr": LR})
    dead.set_user_attr("driver", _dead_driver())
    assert recover_stale_trials(study) == 1
    states = {t.number: t for t in study.get_trials()}
    assert states[fresh.number].state == TrialState.RUNNING
    assert states[mine.number].state == TrialState.RUNNING
    assert states[dead.number].state == TrialState.FAIL
    assert states[dead.number].user_attrs["fail_reason"] == DRIVER_STOPPED
    retry = [t for t in study.get_trials() if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].state == TrialState.WAITING
    study.tell(fresh, 0.5)  # its driver can still finish it


def test_an_untagged_trial_is_abandoned_after_the_grace(tmp_path, monkeypatch) -> None:
    study = _study(tmp_path)
    untagged = study.ask({"lr": LR})
    monkeypatch.setattr(recovery, "UNTAGGED_GRACE_S", 0)
    assert recover_stale_trials(study) == 1
    assert study.get_trials()[untagged.number].state == TrialState.FAIL
