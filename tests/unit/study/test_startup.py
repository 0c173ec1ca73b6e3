"""The shortest-first start-up design: which trials, in which order, queued when."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from nas.candidate import Candidate
from nas.models.resnet import build_model
from nas.space import SpaceError, parse_space
from nas.study import _optuna
from nas.study.algorithms import make_sampler
from nas.study.startup import (
    NOMINAL_INPUT,
    enqueue_startup,
    forward_macs,
    shortest_first_design,
    startup_size,
)

SPACE = """\
name: startup
epochs: 2
space:
  blocks_per_stage: {type: int, low: 1, high: 4}
  block: {type: categorical, choices: [basic, bottleneck, preact, highway]}
  shortcut: {type: categorical, choices: [identity, projection, none]}
  width: {type: categorical, choices: [4, 8, 16]}
  lr: {type: float, low: 0.01, high: 0.5, log: true}
"""


def space_with(sampler: str = "{name: tpe, seed: 3}", pruner: str = "{name: none}"):
    text = SPACE + f"sampler: {sampler}\npruner: {pruner}\n"
    return parse_space(yaml.safe_load(text), "startup.yaml", text)


@pytest.mark.parametrize("block", ["basic", "bottleneck", "preact", "highway"])
def test_macs_are_half_of_torchs_flop_count(block: str) -> None:
    """The hook-based count agrees with torch's own FLOP counter (2 FLOPs a MAC) on
    every block type, projections and the highway gate included."""
    candidate = Candidate(block=block, shortcut="projection", blocks_per_stage=2, width=8)
    channels, size, classes = NOMINAL_INPUT
    model = build_model(candidate, channels, classes, size).eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.zeros(1, channels, size, size))
    assert 2 * forward_macs(candidate) == counter.get_total_flops()


def test_macs_grow_with_depth_and_width() -> None:
    small = Candidate(blocks_per_stage=1, width=8)
    assert forward_macs(dataclasses.replace(small, blocks_per_stage=3)) > forward_macs(small)
    assert forward_macs(dataclasses.replace(small, width=16)) > 3 * forward_macs(small)


def test_the_design_is_the_random_samplers_first_draws_cheapest_first() -> None:
    """Same candidates as a random search with the sampler's seed: only the order changes."""
    space = space_with()
    design = shortest_first_design(space, 8)
    draft = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    drawn = []
    for _ in range(8):
        trial = draft.ask()
        space.suggest(trial)
        drawn.append(trial.params)
    assert sorted(map(str, design)) == sorted(map(str, drawn))
    costs = [forward_macs(space.candidate(params)) for params in design]
    assert costs == sorted(costs)
    assert design != drawn  # eight random draws were not already in cost order


@pytest.mark.parametrize(
    ("sampler", "pruner", "budget", "size"),
    [
        ("{name: tpe}", "{name: none}", 16, 10),  # Optuna's default start-up count
        ("{name: tpe}", "{name: none}", 4, 4),  # never more than the budget
        ("{name: tpe, n_startup_trials: 3}", "{name: none}", 16, 3),
        ("{name: gp, n_startup_trials: 5}", "{name: none}", 16, 5),
        ("{name: random}", "{name: none}", 7, 7),  # every trial is a random one
        ("{name: tpe, shortest_first: false}", "{name: none}", 16, 0),
        ("{name: nsga2}", "{name: none}", 16, 0),
        # a pruner that compares trials at an epoch: the sampler's order, unless asked
        ("{name: tpe}", "{name: hyperband}", 16, 0),
        ("{name: tpe, shortest_first: true}", "{name: median}", 16, 10),
        ("{name: tpe}", "{name: threshold, lower: 0.2}", 16, 10),  # judges each on its own
    ],
)
def test_startup_size(sampler: str, pruner: str, budget: int, size: int) -> None:
    assert startup_size(space_with(sampler, pruner), budget) == size


def test_two_objectives_get_no_design() -> None:
    space = dataclasses.replace(space_with(), objectives=("val_accuracy", "params"))
    assert startup_size(space, 16) == 0


