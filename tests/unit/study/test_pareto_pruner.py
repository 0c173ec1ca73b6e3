"""The pareto pruner: MO-ASHA's rule on (accuracy, cost), its resume, and the policy that
tells PRUNED trials with their values (Optuna's tell cannot)."""

from __future__ import annotations

import itertools
import random

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from nas.space import parse_space
from nas.study.pareto_pruner import (
    ParetoPruner,
    nondominated_fronts,
    place_of_last,
    priority_order,
)
from nas.study.policy import SearchPolicy, create_search_study


def dominates(a, b) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and a != b


def test_fronts_are_the_successive_pareto_fronts() -> None:
    rng = random.Random(3)
    points = [(round(rng.random(), 1), round(rng.random(), 1)) for _ in range(40)]
    fronts = nondominated_fronts(points)
    assert sorted(itertools.chain(*fronts)) == list(range(40))
    for k, front in enumerate(fronts):
        later = set(itertools.chain(*fronts[k:]))
        for i in front:  # nothing from this front on dominates a point of the front
            assert not any(dominates(points[j], points[i]) for j in later)
        if k:  # and each point of a later front is dominated by one of the front before
            assert all(any(dominates(points[j], points[i]) for j in fronts[k - 1])
                       for i in front)


def test_the_order_starts_at_the_most_accurate_and_spreads_along_the_front() -> None:
    # one front, from accurate and dear to cheap and poor, plus one dominated point
    points = [(0.9, 100.0), (0.89, 90.0), (0.5, 1.0), (0.7, 10.0), (0.6, 50.0)]
    order = priority_order(points)
    assert order[0] == 0
    assert order[1] == 2  # the far end of the front before its near neighbour
    assert order[-1] == 4  # dominated by (0.7, 10): last
    assert sorted(order) == list(range(5))


def test_a_trial_goes_on_only_in_the_top_share_of_its_rung() -> None:
    pruner = ParetoPruner(epochs=9, min_resource=1, reduction_factor=3)
    assert sorted(pruner.rungs) == [1, 3]
    assert not pruner.record(0, 1, 0.50, 10.0)  # first at a rung: goes on
    assert not pruner.record(1, 2, 0.10, 10.0)  # not a rung
    assert pruner.record(1, 1, 0.40, 20.0)  # dominated by trial 0: place 1 of 2
    assert not pruner.record(2, 1, 0.30, 1.0)  # cheapest: on the front, goes on
    assert not pruner.record(3, 1, 0.90, 50.0)  # most accurate: first of the order
    assert not pruner.record(3, 1, 0.10, 50.0)  # once per rung
    # a trial far behind on both: last of five
    assert pruner.record(4, 1, 0.20, 40.0)
    assert pruner.rungs[1][4] == (0.20, 40.0)


def test_a_resumed_pruner_decides_as_one_that_never_stopped() -> None:
    rng = random.Random(0)
    trials = []
    whole = ParetoPruner(epochs=9, min_resource=1, reduction_factor=3)
    stops = []
    for number in range(30):
        cost = rng.choice([1.0, 2.0, 4.0, 8.0])
        history, stopped = [], False
        for epoch in range(1, 10):
            history.append(min(1.0, cost / 10 + epoch * rng.random() / 10))
            if whole.record(number, epoch, history[-1], cost):
                stopped = True
                break
        stops.append(stopped)
        trials.append(optuna.trial.create_trial(
            state=TrialState.PRUNED if stopped else TrialState.COMPLETE,
            values=[history[-1], cost], user_attrs={"val_history": history}))
    assert any(stops) and not all(stops)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trials(trials)
    resumed = ParetoPruner(epochs=9, min_resource=1, reduction_factor=3)
    resumed.load(study.trials)
    assert resumed.rungs == whole.rungs


SPACE = """\
epochs: 3
objectives: [val_accuracy, OBJECTIVE]
space:
  blocks_per_stage: {type: int, low: 1, high: 3}
  block: {type: categorical, choices: [basic, preact]}
sampler: {name: SAMPLER, seed: 7}
pruner: {name: pareto, min_resource: 1, reduction_factor: 2}
"""


