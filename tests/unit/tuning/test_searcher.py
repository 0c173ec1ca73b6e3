"""The Ray searcher's study bookkeeping, driven directly (no trials run)."""

from __future__ import annotations

import signal
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState
from ray import cloudpickle
from ray.tune.search import Searcher

from nas.space import parse_space
from nas.study.config import StorageError
from nas.study.policy import SearchPolicy
from nas.study.storage import open_storage
from nas.tuning.options import SearchOptions
from nas.tuning.searcher import StudySearcher

SPACE = """\
epochs: 2
space:
  width: {type: categorical, choices: [8, 16]}
pruner: {name: median, n_startup_trials: 0, n_warmup_steps: 0}
"""


def searcher_for(study: optuna.Study, tmp_path: Path):
    space = parse_space(yaml.safe_load(SPACE), "s.yaml", SPACE)
    opts = SearchOptions(space=space, study_name=study.study_name, storage="mem",
                         results_dir=tmp_path, trials=5)
    return StudySearcher(SearchPolicy(study, space), opts, budget=5, threads=1, device="cpu")


def test_a_trial_that_finished_training_is_complete_even_if_its_last_epoch_is_weak(
        tmp_path) -> None:
    # the threshold pruner judges the latest value: fine at epoch 1, prunable at epoch 2
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=0.7))
    searcher = searcher_for(study, tmp_path)
    searcher.suggest("weak")
    assert searcher.observe("weak", {"epoch": 1, "val_accuracy": 0.96}) is False
    assert not study.pruner.prune(study, study.get_trials()[-1])
    final = {"epoch": 2, "val_accuracy": 0.5, "checkpoint": "trial.pt", "layers": 8}
    assert searcher.observe("weak", final) is False  # training is over: nothing to prune
    # ... although the pruner, asked now, would have pruned it
    assert study.pruner.prune(study, study.get_trials()[-1])
    searcher.on_trial_complete("weak", final)
    weak = study.get_trials()[-1]
    assert weak.state == TrialState.COMPLETE and weak.value == 0.5
    assert sorted(weak.intermediate_values) == [1, 2]


def test_random_deletions_are_asked_only_of_trials_that_may_be_drawn(tmp_path) -> None:
    """The report draws the random deletions of the best residual (and plain) trial that
    recorded them: a trial is asked for them only if it may beat that one."""
    study = optuna.create_study(direction="maximize")
    searcher = searcher_for(study, tmp_path)
    depth = {"useful_layers": 6, "total_layers": 8, "block_importance": [0.1]}
    config = searcher.suggest("first")
    assert config["deletions_from"] is None  # nothing recorded yet: every trial records
    searcher.on_trial_complete("first", {"epoch": 2, "val_accuracy": 0.8, **depth,
                                         "random_deletions": [[1, [0.7]]]})
    assert searcher.suggest("second")["deletions_from"] == 0.8
    searcher.on_trial_complete("second", {"epoch": 2, "val_accuracy": 0.7, **depth})
    assert searcher.suggest("third")["deletions_from"] == 0.8  # a trial without them
    searcher.on_trial_complete("third", {"epoch": 2, "val_accuracy": 0.9, **depth,
                                         "random_deletions": [[1, [0.8]]]})
    assert searcher.suggest("fourth")["deletions_from"] == 0.9
    # A search resuming the study reads the bar from what the study holds.
    assert searcher_for(study, tmp_path).suggest("fifth")["deletions_from"] == 0.9


def test_a_weak_trial_mid_training_is_pruned(tmp_path) -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=0,
                                                                   n_warmup_steps=0))
    t = study.ask()
    t.report(0.9, 1)
    study.tell(t, 0.9)
    searcher = searcher_for(study, tmp_path)
    searcher.suggest("weak")
    assert searcher.observe("weak", {"epoch": 1, "val_accuracy": 0.1}) is True
    searcher.on_trial_complete("weak", {"epoch": 1, "val_accuracy": 0.1})
    assert study.get_trials()[-1].state == TrialState.PRUNED