def test_shortest_first_must_be_a_boolean() -> None:
    with pytest.raises(SpaceError, match="shortest_first"):
        space_with("{name: tpe, shortest_first: sometimes}")


def test_the_option_is_not_passed_to_optuna() -> None:
    assert isinstance(make_sampler(space_with("{name: tpe, shortest_first: false}")),
                      optuna.samplers.TPESampler)


def test_a_fresh_study_queues_the_design_once_and_pops_it_in_order(tmp_path) -> None:
    space = space_with("{name: tpe, seed: 3, n_startup_trials: 4}")
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    assert enqueue_startup(study, space, budget=16) == 4
    assert enqueue_startup(study, space, budget=16) == 0  # not twice
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["startup"] for t in waiting] == ["shortest-first"] * 4
    asked = [_optuna.ask_claimed(study, {"driver": "test"}) for _ in range(4)]
    params = [space.suggest(trial) for trial in asked]
    assert [forward_macs(c) for c in params] == sorted(forward_macs(c) for c in params)
    assert [c.to_dict() for c in params] == [
        space.candidate(p).to_dict() for p in shortest_first_design(space, 4)]


def test_a_study_with_trials_keeps_its_own_queue(tmp_path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'nas.db'}")
    study.enqueue_trial({"lr": 0.1})
    assert enqueue_startup(study, space_with(), budget=16) == 0
    assert len(study.trials) == 1


def _run(study: optuna.Study, space, trials: int, concurrent: int = 2) -> None:
    """Ask and tell as a search does: ``concurrent`` trials running at a time."""
    running: list[optuna.Trial] = []
    for index in range(trials):
        trial = study.ask()
        space.suggest(trial)
        running.append(trial)
        if len(running) == concurrent:
            study.tell(running.pop(0), (index * 0.37) % 1.0)
    for trial in running:
        study.tell(trial, 0.5)


def _drawn(study: optuna.Study) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in study.trials]


def _sampler_as_the_driver_sets_it(study: optuna.Study, space) -> None:
    study.sampler = make_sampler(space, 2, history=len(study.get_trials(deepcopy=False)))


def test_tpe_after_the_design_draws_no_candidate_again() -> None:
    """The default search: 10 design trials then TPE, 2 at a time. TPE's own random phase
    (trials asked before 10 have finished) seeded like the design drew one of its
    candidates again; seeded past the study's trials it draws new ones."""
    space = space_with()
    study = optuna.create_study(sampler=make_sampler(space, 2), direction="maximize")
    assert enqueue_startup(study, space, 16) == 10
    _sampler_as_the_driver_sets_it(study, space)
    _run(study, space, 16)
    assert len(set(_drawn(study))) == 16


def test_a_resumed_search_draws_new_candidates_and_a_fresh_one_the_same() -> None:
    space = space_with("{name: random, seed: 3}")
    first = optuna.create_study(sampler=make_sampler(space))
    _run(first, space, 4)
    _sampler_as_the_driver_sets_it(first, space)  # the same study, resumed
    _run(first, space, 4)
    assert len(set(_drawn(first))) == 8
    again = optuna.create_study(sampler=make_sampler(space))  # the same search from scratch
    _run(again, space, 4)
    assert _drawn(again) == _drawn(first)[:4]


def test_a_second_driver_starting_at_the_same_moment_queues_nothing_twice(
        tmp_path, monkeypatch) -> None:
    space = space_with("{name: tpe, seed: 3, n_startup_trials: 4}")
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'nas.db'}",
                                direction="maximize")
    assert enqueue_startup(study, space, budget=16) == 4
    _optuna.ask_claimed(study, {"driver": "first"})  # one popped and running already
    # the other driver counted the study empty a moment before the first one queued
    monkeypatch.setattr(_optuna, "count_trials", lambda storage, study_id: 0)
    enqueue_startup(study, space, budget=16)
    assert len(study.get_trials()) == 4
