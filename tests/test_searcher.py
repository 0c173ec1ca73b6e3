"""The Ray searcher's study bookkeeping, driven directly (no trials run)."""

from __future__ import annotations

import io
from pathlib import Path

import optuna
import yaml
from optuna.trial import TrialState

from nas.search import SearchOptions, _ray_classes
from nas.space import parse_space

SPACE = """\
epochs: 2
space:
  width: {type: categorical, choices: [8, 16]}
pruner: {name: median, n_startup_trials: 0, n_warmup_steps: 0}
"""


def searcher_for(study: optuna.Study, tmp_path: Path):
    space = parse_space(yaml.safe_load(SPACE), "s.yaml", SPACE)
    opts = SearchOptions(space=space, study_name=study.study_name, storage="mem",
                         results_dir=tmp_path, trials=5, out=io.StringIO())
    searcher_class = _ray_classes()[0]
    return searcher_class(study, space, opts, budget=5, threads=1, device="cpu")


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
