"""Faults injected into real searches: whatever happens, no finished trial is lost or doubled.

(Elsewhere: a driver killed mid-search and resumed, and trials that raise or
diverge, in test_search.py; a worker node lost mid-trial in test_cluster.py;
SQLite locks held by other processes in test_postgres.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas.studies import DRIVER_STOPPED, is_finished

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TRIALS = 5

SPACE = f"""\
name: faults
dataset: digits
epochs: 2
trials: {TRIALS}
space:
  blocks_per_stage: 1
  width: 8
  batch_size: 32
  schedule: constant
  lr: {{type: float, low: 0.05, high: 0.2, log: true}}
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
usefulness: {{enabled: false}}
"""


class Search:
    """One `nas search` on a space and storage of its own, run as a user runs it."""

    def __init__(self, tmp_path: Path) -> None:
        self.space = tmp_path / "faults.yaml"
        self.space.write_text(SPACE)
        self.storage = f"sqlite:///{tmp_path / 'nas.db'}"
        self.args = [sys.executable, "-m", "nas.cli", "search", "--space", str(self.space),
                     "--storage", self.storage, "--results", str(tmp_path / "results")]
        self.cwd = tmp_path

    def start(self, **env: str) -> subprocess.Popen:
        """In a session of its own, so that its Ray processes can be stopped with it."""
        return subprocess.Popen(self.args, cwd=self.cwd, env={**os.environ, **env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def run(self, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.args, cwd=self.cwd, env={**os.environ, **env}, text=True,
                              capture_output=True, timeout=600)

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        try:
            return optuna.load_study(study_name="faults", storage=self.storage).get_trials()
        except KeyError:
            return []

    def wait_for(self, proc: subprocess.Popen, ready, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            if ready(self.trials()):
                return
            time.sleep(0.3)
        raise AssertionError("the search never got there")


def finished_snapshot(trials) -> dict[int, tuple]:
    return {t.number: (t.state, t.values, dict(t.intermediate_values))
            for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}


def assert_consistent(trials) -> None:
    """Every trial ended; the study counts exactly TRIALS finished ones; numbers are unique."""
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert sum(is_finished(t) for t in trials) == TRIALS
    for t in trials:
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get("fail_reason"), t.number


def test_sigkill_while_a_trial_is_being_recorded(tmp_path) -> None:
    search = Search(tmp_path)
    killed = search.run(RESNAS_INJECT_FAULTS="2:kill-driver")
    assert killed.returncode == -signal.SIGKILL
    half = {t.number: t for t in search.trials()}
    assert half[2].state == TrialState.RUNNING and "epochs" in half[2].user_attrs
    before = finished_snapshot(half.values())
    rerun = search.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = search.trials()
    assert_consistent(after)
    assert {n: v for n, v in finished_snapshot(after).items() if n in before} == before
    assert after[2].state == TrialState.FAIL
    assert after[2].user_attrs["fail_reason"] == DRIVER_STOPPED
    # its candidate ran again, as a new trial
    assert any(t.user_attrs.get("retry_of") == 2 and is_finished(t) for t in after)


def test_ctrl_c_stops_cleanly_and_the_printed_command_resumes(tmp_path) -> None:
    search = Search(tmp_path)
    proc = search.start()
    search.wait_for(proc, lambda ts: any(t.state == TrialState.COMPLETE for t in ts))
    proc.send_signal(signal.SIGINT)  # the driver only, as a terminal's Ctrl-C reaches it
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    resume = next(line for line in err.splitlines() if "resume with: " in line)
    stopped = search.trials()
    assert not [t for t in stopped if t.state == TrialState.RUNNING]
    # what waits is the stopped trials' candidates, queued to run again
    assert all("retry_of" in t.user_attrs for t in stopped if t.state == TrialState.WAITING)
    command = resume.split("resume with: ", 1)[1].split()
    assert command[:2] == ["nas", "search"]
    rerun = subprocess.run([sys.executable, "-m", "nas.cli", *command[1:]], cwd=search.cwd,
                           text=True, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_consistent(search.trials())


def test_an_unwritable_results_folder_stops_before_any_training(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    search = Search(tmp_path)
    proc = subprocess.run([*search.args[:-1], str(blocker / "results")], cwd=tmp_path,
                          text=True, capture_output=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--results" in lines[0] and "writable" in lines[0], lines
    assert not (tmp_path / "nas.db").exists()