class InterruptingSampler(optuna.samplers.RandomSampler):
    """Sends this process a Ctrl-C while the study is asking for a trial (the trial exists
    in the storage, the searcher does not know it yet), as a user's Ctrl-C may land."""

    def before_trial(self, study, trial) -> None:
        super().before_trial(study, trial)
        signal.raise_signal(signal.SIGINT)


def test_a_ctrl_c_while_a_trial_is_asked_for_acts_once_it_is_recorded(tmp_path) -> None:
    study = optuna.create_study(direction="maximize", sampler=InterruptingSampler(seed=0))
    searcher = searcher_for(study, tmp_path)
    # The handler `nas search` installs (cli/search.py), whatever this test process had
    # (a pytest-xdist worker's may differ).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            searcher.suggest("t")
    finally:
        signal.signal(signal.SIGINT, previous)
    # suggest finished before the interrupt acted: the trial is known, tagged and live ...
    [trial] = study.get_trials()
    assert trial.user_attrs["driver"] == searcher.driver and "t" in searcher.live
    # ... so stopping the search fails it and queues its candidate, leaving nothing RUNNING
    assert searcher.abandon_running() == 1
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.WAITING]


@pytest.mark.parametrize("queued", [False, True], ids=["new", "queued"])
def test_a_storage_lost_right_after_asking_leaves_the_trial_tagged(tmp_path, monkeypatch,
                                                                   queued: bool) -> None:
    """The driver's tag is stored with the trial, not in a write after it: a storage
    that goes away at once leaves a trial a later search can tell abandoned."""
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    if queued:
        study.enqueue_trial({"width": 8}, user_attrs={"retry_of": 0})
    searcher = searcher_for(study, tmp_path)

    def gone(*args, **kwargs):
        raise StorageError("unreachable")

    for write in ("set_trial_user_attr", "set_trial_param", "record_heartbeat"):
        monkeypatch.setattr(storage, write, gone)
    assert searcher.suggest("t") is Searcher.FINISHED  # the search stops on the lost storage
    monkeypatch.undo()
    [trial] = study.get_trials()
    if queued:  # claimed before it was popped: the claim failed, so it still waits
        assert trial.state == TrialState.WAITING and "driver" not in trial.user_attrs
    else:
        assert trial.state == TrialState.RUNNING and trial.user_attrs["driver"] == searcher.driver


@pytest.mark.parametrize("sampler", [optuna.samplers.NSGAIISampler(seed=0),
                                     optuna.samplers.TPESampler(seed=0)],
                         ids=["nsga2", "tpe"])
def test_the_searcher_pickles_for_tune_without_its_study_or_password(tmp_path,
                                                                     sampler) -> None:
    # Tune pickles the searcher into tuner.pkl before the first trial; Optuna 5's GA
    # samplers hold a thread lock, which failed every NSGA-II search there.
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    searcher = searcher_for(study, tmp_path)
    searcher.opts = replace(searcher.opts, storage="postgresql://nas:s3cret@db/nas")
    searcher.suggest("mid-training")
    pickled = cloudpickle.dumps(searcher)
    assert b"s3cret" not in pickled
    copy = cloudpickle.loads(pickled)
    assert copy.study is None and copy.live == {}
    assert copy.budget == 4 and copy.driver == searcher.driver
    assert searcher.study is study and "mid-training" in searcher.live  # the original keeps them


def test_a_queued_trial_claimed_by_two_drivers_names_the_one_that_popped_it(
        tmp_path, monkeypatch) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    study.enqueue_trial({"width": 8})
    searcher = searcher_for(study, tmp_path)
    pop = storage.set_trial_state_values

    def other_driver_claims_first(trial_id, state, values=None):
        storage.set_trial_user_attr(trial_id, "driver", "other-host:1:2")  # and loses the pop
        return pop(trial_id, state, values)

    monkeypatch.setattr(storage, "set_trial_state_values", other_driver_claims_first)
    searcher.suggest("t")
    monkeypatch.undo()
    [trial] = study.get_trials()
    assert trial.state == TrialState.RUNNING and trial.user_attrs["driver"] == searcher.driver
