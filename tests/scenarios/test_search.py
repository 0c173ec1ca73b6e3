"""nas search against a real local Ray and a real SQLite study, run as a user runs it."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from helpers import ROOT, dashboard_study, free_port, stop_group
from optuna.trial import TrialState

pytestmark = pytest.mark.slow


STATES_SPACE = """\
name: states
dataset: digits
epochs: 3
trials: 5
space:
  blocks_per_stage: 1
  width: 8
  shortcut: none
  schedule: constant
  batch_size: 16
  lr: {type: float, low: 1.0e-5, high: 1.0, log: true}
sampler: {name: random, seed: 0}
pruner: {name: threshold, lower: 0.3}
"""

# What each of the five trials is made to do: learn, learn nothing, blow up, raise, and
# run out of memory (the last two by injected faults).
ENQUEUED = [{"lr": 0.05}, {"lr": 1e-5}, {"lr": 1e12}, {"lr": 0.05}, {"lr": 0.05}]


def nas(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def states_run(tmp_path_factory):
    """One real search whose trials complete, get pruned, diverge, raise and run out of
    memory."""
    work = tmp_path_factory.mktemp("states")
    space = work / "states.yaml"
    space.write_text(STATES_SPACE)
    storage = f"sqlite:///{work / 'nas.db'}"
    study = optuna.create_study(study_name="states", storage=storage, direction="maximize")
    for params in ENQUEUED:
        study.enqueue_trial(params)
    proc = nas("search", "--space", str(space), "--storage", storage, "--results",
               str(work / "results"), "--max-concurrent", "2",
               env={"RESNAS_INJECT_FAULTS": "3:raise,4:oom"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name="states", storage=storage).get_trials()
    return {"work": work, "storage": storage, "proc": proc, "space": space,
            "trials": {t.number: t for t in trials}}


def test_no_training_state_is_left_by_any_kind_of_trial_end(states_run) -> None:
    # complete, pruned, diverged, raised, out of memory: each wrote a state per epoch
    # into Tune's folder (a worker lost mid-trial restarts from it); none outlives its trial
    tune_folder = states_run["work"] / "results" / "states" / "tune"
    assert list(tune_folder.rglob("result.json"))  # the trials' folders are there
    assert not list(tune_folder.rglob("checkpoint_*"))


def test_trial_states_are_true(states_run) -> None:
    trials = states_run["trials"]
    assert sorted(trials) == [0, 1, 2, 3, 4]

    complete = trials[0]
    assert complete.state == TrialState.COMPLETE
    assert sorted(complete.intermediate_values) == [1, 2, 3]
    assert complete.value == complete.intermediate_values[3]
    for key in ("layers", "blocks", "params", "seconds", "images_per_second", "node",
                "test_accuracy", "checkpoint"):
        assert key in complete.user_attrs, key
    assert complete.user_attrs["layers"] == 8 and complete.user_attrs["blocks"] == 3
    assert len(complete.user_attrs["node"]) > 10
    assert Path(complete.user_attrs["checkpoint"]).is_file()

    pruned = trials[1]
    assert pruned.state == TrialState.PRUNED
    assert sorted(pruned.intermediate_values) == [1]  # stopped at the epoch the pruner said
    assert pruned.intermediate_values[1] < 0.3

    diverged = trials[2]
    assert diverged.state == TrialState.FAIL
    assert diverged.user_attrs["fail_reason"] == "diverged"
    assert "diverged" in diverged.user_attrs["error"]
    last = max(diverged.intermediate_values)
    assert math.isnan(diverged.intermediate_values[last])

    raised = trials[3]
    assert raised.state == TrialState.FAIL
    assert raised.user_attrs["fail_reason"] == "error"
    assert "injected fault in trial 3" in raised.user_attrs["error"]

    out_of_memory = trials[4]
    assert out_of_memory.state == TrialState.FAIL
    assert out_of_memory.user_attrs["fail_reason"] == "out of memory"
    assert "MemoryError" in out_of_memory.user_attrs["error"]

    for t in trials.values():  # Optuna holds one value per epoch Ray trained
        assert len(t.intermediate_values) == t.user_attrs.get("epochs", 0)


def test_ray_trained_as_many_epochs_as_the_study_holds(states_run) -> None:
    """Count Ray Tune's own per-trial results against Optuna's intermediate values."""
    reported: dict[int, int] = {}
    for params in (states_run["work"] / "results" / "states" / "tune").glob("run-*/*/params.json"):
        number = json.loads(params.read_text())["trial_number"]
        lines = (params.parent / "result.json").read_text().splitlines()
        reported[number] = sum('"epoch"' in line for line in lines)
    trials = states_run["trials"]
    assert sorted(reported) == [0, 1, 2, 3, 4]
    for number, count in reported.items():
        assert count == len(trials[number].intermediate_values), number


def test_study_records_the_space_and_the_summary_is_printed(states_run) -> None:
    study = optuna.load_study(study_name="states", storage=states_run["storage"])
    assert study.user_attrs["space_text"] == STATES_SPACE
    assert study.user_attrs["dataset"] == "digits"
    assert study.user_attrs["resnas_version"]
    assert study.metric_names == ["val_accuracy"]
    assert study.best_trial.number == 0  # never a failed trial
    out = states_run["proc"].stdout
    assert "best: trial 0" in out and "1 complete, 1 pruned, 3 failed" in out
    progress = states_run["proc"].stderr
    assert "pruned at epoch 1" in progress and "failed (diverged)" in progress
    assert "failed (out of memory)" in progress and "failed (error)" in progress
    assert "Traceback" not in progress


def test_best_export_retrains_to_the_same_accuracy(states_run, tmp_path) -> None:
    exported = tmp_path / "best.yaml"
    proc = nas("best", "--study", "states", "--storage", states_run["storage"],
               "--export", str(exported))
    assert proc.returncode == 0, proc.stderr
    assert "best trial 0" in proc.stdout
    attrs = states_run["trials"][0].user_attrs
    assert (f"  {attrs['useful_layers']} of {attrs['total_layers']} layers useful (90% "
            "interval ") in proc.stdout
    # the command nas best prints, as a user would copy it
    command = proc.stdout.split("retrain: ", 1)[1].split()
    assert command[:4] == ["nas", "train", "--config", str(exported)]
    retrain = nas(*command[1:], "--json")
    assert retrain.returncode == 0, retrain.stderr
    value = json.loads(retrain.stdout)["val_accuracy"]
    assert abs(value - states_run["trials"][0].value) <= 0.01


def test_studies_lists_counts_by_state(states_run) -> None:
    proc = nas("studies", "--storage", states_run["storage"])
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("states"))
    assert row.split()[1:6] == ["5", "1", "1", "3", "0"]


def test_dashboard_serves_the_study_on_loopback(states_run) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", "--storage", states_run["storage"],
         "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        detail = dashboard_study(port, server, "states")
        states = sorted(t["state"] for t in detail["trials"])
        assert states == ["Complete", "Fail", "Fail", "Fail", "Pruned"]
        assert detail["objective_names"] == ["val_accuracy"]  # not "Objective 0"
        # bound to loopback only: no other local address answers
        listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
        ours = [line for line in listening.splitlines() if f":{port} " in line]
        assert ours and all("127.0.0.1:" in line for line in ours), ours
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


RESUME_SPACE = """\
name: resume
dataset: digits
epochs: 3
trials: 6
space:
  blocks_per_stage: {type: int, low: 1, high: 2}
  width: 8
  batch_size: 64
  lr: {type: float, low: 0.05, high: 0.2, log: true}
