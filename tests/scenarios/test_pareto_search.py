"""A real two-objective search with the pareto pruner, as a user runs it: refused bad
input, PRUNED trials with their values, a driver killed and the search resumed, the
front in optuna-dashboard's API, ``nas best --max`` and the report's front figure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import optuna
import pytest
from helpers import ROOT, dashboard_study, free_port, stop_group
from optuna.trial import TrialState

from nas.study.queries import is_finished

pytestmark = pytest.mark.slow

TRIALS = 8
SPACE = f"""\
name: pareto
dataset: digits
epochs: 3
trials: {TRIALS}
objectives: [val_accuracy, macs]
space:
  blocks_per_stage: {{type: int, low: 1, high: 3}}
  width: {{type: categorical, choices: [8, 16]}}
  block: {{type: categorical, choices: [basic, preact]}}
  schedule: constant
  batch_size: 32
sampler: {{name: random, seed: 0}}
pruner: {{name: pareto, min_resource: 1, reduction_factor: 2}}
"""


def nas(*args: str, **env: str) -> subprocess.CompletedProcess:
    """In a session of its own: a driver killed with SIGKILL leaves Ray's daemons, stopped
    with the group."""
    proc = subprocess.Popen([sys.executable, "-m", "nas.cli", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **env}, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        stop_group(proc, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_bad_input_is_one_line_and_writes_nothing(tmp_path) -> None:
    space = tmp_path / "pareto.yaml"
    space.write_text(SPACE)
    latency = tmp_path / "latency.yaml"
    latency.write_text(SPACE.replace("[val_accuracy, macs]", "[val_accuracy, latency]"))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(SPACE.replace("[val_accuracy, macs]", "[val_accuracy, flops]"))
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    for args, said in (
            (["--space", str(space), "--pruner", "median"],
             "median prunes on one objective and this search has two"),
            (["--space", str(latency), "--cpus-per-trial", "0.5"],
             "latency is timed on the trial's own device"),
            (["--space", str(unknown)], "objectives: got ['val_accuracy', 'flops']")):
        proc = nas("search", *args, "--storage", storage, "--results", str(tmp_path / "res"))
        assert proc.returncode == 2, proc.stderr
        assert said in proc.stderr and "allowed:" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latency.yaml", "pareto.yaml",
                                                           "unknown.yaml"]


def test_pruned_trials_keep_their_values_through_a_killed_driver(tmp_path) -> None:
    space = tmp_path / "pareto.yaml"
    space.write_text(SPACE)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    args = ["search", "--space", str(space), "--storage", storage, "--results",
            str(tmp_path / "results"), "--max-concurrent", "1"]
    killed = nas(*args, RESNAS_INJECT_FAULTS="4:kill-driver")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    before = {t.number: (t.state, t.values) for t in
              optuna.load_study(study_name="pareto", storage=storage).get_trials()
              if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}
    rerun = nas(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "Traceback" not in rerun.stderr
    study = optuna.load_study(study_name="pareto", storage=storage)
    trials = study.get_trials()
    assert {t.number: (t.state, t.values) for t in trials if t.number in before} == before
    assert sum(is_finished(t) for t in trials) == TRIALS
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert study.metric_names == ["val_accuracy", "macs"]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete, [t.state for t in trials]
    for t in pruned + complete:  # accuracy so far and the cost recorded as it started
        assert t.values == [t.user_attrs["val_history"][-1], t.user_attrs["macs"]], t.number
        epochs = 3 if t in complete else t.user_attrs["epochs"]
        assert len(t.user_attrs["val_history"]) == epochs
    assert all(len(t.user_attrs["val_history"]) < 3 for t in pruned)

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", "--storage", storage, "--port",
         str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        detail = dashboard_study(port, server, "pareto")
    finally:
        stop_group(server)
    assert detail["objective_names"] == ["val_accuracy", "macs"]
    assert detail["directions"] == ["maximize", "minimize"]
    assert sorted(t["number"] for t in detail["best_trials"]) == sorted(
        t.number for t in study.best_trials)
    shown = {t["number"]: t for t in detail["trials"]}
    for t in pruned:
        assert shown[t.number]["state"] == "Pruned"
        assert [v for v in shown[t.number]["values"]] == t.values

    bound = sorted(t.values[1] for t in study.best_trials)[len(study.best_trials) // 2]
    best = nas("best", "--storage", storage, "--json", "--max", f"macs={bound}",
               "--export", str(tmp_path / "small.yaml"))
    assert best.returncode == 0, best.stderr
    chosen = json.loads(best.stdout)
    within = [t for t in complete if t.values[1] <= bound]
    assert chosen["trial"] == max(within, key=lambda t: t.values[0]).number
    assert chosen["trial"] in {t.number for t in study.best_trials}
    assert (tmp_path / "small.yaml").is_file()
    assert {f["trial"] for f in chosen["front"]} == {t.number for t in study.best_trials}
    too_cheap = nas("best", "--storage", storage, "--max", "macs=1")
    assert too_cheap.returncode == 2 and "no complete trial is that cheap" in too_cheap.stderr
    page = (tmp_path / "results" / "pareto" / "report.html").read_text()
    assert 'id="front"' in page
