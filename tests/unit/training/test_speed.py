"""Inference speed measured so that identical networks read 1.00x within the printed spread,
and a network with fewer blocks reads faster."""

from __future__ import annotations

import copy

import torch

from nas.candidate import Candidate
from nas.models.resnet import build_model
from nas.training.speed import compare_speed, inference_speed


def _network(blocks: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(Candidate(blocks_per_stage=blocks, width=8), 1, 10, 16)


def test_two_copies_of_one_network_read_one_within_the_spread(digits) -> None:
    """The issue's bar: the spread contains 1.0 on at least 9 of 10 runs."""
    model = _network(3)
    twin = copy.deepcopy(model)
    runs = [compare_speed(model, twin, digits.test_x) for _ in range(10)]
    contains = [run.low <= 1.0 <= run.high for run in runs]
    assert sum(contains) >= 9, [run.describe() for run in runs]
    for run in runs:
        assert run.repeats == 15 and run.low <= run.ratio <= run.high
        assert run.first.images_per_second > 0 and run.second.images_per_second > 0


def test_a_shallower_network_reads_faster(digits) -> None:
    deep, shallow = _network(3), _network(1)  # 9 blocks against 3
    ratio = compare_speed(deep, shallow, digits.test_x)
    # The median of the paired ratios; the spread's low end widens with other work on the
    # machine (0.73 seen under two busy cores with a 2.3x median), so it is not asserted.
    assert ratio.ratio > 1.0, ratio.describe()
    assert ratio.describe().endswith("in 80% of 15 paired repeats)")
    assert ratio.second.images_per_second > ratio.first.images_per_second
    alone = inference_speed(shallow, digits.test_x, repeats=5)
    assert alone.low <= alone.images_per_second <= alone.high and alone.repeats == 5
    assert deep.training and shallow.training  # the mode each came in is restored
