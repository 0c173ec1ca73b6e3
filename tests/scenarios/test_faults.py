"""Faults injected into real searches: whatever happens, no finished trial is lost or doubled.

(Elsewhere: a driver killed mid-search and resumed, and trials that raise, run out of
memory or diverge, in test_search.py; a worker node lost mid-trial in test_cluster.py;
PostgreSQL stopped mid-search, and SQLite locks held too long, in test_postgres.py.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import python_stacks, stop_group
from optuna.trial import TrialState

from nas.study.queries import is_finished
from nas.study.recovery import DRIVER_STOPPED

pytestmark = pytest.mark.slow

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

    def __init__(self, tmp_path: Path, space: str = SPACE) -> None:
        self.space = tmp_path / "faults.yaml"
        self.space.write_text(space)
        self.storage = f"sqlite:///{tmp_path / 'nas.db'}"
        self.args = [sys.executable, "-m", "nas.cli", "search", "--space", str(self.space),
                     "--storage", self.storage, "--results", str(tmp_path / "results")]
        self.cwd = tmp_path

    def start(self, **env: str) -> subprocess.Popen:
        """In a session of its own, so that its Ray processes can be stopped with it."""
        # PYTHONFAULTHANDLER: a driver that crashes before Ray starts shows where (once Ray
        # runs, Ray's own handler of fatal signals replaces faulthandler's; a hang is shown
        # with helpers.python_stacks)
        env = {**os.environ, "PYTHONFAULTHANDLER": "1", **env}
        return subprocess.Popen(self.args, cwd=self.cwd, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)

    def run(self, **env: str) -> subprocess.CompletedProcess:
        proc = self.start(**env)
        try:
            out, err = proc.communicate(timeout=600)
        finally:
            stop_group(proc, signal.SIGKILL)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

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


@pytest.mark.parametrize(("stop", "status", "said"), [
    (signal.SIGINT, 130, "interrupted"),  # a terminal's Ctrl-C reaches the driver only
    (signal.SIGTERM, 143, "stopped by SIGTERM"),  # Kubernetes, a batch scheduler, kill
], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_stops_cleanly_and_the_printed_command_resumes(
        tmp_path, stop: int, status: int, said: str) -> None:
    search = Search(tmp_path)
    proc = search.start()
    # mid-trial: the first epoch of a trial is in (a wider window than a complete trial,
    # whose end on a loaded machine came too close to the search's own end)
    search.wait_for(proc, lambda ts: any(t.intermediate_values for t in ts))
    proc.send_signal(stop)
    try:
        out, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        if proc.poll() is not None:  # it exited, and something it started holds its stderr
            left = subprocess.run(["ps", "-o", "pid,etime,args", "-g", str(proc.pid)],
                                  text=True, capture_output=True).stdout
            pytest.fail(f"exit {proc.returncode}, but 4 minutes after a Ctrl-C its group "
                        f"still runs:\n{left}")
        stacks = python_stacks(proc.pid)  # where it hangs
        stop_group(proc, signal.SIGKILL)
        err = ""
        with contextlib.suppress(subprocess.TimeoutExpired):
            err = proc.communicate(timeout=60)[1]
        pytest.fail(f"no exit 4 minutes after a Ctrl-C; its stderr:\n{err[-3000:]}\n"
                    f"the driver's stacks:\n{stacks}")
    left = _session_processes(proc.pid)  # Ray's daemons and workers: stopped with it
    stop_group(proc, signal.SIGKILL)
    assert proc.returncode == status, err[-3000:]
    assert not left, left
    assert "Traceback" not in err
    resume = next(line for line in err.splitlines() if "resume with: " in line)
    assert resume.startswith(f"{said}: "), resume
    stopped = search.trials()
    assert not [t for t in stopped if t.state == TrialState.RUNNING]
    # what waits is the stopped trials' candidates, queued to run again, and the rest of
    # the random start-up queued cheapest first (nas.study.startup)
    assert all("retry_of" in t.user_attrs or t.user_attrs.get("startup") == "shortest-first"
               for t in stopped if t.state == TrialState.WAITING)
    command = resume.split("resume with: ", 1)[1].split()
    assert command[:2] == ["nas", "search"]
    rerun = subprocess.run([sys.executable, "-m", "nas.cli", *command[1:]], cwd=search.cwd,
                           text=True, capture_output=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_consistent(search.trials())


def _session_processes(session: int, timeout: float = 60) -> list[str]:
    """What still runs in a session once its processes have had ``timeout`` seconds to
    exit (a worker told to stop may take a moment); empty as soon as all have."""
    deadline = time.monotonic() + timeout
    while True:
        listed = subprocess.run(["ps", "-s", str(session), "-o", "pid=,stat=,args="],
                                text=True, capture_output=True).stdout
        left = [line.strip() for line in listed.splitlines()
                if line.strip() and line.split()[1][0] != "Z"]  # a zombie has exited
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.3)


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


def test_sigkill_before_the_first_trial_ends_then_a_locked_sqlite_file(tmp_path) -> None:
    """The driver is killed while its first trials train; the rerun resumes, and rides out
    the SQLite file being locked by another process for a few seconds mid-search."""
    search = Search(tmp_path)
    proc = search.start()
    try:
        # trials are running and none has ended (the others wait in the queued start-up)
        search.wait_for(proc, lambda ts: any(t.state == TrialState.RUNNING for t in ts) and all(
            t.state in (TrialState.RUNNING, TrialState.WAITING) for t in ts))
    finally:
        stop_group(proc, signal.SIGKILL)  # no handler of the driver's runs
    assert proc.returncode == -signal.SIGKILL

    rerun = search.start()
    try:
        search.wait_for(rerun, lambda ts: any(t.state == TrialState.COMPLETE for t in ts) and any(
            t.state == TrialState.RUNNING for t in ts))
        holder = sqlite3.connect(tmp_path / "nas.db", isolation_level=None)  # another writer
        holder.execute("BEGIN EXCLUSIVE")
        time.sleep(5)
        holder.execute("COMMIT")
        holder.close()
        out, err = rerun.communicate(timeout=600)
    finally:
        stop_group(rerun, signal.SIGKILL)
    assert rerun.returncode == 0, err[-3000:]
    assert "left running by a stopped search were marked FAIL" in err
    assert "locked" not in err and "Traceback" not in err
    after = search.trials()
    assert_consistent(after)
    lost = [t for t in after if t.user_attrs.get("fail_reason") == DRIVER_STOPPED]
    assert lost and all(any(r.user_attrs.get("retry_of") == t.number for r in after)
                        for t in lost)


CHECKPOINT_SPACE = SPACE.replace("epochs: 2", "epochs: 3").replace(f"trials: {TRIALS}",
                                                                   "trials: 4")


def test_a_damaged_checkpoint_is_never_loaded(tmp_path) -> None:
    """Each trial's worker dies in epoch 2; Tune restores it from epoch 1's checkpoint,
    which the fault left intact (trial 0), truncated, bit-flipped or deleted."""
    search = Search(tmp_path, CHECKPOINT_SPACE)
    faults = "0:crash,1:truncate-checkpoint,2:corrupt-checkpoint,3:delete-checkpoint"
    proc = search.run(RESNAS_INJECT_FAULTS=faults)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = search.trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for t in trials:
        assert sorted(t.intermediate_values) == [1, 2, 3] and t.user_attrs["epochs"] == 3
    intact, truncated, flipped, deleted = (t.user_attrs for t in trials)
    assert intact["resumed_from"] == 1 and "restarted" not in intact
    for attrs, reason in ((truncated, "SHA-256"), (flipped, "SHA-256"), (deleted, "missing")):
        assert "resumed_from" not in attrs
        assert "unreadable" in attrs["restarted"] and reason in attrs["restarted"]
    for number in (1, 2, 3):  # said on the console, once per trial
        assert proc.stderr.count(f"trial {number:>3} restarted from scratch") == 1
    assert "trial   0 restarted" not in proc.stderr
