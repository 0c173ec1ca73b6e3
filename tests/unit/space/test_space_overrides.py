"""SearchSpace.with_overrides: the command line's --dataset/--epochs/--seed/--sampler/--pruner
rules, kept with the space so every command applies them the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.errors import NasError, flag_names
from nas.space import load_space

SPACE = Path(__file__).resolve().parents[3] / "search_spaces" / "resnet-digits.yaml"


@pytest.fixture(scope="module")
def space():
    return load_space(SPACE)  # sampler {tpe, seed 0}, no pruner, 8 epochs


def test_nothing_given_changes_nothing(space) -> None:
    assert space.with_overrides() == space


def test_dataset_and_epochs_replace_the_files(space) -> None:
    changed = space.with_overrides(dataset="synthetic", epochs=3)
    assert (changed.dataset, changed.epochs) == ("synthetic", 3)
    assert (changed.sampler, changed.pruner, changed.seed) == (space.sampler, space.pruner, 0)


def test_seed_also_seeds_the_files_sampler(space) -> None:
    changed = space.with_overrides(seed=7)
    assert changed.seed == 7
    assert changed.sampler == {**space.sampler, "seed": 7}


def test_a_named_sampler_keeps_the_runs_seed_and_drops_the_files_options(space) -> None:
    assert space.with_overrides(sampler="random").sampler == {"name": "random", "seed": 0}
    assert space.with_overrides(sampler="grid", seed=5).sampler == {"name": "grid", "seed": 5}


def test_a_named_pruner_replaces_the_files(space) -> None:
    assert space.with_overrides(pruner="none").pruner == {"name": "none"}


@pytest.mark.parametrize("name", ["percentile", "patient"])
def test_a_pruner_that_needs_options_cannot_be_named_alone(space, name: str) -> None:
    with pytest.raises(NasError) as info:
        space.with_overrides(pruner=name)  # as nas.search(pruner=...) names it
    assert str(info.value) == (f"pruner {name}: needs options; set it in the space file's "
                               "pruner: section")
    with flag_names(), pytest.raises(NasError) as info:  # as `nas search --pruner` does
        space.with_overrides(pruner=name)
    assert str(info.value).startswith(f"--pruner {name}: needs options")
