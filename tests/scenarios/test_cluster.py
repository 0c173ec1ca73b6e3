"""A real two-node Ray cluster on this machine: `ray job submit` and `ray job stop`, and a
node lost mid-trial.

Each node is a `ray start --block` process in its own session, on 127.0.0.1, with
token authentication on; every process the cluster starts is stopped by its id.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import ROOT, stop_group
from optuna.trial import TrialState
from ray_nodes import Cluster

from nas.study.queries import is_finished, is_retried

pytestmark = pytest.mark.slow

RAY = str(Path(sys.executable).with_name("ray"))
NAS = str(Path(sys.executable).with_name("nas"))

SPACE = """\
name: cluster
dataset: digits
epochs: {epochs}
trials: {trials}
space:
  blocks_per_stage: {blocks}
  width: 8
  shortcut: {{type: categorical, choices: [none, identity]}}
  schedule: constant
  batch_size: 32
  lr: 0.1
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
usefulness: {{enabled: false}}
"""


@pytest.fixture
def cluster(tmp_path):
    made = Cluster(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def _space(tmp_path: Path, **values) -> Path:
    path = tmp_path / "cluster.yaml"
    path.write_text(SPACE.format(**values))
    return path


def test_ray_job_submit_runs_trials_on_both_nodes_and_ray_job_stop_stops_cleanly(
        cluster, tmp_path) -> None:
    # `ray job stop` sends SIGTERM, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s by
    # default, read on the head): the search stops in about a second, but a loaded machine
    # needs more, as docs/search.md advises
    cluster.env["RAY_JOB_STOP_WAIT_TIME_S"] = "30"
    head = cluster.start(cpus=1, head=True)
    cluster.start(cpus=1)
    nodes = {n["NodeID"] for n in cluster.alive_nodes()}
    assert len(nodes) == 2 and head.poll() is None
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    shared = tmp_path / "shared-results"  # one folder every node reaches
    space = _space(tmp_path, epochs=4, trials=4, blocks=2)  # still running when stopped
    address = f"--address=http://127.0.0.1:{cluster.dashboard_port}"
    search = ["--working-dir", str(ROOT), "--", "nas", "search", "--address", "auto",
              "--space", str(space), "--storage", storage, "--results", str(shared),
              "--max-concurrent", "2"]

    submitted = subprocess.run([RAY, "job", "submit", address, "--no-wait", *search],
                               cwd=ROOT, env=cluster.env, capture_output=True, text=True,
                               timeout=300)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = re.search(r"Job '([^']+)' submitted", submitted.stdout + submitted.stderr)[1]
    _wait_for_epoch(storage, 1)
    stop = subprocess.run([RAY, "job", "stop", address, job_id], cwd=ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=300)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    logs = subprocess.run([RAY, "job", "logs", address, job_id], cwd=ROOT, env=cluster.env,
                          capture_output=True, text=True, timeout=300).stdout
    status = subprocess.run([RAY, "job", "status", address, job_id], cwd=ROOT, env=cluster.env,
                            capture_output=True, text=True, timeout=300).stdout
    assert "stopped by SIGTERM: finished trials are kept; resume with: nas search" in logs, \
        status + logs[-3000:] + cluster.tail()
    assert "Traceback" not in logs, logs[-3000:]
    stopped = optuna.load_study(study_name="cluster", storage=storage).get_trials()
    assert not [t for t in stopped if t.state == TrialState.RUNNING]

    job = subprocess.run([RAY, "job", "submit", address, *search], cwd=ROOT, env=cluster.env,
                         capture_output=True, text=True, timeout=600)
    output = job.stdout + job.stderr
    assert job.returncode == 0, output[-4000:] + cluster.tail()
    assert "search finished" in output, output[-4000:]
    study = optuna.load_study(study_name="cluster", storage=storage)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4, output
    assert all(is_finished(t) or is_retried(t) for t in study.get_trials())
    used = {t.user_attrs["node"] for t in complete}
    assert used == nodes  # trials spread over both nodes, each one's node recorded
    for t in complete:
        assert Path(t.user_attrs["checkpoint"]).is_file()
        assert Path(t.user_attrs["checkpoint"]).is_relative_to(shared)


def test_a_trial_lost_with_its_node_resumes_from_its_last_epoch(cluster, tmp_path) -> None:
    cluster.start(cpus=0, head=True)  # the head runs no trial: the worker node must
    doomed = cluster.start(cpus=1)
    doomed_id = {n["NodeID"] for n in cluster.alive_nodes() if n["Resources"].get("CPU")}
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    epochs = 12
    space = _space(tmp_path, epochs=epochs, trials=1, blocks=3)
    driver = subprocess.Popen(
        [NAS, "search", "--address", cluster.address, "--space", str(space),
         "--storage", storage, "--results", str(tmp_path / "results")],
        cwd=ROOT, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        reported = _wait_for_epoch(storage, 2, driver)
        cluster.raylet_of(doomed).kill()  # mid-trial: 10 epochs still to go
        assert reported < epochs
        cluster.start(cpus=1)  # somewhere for the trial to go on
        out, err = driver.communicate(timeout=600)
    finally:
        stop_group(driver, signal.SIGKILL)
    assert driver.returncode == 0, err[-4000:] + cluster.tail()
    (trial,) = optuna.load_study(study_name="cluster", storage=storage).get_trials()
    assert trial.state == TrialState.COMPLETE, err[-3000:]
    assert sorted(trial.intermediate_values) == list(range(1, epochs + 1))
    assert trial.user_attrs["epochs"] == epochs
    assert "resumed_from" in trial.user_attrs, err[-3000:]
    assert trial.user_attrs["resumed_from"] >= reported  # not from scratch
    assert trial.user_attrs["node"] not in doomed_id  # finished on the new node


def _wait_for_epoch(storage: str, epoch: int, driver: subprocess.Popen | None = None,
                    timeout: float = 300) -> int:
    """Wait until the study's first trial has reported ``epoch``; return its last epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver is not None and driver.poll() is not None:
            raise AssertionError(f"the search ended early:\n{driver.stderr.read()[-3000:]}")
        with contextlib.suppress(KeyError, ValueError):
            study = optuna.load_study(study_name="cluster", storage=storage)
            trials = study.get_trials(deepcopy=False)
            if trials and max(trials[0].intermediate_values, default=0) >= epoch:
                return max(trials[0].intermediate_values)
        time.sleep(0.5)
    raise AssertionError(f"no epoch {epoch} reported in {timeout}s")
