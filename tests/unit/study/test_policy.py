"""SearchPolicy: the decisions ``nas search`` makes, the same over any storage, so the
replay benchmark (an in-memory study) measures the search users run (SQLite)."""

from __future__ import annotations

import optuna
import yaml
from optuna.trial import TrialState

from nas.space import parse_space
from nas.study.policy import SearchPolicy, create_search_study

SPACE = """\
epochs: 3
space:
  blocks_per_stage: {type: int, low: 1, high: 3}
  block: {type: categorical, choices: [basic, preact]}
  lr: {type: float, low: 0.01, high: 0.5, log: true}
sampler: {name: tpe, seed: 7, n_startup_trials: 3}
pruner: {name: threshold, lower: 0.5}
"""


def policy_on(storage, space) -> SearchPolicy:
    study = create_search_study(space, storage, "s", budget=12, concurrent=2)
    policy = SearchPolicy(study, space)
    assert policy.start(12) == 3  # the start-up design, cheapest first
    return policy


def score(params: dict) -> float:
    """A made-up accuracy the sampler can learn: deeper and near lr 0.1 is better."""
    return 0.4 + 0.1 * params["blocks_per_stage"] - abs(params["lr"] - 0.1)


def test_the_same_decisions_over_sqlite_and_in_memory(tmp_path) -> None:
    space = parse_space(yaml.safe_load(SPACE), "s.yaml", SPACE)
    policies = [policy_on(f"sqlite:///{tmp_path / 'nas.db'}", space),
                policy_on(optuna.storages.InMemoryStorage(), space)]
    outcomes = []
    for _ in range(12):
        asked = [policy.ask({"driver": "test"}) for policy in policies]
        (trial, candidate), (twin, twin_candidate) = asked
        assert candidate == twin_candidate and trial.params == twin.params
        assert trial.user_attrs["candidate"] == candidate.to_dict()
        value = score(trial.params)
        stops = [policy.after_epoch(t, 1, value)
                 for policy, (t, _) in zip(policies, asked, strict=True)]
        assert stops[0] == stops[1] == (value < 0.5)
        for policy, (t, _) in zip(policies, asked, strict=True):
            if stops[0]:
                policy.prune(t)
            else:
                policy.complete(t, [value])
        outcomes.append(stops[0])
    assert any(outcomes) and not all(outcomes)  # the pruner acted, and let some through
    for policy in policies:
        states = [t.state for t in policy.study.trials]
        assert states.count(TrialState.PRUNED) == sum(outcomes)
        assert states.count(TrialState.COMPLETE) == 12 - sum(outcomes)
        assert policy.study.trials[0].user_attrs["startup"] == "shortest-first"


def test_a_failed_candidate_is_told_fail() -> None:
    space = parse_space(yaml.safe_load(SPACE), "s.yaml", SPACE)
    policy = policy_on(optuna.storages.InMemoryStorage(), space)
    trial, _ = policy.ask()
    policy.fail(trial)
    assert policy.study.trials[trial.number].state == TrialState.FAIL