sampler: {name: random, seed: 1}
pruner: {name: none}
"""


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name="resume", storage=storage).get_trials()
    except KeyError:
        return []


def _finished(storage: str) -> dict[int, tuple]:
    return {t.number: (t.state, t.value, t.params) for t in _trials(storage)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED)}


def test_resume_after_kill_9_loses_and_duplicates_nothing(tmp_path) -> None:
    space = tmp_path / "resume.yaml"
    space.write_text(RESUME_SPACE)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    args = ["search", "--space", str(space), "--storage", storage, "--results",
            str(tmp_path / "results"), "--max-concurrent", "2"]
    # Its own process group, so the Ray daemons it starts can be stopped by that id after
    # the driver is killed (they outlive a driver killed with SIGKILL).
    driver = subprocess.Popen([sys.executable, "-m", "nas.cli", *args], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        # The state the kill must find: two trials finished and another one training
        # (waiting for the first part alone took the second for granted).
        deadline = time.monotonic() + 300
        while True:
            assert driver.poll() is None, "the search ended before it could be killed"
            trials = _trials(storage)
            if sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) >= 2 \
                    and any(t.state == TrialState.RUNNING for t in trials):
                break
            assert time.monotonic() < deadline, "the search never got there"
            time.sleep(0.5)
    finally:
        stop_group(driver, signal.SIGKILL)
    before = _finished(storage)
    study = optuna.load_study(study_name="resume", storage=storage)
    assert any(t.state == TrialState.RUNNING for t in study.get_trials()), \
        "kill -9 mid-search should leave running trials behind"

    again = nas(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "left running by a stopped search were marked FAIL" in again.stderr
    trials = optuna.load_study(study_name="resume", storage=storage).get_trials()
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    after = _finished(storage)
    assert len(after) == 6  # the total reaches --trials, no more
    for number, record in before.items():  # nothing finished was lost or changed
        assert after[number] == record
    retried = [t for t in trials if t.state == TrialState.FAIL]
    assert retried and all(t.user_attrs["fail_reason"] == "driver stopped" for t in retried)
    # every abandoned candidate ran again
    rerun = {t.user_attrs.get("retry_of") for t in trials if t.state == TrialState.COMPLETE}
    assert {t.number for t in retried} <= rerun


def test_bad_storage_url_fails_before_ray_starts(tmp_path) -> None:
    proc = nas("search", "--storage", "postgre://x@y/z", "--results", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown database 'postgre'" in lines[0]


@pytest.mark.parametrize(("dataset", "missing"), [
    ("cifar10", "cifar-10-batches-py/data_batch_1"), ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
    ("imagefolder", "has 0 class subfolder(s)")])
def test_missing_dataset_fails_before_any_trial(tmp_path, dataset: str, missing: str) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    proc = nas("search", "--dataset", dataset, "--data-dir", str(empty), "--results",
               str(tmp_path), "--storage", f"sqlite:///{tmp_path / 'nas.db'}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "resnet-digits").exists()  # no Ray run, no trial folder


def test_asking_for_a_gpu_on_a_cpu_machine_is_one_line(tmp_path) -> None:
    if _has_gpu():
        pytest.skip("this machine has a GPU")
    proc = nas("search", "--gpus-per-trial", "1", "--results", str(tmp_path),
               "--storage", f"sqlite:///{tmp_path / 'nas.db'}")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--gpus-per-trial 1" in lines[0] and "0 GPU" in lines[0]


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def test_complete_trials_carry_useful_depth_a_note_and_the_study_a_figure(states_run,
                                                                         digits) -> None:
    from optuna_dashboard._note import get_note_from_system_attrs

    storage = optuna.storages.RDBStorage(states_run["storage"])
    study = optuna.load_study(study_name="states", storage=storage)
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert complete
    system = storage.get_study_system_attrs(study._study_id)
    len_val = len(digits.val_y)  # the split has the same size for every seed
    for t in complete:
        attrs = t.user_attrs
        for key in ("useful_blocks", "total_blocks", "useful_layers", "total_layers",
                    "block_importance", "removable", "lesion_curve"):
            assert key in attrs, key
        assert attrs["total_layers"] == attrs["layers"] == 8
        assert attrs["total_blocks"] == 3 == len(attrs["block_importance"])
        assert attrs["useful_layers"] == 8 - 2 * len(attrs["removable"])
        low, high = attrs["useful_layers_interval"]
        assert low <= attrs["useful_layers"] <= high
        assert len(attrs["block_loss_increase"]) == 3
        # the whole curve: every block that can go (the plain net's shape changers cannot)
        removable = sum(not essential for essential in attrs["essential"])
        assert len(attrs["lesion_curve"]) == len(attrs["loss_curve"]) == removable >= 1
        assert len(attrs["held_out_curve"]) == removable
        assert attrs["selection_images"] + attrs["held_out_images"] == len_val
        assert len(attrs["block_influence"]) == len(attrs["block_cka"]) == 3
        note = get_note_from_system_attrs(system, t._trial_id)["body"]
        assert f"Trial {t.number}: useful depth" in note and "stages.0.0" in note
        assert f"(90% interval {low}-{high})" in note and "loss rise" in note
        assert f"on the other {t.user_attrs['held_out_images']}." in note and "CKA next" in note
    assert any(key.startswith("dashboard:plot_data:resnas-useful-depth") for key in system)
    # pruned and failed trials were never analysed
    assert all("useful_layers" not in t.user_attrs for t in study.get_trials()
               if t.state != TrialState.COMPLETE)


MULTI_SPACE = """\
name: multi
dataset: digits
epochs: 2
trials: 3
objectives: [val_accuracy, params]
space:
  blocks_per_stage: {type: int, low: 1, high: 2}
  width: {type: categorical, choices: [8, 16]}
  shortcut: none
  schedule: constant
  batch_size: 32
  lr: 0.05
