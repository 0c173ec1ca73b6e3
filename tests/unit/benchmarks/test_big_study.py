"""big_study.py's bulk copy: a study read back through Optuna equals its source, repeated."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from benchmarks.big_study import build

X = optuna.distributions.FloatDistribution(0.01, 0.1, log=True)
BLOCK = optuna.distributions.CategoricalDistribution(["basic", "bottleneck"])


def test_a_built_study_holds_the_source_trials_round_robin(tmp_path) -> None:
    source = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'src.db'}",
                                 direction="maximize")
    source.set_user_attr("dataset", "digits")
    for index in range(3):
        trial = source.ask({"lr": X, "block": BLOCK})
        trial.report(0.5 + index / 10, 1)
        trial.set_user_attr("useful_layers", index + 4)
        trial.set_user_attr("candidate", {"block": trial.params["block"]})
        if index == 2:
            source.tell(trial, state=TrialState.PRUNED)
        else:
            source.tell(trial, 0.6 + index / 10)
    url = build(source, 7, f"sqlite:///{tmp_path / 'big.db'}")
    copy = optuna.load_study(study_name="s", storage=url)
    assert copy.user_attrs == {"dataset": "digits"}
    trials, template = copy.get_trials(), source.get_trials()
    assert [t.number for t in trials] == list(range(7))
    for trial in trials:
        original = template[trial.number % 3]
        assert (trial.state, trial.values, trial.params, trial.intermediate_values,
                trial.user_attrs, trial.distributions) == (
            original.state, original.values, original.params, original.intermediate_values,
            original.user_attrs, original.distributions)
    assert copy.best_value == 0.7
