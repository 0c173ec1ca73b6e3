"""The named steps of ``analyze`` one by one, on small untrained networks (no training: fast).

Each step must give what the plain lesion switch and a plain forward pass give: the cache
only saves the work before a block, it must never change a result.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.candidate import Candidate
from nas.depth.forward_cache import ForwardCache, Scores, block_sites
from nas.depth.interval import split_halves
from nas.depth.lesion import (
    ESSENTIAL_IMPORTANCE,
    GreedyCurve,
    greedy_curve,
    random_deletions,
    single_lesions,
)
from nas.depth.measures import BranchStatistics, mean_influence, next_block_cka
from nas.models.resnet import ResNet, build_model

IMAGES, CLASSES, SIZE = 40, 5, 8


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Networks this small run in milliseconds on one thread; several threads spin against
    each other and any other load on the cores (seconds per test on a busy machine)."""
    torch.set_num_threads(1)


def small(seed: int = 0, **options) -> ResNet:
    torch.manual_seed(seed)
    candidate = Candidate(**{"blocks_per_stage": (2, 1, 2), "width": 4, **options})
    model = build_model(candidate, 1, CLASSES, SIZE).eval()
    for block in model.blocks.values():  # the zero-init branch ends would make lesions no-ops
        last = block.branch[-1]
        torch.nn.init.normal_(last.weight, std=0.5)
    return model


def data(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(IMAGES, 1, SIZE, SIZE, generator=generator),
            torch.randint(0, CLASSES, (IMAGES,), generator=generator))


def record(model: ResNet, batch_size: int = 16) -> tuple[ForwardCache, Scores]:
    x, y = data()
    with torch.inference_mode():
        return ForwardCache.record(model, x, y, batch_size)


def plain_scores(model: ResNet, lesioned: list[str]) -> Scores:
    """What the model itself scores with ``lesioned`` switched on: no cache involved."""
    x, y = data()
    for name in lesioned:
        model.blocks[name].lesioned = True
    try:
        with torch.inference_mode():
            return Scores.of(model(x), y)
    finally:
        for name in lesioned:
            model.blocks[name].lesioned = False


def assert_same(first: Scores, second: Scores) -> None:
    assert torch.equal(first.right, second.right)
    assert torch.equal(first.losses, second.losses)


def test_the_cache_reproduces_the_models_own_logits_and_scores() -> None:
    model = small()
    x, _ = data()
    cache, full = record(model)
    with torch.inference_mode():
        logits = torch.cat([model.forward_head(row[-1]) for row in cache.activations])
        assert torch.equal(logits, model(x))
    assert_same(full, plain_scores(model, []))
    assert len(cache.activations) == 3  # 40 images in batches of 16
    assert all(len(row) == len(model.stage_modules()) + 1 for row in cache.activations)


def test_lesioning_no_block_from_any_module_is_the_full_network() -> None:
    model = small()
    cache, full = record(model)
    with torch.inference_mode():
        for start in range(len(cache.modules)):
            assert_same(cache.run_from(start), full)
            scores, successor = cache.advance(start)
            assert_same(scores, full)
            assert all(torch.equal(a, b) for row, new in
                       zip(cache.activations, successor.activations, strict=True)
                       for a, b in zip(row[:-1], new[:-1], strict=True))


def test_the_rows_of_a_subset_score_those_images_only() -> None:
    model = small()
    cache, full = record(model, batch_size=7)
    images = np.array([0, 3, 6, 7, 20, 39])
    with torch.inference_mode():
        subset = cache.run_from(2, rows=cache.rows_of(images))
    assert torch.equal(subset.right, full.right[images])
    assert torch.equal(subset.losses, full.losses[images])


def test_block_sites_name_each_block_with_its_stage_and_cache_column() -> None:
    model = small()
    sites = block_sites(model)
    assert [s.name for s in sites] == list(model.blocks)
    assert [s.stage for s in sites] == [0, 0, 1, 2, 2]
    modules = model.stage_modules()
    assert all(modules[s.module_index] is s.block for s in sites)
    wrapped = small()
    wrapped.stages[1][0] = torch.nn.Sequential(wrapped.stages[1][0])  # a block off the stages
    with pytest.raises(ValueError, match="sit in its stages"):
        block_sites(wrapped)