sampler: {name: nsga2, seed: 0}
"""


def test_two_objectives_give_a_pareto_front(tmp_path) -> None:
    space = tmp_path / "multi.yaml"
    space.write_text(MULTI_SPACE)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    proc = nas("search", "--space", str(space), "--storage", storage, "--results",
               str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pruner none" in proc.stderr  # two objectives: no pruner unless the file names one
    study = optuna.load_study(study_name="multi", storage=storage)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "params"]
    complete = [t for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(complete) == 3
    for t in complete:
        assert t.values[1] == t.user_attrs["params"]
        assert len(t.user_attrs["val_history"]) == 2
    best = nas("best", "--storage", storage, "--json")
    assert best.returncode == 0, best.stderr
    out = json.loads(best.stdout)
    assert sorted(out["pareto_front"]) == sorted(t.number for t in study.best_trials)
    for t in study.best_trials:  # each trial of the front with its useful depth
        depth = out["pareto_useful_depth"][str(t.number)]
        assert depth["useful_layers"] == t.user_attrs["useful_layers"]
    listing = nas("best", "--storage", storage)
    assert "Pareto front" in listing.stdout and "useful" in listing.stdout
    row = next(line.split() for line in listing.stdout.splitlines()
               if line.split() and line.split()[0] == str(study.best_trials[0].number))
    t = study.best_trials[0]
    assert f"{t.user_attrs['useful_layers']}/{t.user_attrs['total_layers']}" in row


def test_results_may_be_a_storage_uri(tmp_path) -> None:
    """--results as a URI: Ray Tune's storage and the trial checkpoints go through it."""
    space = tmp_path / "uri.yaml"
    space.write_text(STATES_SPACE.replace("trials: 5", "trials: 1").replace("epochs: 3",
                                                                            "epochs: 2"))
    target = tmp_path / "remote"
    uri = f"file://{target}"
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    # a study made before (by Optuna itself: its objective has no name), which the search resumes
    study = optuna.create_study(study_name="states", storage=storage, direction="maximize")
    assert study.metric_names is None
    study.enqueue_trial({"lr": 0.05})
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "search", "--space", str(space),
                           "--storage", storage, "--results", uri],
                          cwd=tmp_path, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = optuna.load_study(study_name="states", storage=storage)
    assert resumed.metric_names == ["val_accuracy"]  # named when the search resumed it
    (trial,) = resumed.get_trials()
    assert trial.state == TrialState.COMPLETE
    assert trial.user_attrs["checkpoint"] == f"{uri}/states/checkpoints/trial-0.pt"
    assert (target / "states" / "checkpoints" / "trial-0.pt").is_file()
    assert list((target / "states" / "tune").glob("run-*/*/result.json"))
    assert (tmp_path / "results" / "states" / "report.html").is_file()  # the report stays local