@pytest.mark.parametrize(("sampler", "objective"), [("tpe", "macs"), ("nsga2", "params")])
def test_the_policy_records_costs_and_tells_pruned_trials_their_values(
        tmp_path, sampler: str, objective: str) -> None:
    text = SPACE.replace("SAMPLER", sampler).replace("OBJECTIVE", objective)
    space = parse_space(yaml.safe_load(text), "s.yaml", text)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = create_search_study(space, storage, "s", budget=10, concurrent=1)
    policy = SearchPolicy(study, space)
    pruned = 0
    for _ in range(10):
        trial, candidate = policy.ask()
        cost = trial.user_attrs[objective]
        assert trial.user_attrs["macs"] > 0 and trial.user_attrs["params"] > 0
        history = []
        for epoch in (1, 2, 3):
            # made up: small networks learn fast early, big ones end higher
            history.append(min(1.0, 0.2 * epoch * (1 + candidate.blocks_per_stage) / 2))
            stop = policy.after_epoch(trial, epoch, history[-1])
            if stop or epoch == 3:
                trial.set_user_attr("val_history", history)  # as the searcher does
                break
        if stop:
            policy.prune(trial)
            pruned += 1
        else:
            policy.complete(trial, (history[-1], cost))
    assert pruned
    study = optuna.load_study(study_name="s", storage=storage)
    for t in study.trials:
        assert t.values is not None and len(t.values) == 2, t
        assert t.values[1] == t.user_attrs[objective]
        if t.state == TrialState.PRUNED:
            assert t.values[0] == t.user_attrs["val_history"][-1]
    # a new policy on the stored study ranks against what the first one recorded
    again = SearchPolicy(create_search_study(space, storage, "s", budget=10, concurrent=1),
                         space)
    assert again.pareto.rungs[1] == policy.pareto.rungs[1]


def test_a_latency_cost_arrives_with_the_first_epoch(tmp_path) -> None:
    """The latency objective: the trial times its network as it starts and reports it with
    each epoch (nas.tuning.trial); the policy records it once and ranks on it."""
    from nas.models.resnet import build_model
    from nas.study.costs import input_shape
    from nas.training.device import resolve_device
    from nas.training.speed import latency

    text = SPACE.replace("SAMPLER", "tpe").replace("OBJECTIVE", "latency")
    space = parse_space(yaml.safe_load(text), "s.yaml", text)
    study = create_search_study(space, optuna.storages.InMemoryStorage(), "s", budget=4,
                                concurrent=1)
    policy = SearchPolicy(study, space)
    trial, candidate = policy.ask()
    assert "macs" not in trial.user_attrs  # nothing to compute before training for latency
    channels, size, classes = input_shape(candidate)
    timed = latency(build_model(candidate, channels, classes, size), channels, size, 16,
                    resolve_device("cpu"), 1)
    assert timed["latency_batch_ms"] > 0 and 0 < timed["latency_ms"] < 1000
    assert not policy.after_epoch(trial, 1, 0.5, {"val_accuracy": 0.5, **timed})
    assert trial.user_attrs["latency_ms"] == timed["latency_ms"]
    assert policy.pareto.rungs[1] == {trial.number: (0.5, timed["latency_ms"])}
    trial.set_user_attr("val_history", [0.5])
    policy.prune(trial)
    assert study.trials[0].values == [0.5, timed["latency_ms"]]


def _fronts_by_definition(points) -> list[set[int]]:
    left, fronts = set(range(len(points))), []
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        fronts.append(front)
        left -= front
    return fronts


@pytest.mark.parametrize("seed", range(20))
def test_the_fast_sort_gives_the_fronts_of_the_definition(seed: int) -> None:
    rng = random.Random(seed)
    # coarse values: ties in one objective and repeated points, where shortcuts go wrong
    points = [(rng.randint(0, 6) / 6, float(rng.randint(1, 6))) for _ in range(60)]
    assert [set(f) for f in nondominated_fronts(points)] == _fronts_by_definition(points)
    order = priority_order(points)
    assert all(place_of_last(points[:k]) == priority_order(points[:k]).index(k - 1)
               for k in range(1, 61))
    assert sorted(order) == list(range(60))