def test_single_lesions_match_the_plain_switch_and_skip_essential_blocks() -> None:
    model = small(shortcut="none")  # plain: the blocks that change shape cannot go
    sites = block_sites(model)
    cache, full = record(model)
    selection = np.arange(0, IMAGES, 2)
    with torch.inference_mode():
        singles = single_lesions(cache, sites, full, selection)
    assert singles.essential == [False, False, True, True, False]
    for i, site in enumerate(sites):
        if singles.essential[i]:
            assert singles.importance[i] == ESSENTIAL_IMPORTANCE
            assert singles.loss_rise[i] is None
            continue
        lesioned = plain_scores(model, [site.name])
        assert singles.importance[i] == full.accuracy(selection) - lesioned.accuracy(selection)
        assert singles.loss_rise[i] == pytest.approx(
            lesioned.mean_loss(selection) - full.mean_loss(selection), abs=1e-6)
    order = singles.greedy_order()
    assert sorted(order) == [0, 1, 4]
    assert [singles.loss_rise[i] for i in order] == sorted(singles.loss_rise[i] for i in order)
    assert not any(b.lesioned for b in model.blocks.values())


def test_each_greedy_step_is_the_plain_switch_on_its_prefix() -> None:
    model = small()
    sites = block_sites(model)
    cache, _ = record(model)
    selection = np.arange(IMAGES)
    order = [3, 0, 4, 1, 2]
    with torch.inference_mode():
        curve = greedy_curve(cache, sites, order, selection)
    assert not any(b.lesioned for b in model.blocks.values())
    assert [name for name, _ in curve.points] == [sites[i].name for i in order]
    for k in range(len(order)):
        expected = plain_scores(model, [sites[i].name for i in order[:k + 1]])
        assert curve.points[k][1] == expected.accuracy(selection)
        assert torch.equal(curve.right[k], expected.right)
        assert curve.losses[k] == pytest.approx(expected.mean_loss(selection), abs=1e-6)
    assert curve.correct(IMAGES).shape == (len(order), IMAGES)


def test_more_tolerance_never_removes_fewer_blocks() -> None:
    curve = GreedyCurve(order=[0, 1, 2, 3], points=[("a", 0.9), ("b", 0.95), ("c", 0.8),
                                                    ("d", 0.5)],
                        losses=[0.0] * 4, right=[])
    removable = [curve.removable(0.95, t) for t in (0.0, 0.05, 0.1, 0.15, 0.5, 1.0)]
    assert removable == [0, 2, 2, 3, 4, 4]
    assert GreedyCurve([], [], [], []).removable(0.9, 0.1) == 0
    assert GreedyCurve([], [], [], []).correct(7).shape == (0, 7)


def test_random_deletions_of_every_block_are_the_end_of_the_curve() -> None:
    model = small()
    sites = block_sites(model)
    cache, _ = record(model)
    _, held_out = split_halves(data()[1].numpy(), 0)
    order = list(range(len(sites)))
    with torch.inference_mode():
        deletions = random_deletions(cache, sites, order, held_out, seed=0)
    everything = plain_scores(model, [s.name for s in sites])
    assert deletions[-1] == (len(sites), [everything.accuracy(held_out)])
    assert [k for k, _ in deletions] == [1, 2, 3, 4, 5]
    assert all(len(draws) == 4 for _, draws in deletions[:-1])
    assert not any(b.lesioned for b in model.blocks.values())


def test_branch_statistics_and_one_pass_measures() -> None:
    model = small(block="highway")
    zeroed = model.blocks["stages.0.1"]
    torch.nn.init.zeros_(zeroed.branch[-1].weight)
    torch.nn.init.zeros_(zeroed.branch[-1].bias)
    sites = block_sites(model)
    statistics = BranchStatistics([(s.name, s.block) for s in sites])
    cache, _ = record(model)
    statistics.remove()
    assert not statistics.handles
    assert set(statistics.gate_means()) == set(model.blocks)
    assert statistics.branch_ratio()["stages.0.1"] == 0.0
    columns = {s.name: s.module_index for s in sites}
    assert mean_influence(cache.activations, columns["stages.1.0"]) is None  # changes shape
    assert mean_influence(cache.activations, columns["stages.0.0"]) > 0.0
    cka = next_block_cka(cache.activations, [s.module_index for s in sites],
                         [s.stage for s in sites])
    assert [v is None for v in cka] == [False, True, True, False, True]  # last of each stage
    record(model)  # removed hooks count nothing more
    assert statistics.branch_ratio()["stages.0.1"] == 0.0
    assert statistics.ratio_count["stages.0.0"] == IMAGES