def test_cluster_searches_warn_about_paths_of_one_node(tmp_path) -> None:
    import io

    from nas.errors import flag_names
    from nas.space import load_space
    from nas.tuning.driver import warn_about_local_paths
    from nas.tuning.options import SearchOptions
    from nas.tuning.progress import LineProgress

    space = load_space(ROOT / "search_spaces" / "resnet-digits.yaml")
    out = io.StringIO()
    with flag_names():  # as `nas search` says it
        warn_about_local_paths(SearchOptions(
            space=space, study_name="s", results_dir="results",
            storage="sqlite:///results/nas.db", trials=1, progress=LineProgress(out=out)))
    assert "--results results is a relative folder" in out.getvalue()
    assert "--storage sqlite:///results/nas.db is a relative SQLite file" in out.getvalue()
    python = io.StringIO()  # as nas.search() says it: the parameter's name
    warn_about_local_paths(SearchOptions(space=space, study_name="s", results_dir="results",
                                          storage="sqlite:///results/nas.db", trials=1,
                                          progress=LineProgress(out=python)))
    assert "warning: results results is a relative folder" in python.getvalue()
    quiet = io.StringIO()
    for results, storage in ((tmp_path, f"sqlite:///{tmp_path}/nas.db"),
                             ("s3://b/n", "postgresql://u:p@h/db")):
        warn_about_local_paths(SearchOptions(space=space, study_name="s", results_dir=results,
                                              storage=storage, trials=1,
                                              progress=LineProgress(out=quiet)))
    assert quiet.getvalue() == ""


