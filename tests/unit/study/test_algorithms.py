"""Space files' sampler and pruner sections become the right Optuna objects."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from nas.space import SpaceError, parse_space
from nas.study.algorithms import grid_of, grid_size, make_pruner, make_sampler


def space_from(text: str):
    import yaml

    return parse_space(yaml.safe_load(text), "t.yaml", text)


BASE = """\
space:
  block: {type: categorical, choices: [basic, preact]}
  blocks_per_stage: {type: int, low: 1, high: 3}
  lr: {type: float, low: 0.01, high: 0.1, step: 0.03}
"""


@pytest.mark.parametrize(
    ("spec", "cls"),
    [
        ({"name": "none"}, optuna.pruners.NopPruner),
        ({"name": "median", "n_warmup_steps": 2}, optuna.pruners.MedianPruner),
        ({"name": "percentile", "percentile": 25.0}, optuna.pruners.PercentilePruner),
        ({"name": "successive-halving", "min_resource": 1}, optuna.pruners.SuccessiveHalvingPruner),
        ({"name": "hyperband", "min_resource": 1, "reduction_factor": 3},
         optuna.pruners.HyperbandPruner),
        ({"name": "threshold", "lower": 0.2}, optuna.pruners.ThresholdPruner),
        ({"name": "patient", "patience": 2, "wrapped": {"name": "median"}},
         optuna.pruners.PatientPruner),
    ],
)
def test_every_pruner_name_maps_to_optuna(spec: dict, cls: type) -> None:
    assert isinstance(make_pruner(spec, epochs=12), cls)


def test_hyperband_budget_is_the_epoch_count() -> None:
    pruner = make_pruner({"name": "hyperband", "min_resource": 1}, epochs=12)
    assert pruner._max_resource == 12


def test_threshold_pruner_prunes_a_weak_trial() -> None:
    study = optuna.create_study(direction="maximize",
                                pruner=make_pruner({"name": "threshold", "lower": 0.3}, 5))
    weak, strong = study.ask(), study.ask()
    weak.report(0.1, 1)
    strong.report(0.8, 1)
    assert weak.should_prune() and not strong.should_prune()


@pytest.mark.parametrize(("name", "cls"), [
    ("tpe", optuna.samplers.TPESampler), ("random", optuna.samplers.RandomSampler),
    ("grid", optuna.samplers.GridSampler), ("gp", optuna.samplers.GPSampler),
    ("nsga2", optuna.samplers.NSGAIISampler)])
def test_every_sampler_name_maps_to_optuna(name: str, cls: type) -> None:
    space = dataclasses.replace(space_from(BASE), sampler={"name": name, "seed": 3})
    assert isinstance(make_sampler(space), cls)


def test_grid_lists_every_value_of_a_discrete_space() -> None:
    grid = grid_of(space_from(BASE))
    assert grid == {"block": ["basic", "preact"], "blocks_per_stage": [1, 2, 3],
                    "lr": pytest.approx([0.01, 0.04, 0.07, 0.1])}
    assert grid_size(space_from(BASE)) == 24


def test_grid_refuses_a_continuous_range() -> None:
    space = space_from("space:\n  lr: {type: float, low: 0.01, high: 0.1}\n")
    with pytest.raises(SpaceError, match="space.lr: the grid sampler needs"):
        grid_of(space)


def test_grid_covers_every_point_with_ask_and_tell() -> None:
    """nas search tells trials outside study.optimize: finishing the grid must not raise."""
    space = dataclasses.replace(
        space_from("space:\n  block: {type: categorical, choices: [basic, preact]}\n"
                   "  blocks_per_stage: {type: int, low: 1, high: 2}\n"),
        sampler={"name": "grid", "seed": 0})
    study = optuna.create_study(sampler=make_sampler(space), direction="maximize")
    seen = set()
    for _ in range(grid_size(space)):
        trial = study.ask()
        seen.add((trial.suggest_categorical("block", ["basic", "preact"]),
                  trial.suggest_int("blocks_per_stage", 1, 2)))
        study.tell(trial, 0.5)
    assert seen == {("basic", 1), ("basic", 2), ("preact", 1), ("preact", 2)}
