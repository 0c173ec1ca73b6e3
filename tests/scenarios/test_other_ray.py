"""A Ray someone else started on the machine, or left behind: a search without --address
runs on its own private Ray, says so in one line, and leaves the other cluster alone;
``--address auto`` joins it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
import pytest
from helpers import ROOT, free_port
from optuna.trial import TrialState
from ray_nodes import Cluster

pytestmark = pytest.mark.slow

SPACE = """\
name: other-ray
dataset: digits
epochs: 1
trials: 1
space:
  blocks_per_stage: 1
  width: 8
  schedule: constant
  batch_size: 64
sampler: {name: random, seed: 0}
pruner: {name: none}
usefulness: {enabled: false}
"""

# A job of the other cluster's user: a detached actor that counts its calls.
JOB = """\
import json, sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR", namespace="their-job")

@ray.remote(num_cpus=0)
class Counter:
    def __init__(self):
        self.count = 0

    def add(self):
        self.count += 1
        return self.count

counter = (Counter.options(name="counter", lifetime="detached").remote()
           if sys.argv[2] == "start" else ray.get_actor("counter"))
print(json.dumps({"count": ray.get(counter.add.remote()),
                  "nodes": sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])}))
"""


def _search(env: dict[str, str], tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    return subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage",
         f"sqlite:///{tmp_path / 'nas.db'}", "--results", str(tmp_path / "results"), *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="other-ray",
                             storage=f"sqlite:///{tmp_path / 'nas.db'}").get_trials()


def _their_job(cluster: Cluster, step: str) -> dict:
    run = subprocess.run([sys.executable, "-c", JOB, cluster.address, step], env=cluster.env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_search_leaves_a_running_cluster_alone_and_auto_joins_it(tmp_path) -> None:
    cluster = Cluster(tmp_path, loopback=True)  # its servers on 127.0.0.1 only
    try:
        # the address file lands where Ray's default temp folder is: $RAY_TMPDIR/ray
        head = cluster.start(cpus=1, head=True, temp_dir=cluster.temp / "ray")
        address_file = cluster.temp / "ray" / "ray_current_cluster"
        recorded = address_file.read_text()
        raylet = cluster.raylet_of(head).pid
        before = _their_job(cluster, "start")
        # the same shell, without the cluster-mode setting the head was started with
        env = {k: v for k, v in cluster.env.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
        env["RAY_TMPDIR"] = str(cluster.temp)

        private = _search(env, tmp_path, "--trials", "1")
        assert private.returncode == 0, private.stderr[-3000:]
        assert (f"note: a Ray cluster already runs on this machine ({cluster.address}); this "
                "search starts its own private Ray") in private.stderr
        (trial,) = _trials(tmp_path)
        assert trial.state == TrialState.COMPLETE
        assert trial.user_attrs["node"] not in before["nodes"]  # not on their cluster

        joined = _search(env, tmp_path, "--trials", "2", "--address", "auto")
        assert joined.returncode == 0, joined.stderr[-3000:]
        assert "note: a Ray cluster" not in joined.stderr
        second = _trials(tmp_path)[1]
        assert second.state == TrialState.COMPLETE
        assert second.user_attrs["node"] in before["nodes"]  # on their cluster this time

        after = _their_job(cluster, "check")  # their job's actor kept its state
        assert after == {"count": 2, "nodes": before["nodes"]}
        assert head.poll() is None and cluster.raylet_of(head).pid == raylet
        assert address_file.read_text() == recorded
    finally:
        cluster.stop()


def test_a_stale_address_file_is_ignored_in_one_line(tmp_path) -> None:
    ray_tmp = Path(tempfile.mkdtemp(prefix="rn-"))  # short: Ray's socket paths live there
    try:
        stale = f"127.0.0.1:{free_port()}"  # a head killed with SIGKILL left this behind
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(stale)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env["RAY_TMPDIR"] = str(ray_tmp)

        joined = _search(env, tmp_path, "--address", "auto")
        assert joined.returncode == 2
        assert joined.stderr.strip().splitlines() == [
            f"nas: error: --address auto: Ray's address file "
            f"{ray_tmp / 'ray' / 'ray_current_cluster'} names {stale}, where no Ray cluster "
            "answers; allowed: a running cluster's host:port ('ray start --head' prints it), "
            "'auto' for the one 'ray start' last started here, or no --address for a private "
            "Ray"]

        private = _search(env, tmp_path)
        assert private.returncode == 0, private.stderr[-3000:]
        notes = [line for line in private.stderr.splitlines() if "address file" in line]
        assert notes == [f"note: Ray's address file {ray_tmp / 'ray' / 'ray_current_cluster'} "
                         f"names {stale}, where no cluster answers (left by a stopped "
                         "cluster); ignored: this search starts its own private Ray"]
        assert [t.state for t in _trials(tmp_path)] == [TrialState.COMPLETE]
        assert "Traceback" not in private.stderr
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