REPRODUCIBLE_SPACE = """\
name: again
dataset: digits
epochs: 2
trials: 5
space:
  blocks_per_stage: 1
  width: {type: categorical, choices: [4, 8]}
  schedule: constant
  batch_size: 32
  lr: {type: float, low: 1.0e-3, high: 0.3, log: true}
sampler: {name: tpe, n_startup_trials: 2, shortest_first: true}
pruner: {name: median, n_startup_trials: 1, n_warmup_steps: 0}
usefulness: {enabled: false}
"""


def test_one_trial_at_a_time_with_a_seed_gives_the_same_search_every_run(tmp_path) -> None:
    """--max-concurrent 1 and --seed: the same candidates, values, prunings and best network
    on every run (with trials in parallel, which ends first changes what TPE sees next)."""
    space = tmp_path / "again.yaml"
    space.write_text(REPRODUCIBLE_SPACE)
    runs = []
    for run in ("first", "second"):
        storage = f"sqlite:///{tmp_path / run}.db"
        proc = nas("search", "--space", str(space), "--storage", storage, "--results",
                   str(tmp_path / run), "--max-concurrent", "1", "--seed", "3")
        assert proc.returncode == 0, proc.stderr[-3000:]
        trials = optuna.load_study(study_name="again", storage=storage).get_trials()
        runs.append([(t.state, t.params, t.value, t.intermediate_values) for t in trials])
        # TPE's two random start-up trials, queued cheapest (narrowest) first
        assert [t.user_attrs.get("startup") for t in trials[:3]] == ["shortest-first"] * 2 + [None]
        assert trials[0].params["width"] <= trials[1].params["width"]
    assert len(runs[0]) == 5
    assert len({str(params) for _, params, _, _ in runs[0]}) == 5  # TPE did search
    assert {state for state, *_ in runs[0]} == {TrialState.COMPLETE, TrialState.PRUNED}
    assert runs[0] == runs[1]
