"""Useful depth, measured on networks trained for real on the bundled digits."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import THREADS

from nas.candidate import Candidate
from nas.depth.lesion import DepthReport, analyze
from nas.training.loop import evaluate, train

# The shipped ResNet-20 settings (width 16, batch 64, lr 0.2), 6 epochs: about 99% on val.
# At width 8 (batch 32, lr 0.1, 4-8 epochs) every block of a 20-layer residual net
# was worth more than 1 pp on digits, so no block was removable there.
RESIDUAL = Candidate(blocks_per_stage=3, width=16, epochs=6, batch_size=64, lr=0.2,
                     augment=False)
PLAIN = Candidate(blocks_per_stage=3, width=16, epochs=6, batch_size=64, lr=0.2,
                  augment=False, shortcut="none")
SMALL = Candidate(blocks_per_stage=1, width=8, epochs=2, batch_size=64, lr=0.1, augment=False)


@pytest.fixture(scope="module")
def residual(digits):
    return train(RESIDUAL, digits, threads=THREADS).model


@pytest.fixture(scope="module")
def plain(digits):
    return train(PLAIN, digits, threads=THREADS).model


@pytest.fixture(scope="module")
def residual_report(residual, digits) -> DepthReport:
    return analyze(residual, digits.val_x, digits.val_y, tolerance=0.01)


def test_cached_lesions_match_the_plain_switch_and_restore_the_model(residual, digits) -> None:
    residual.train()
    report = analyze(residual, digits.val_x, digits.val_y)
    assert residual.training
    assert not any(b.lesioned for b in residual.blocks.values())
    full_loss, full = evaluate(residual, digits.val_x, digits.val_y)
    assert report.full_accuracy == full
    assert report.full_loss == pytest.approx(full_loss, abs=1e-6)
    assert report.block_names == list(residual.blocks)
    for name, block in residual.blocks.items():
        block.lesioned = True
        try:
            lesioned_loss, lesioned = evaluate(residual, digits.val_x, digits.val_y)
        finally:
            block.lesioned = False
        index = report.block_names.index(name)
        assert report.block_importance[index] == full - lesioned, name
        assert report.block_loss_increase[index] == pytest.approx(lesioned_loss - full_loss,
                                                                  abs=1e-6), name
    # Small batches take the same path batch by batch.
    batched = analyze(residual, digits.val_x, digits.val_y, batch_size=50)
    assert batched.block_importance == pytest.approx(report.block_importance, abs=1e-12)
    assert batched.removable == report.removable


def test_the_model_is_restored_when_the_analysis_fails(residual, digits) -> None:
    residual.train()

    def fail_when_lesioned(_module, _inputs, _output):
        if any(b.lesioned for b in residual.blocks.values()):
            raise RuntimeError("boom")

    handle = residual.fc.register_forward_hook(fail_when_lesioned)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            analyze(residual, digits.val_x, digits.val_y)
    finally:
        handle.remove()
    assert residual.training
    assert not any(b.lesioned for b in residual.blocks.values())


def test_blocks_with_a_zero_branch_are_unimportant_and_removed_first(residual, digits) -> None:
    model = copy.deepcopy(residual)
    zeroed = ["stages.0.1", "stages.1.0", "stages.2.2"]  # stages.1.0 changes shape
    for name in zeroed:
        last_norm = model.blocks[name].branch[-1]
        torch.nn.init.zeros_(last_norm.weight)
        torch.nn.init.zeros_(last_norm.bias)
    report = analyze(model, digits.val_x, digits.val_y, tolerance=0.01)
    importance = dict(zip(report.block_names, report.block_importance, strict=True))
    rise = dict(zip(report.block_names, report.block_loss_increase, strict=True))
    for name in zeroed:
        assert importance[name] == 0.0, name
        assert rise[name] == pytest.approx(0.0, abs=1e-7), name
        assert name in report.removable, report.removable
        assert report.branch_ratio[name] == 0.0
    # The loss orders the greedy pass: only blocks whose lesion does not raise the loss
    # may go before a zero branch.
    last = max(report.removable.index(name) for name in zeroed)
    assert all(rise[name] <= 1e-7 for name in report.removable[:last + 1])
    # ... and it separates the blocks that an accuracy drop of 0 would tie.
    tied = [rise[n] for n in report.block_names if importance[n] == 0.0 and n not in zeroed]
    assert len(set(tied)) == len(tied)


def test_plain_blocks_are_essential_residual_blocks_are_not(plain, residual_report,
                                                             digits) -> None:
    report = analyze(plain, digits.val_x, digits.val_y, tolerance=0.01)
    assert report.full_accuracy >= 0.9
    shape_changing = {"stages.1.0", "stages.2.0"}
    essential = {n for n, e in zip(report.block_names, report.essential, strict=True) if e}
    assert essential == shape_changing
    for name, importance, essential in zip(report.block_names, report.block_importance,
                                           report.essential, strict=True):
        rise = report.block_loss_increase[report.block_names.index(name)]
        if essential:
            assert importance == 1.0
            assert rise is None
        else:
            assert importance > report.tolerance, (name, importance)
            assert rise > 0.0, (name, rise)
    assert report.removable == []
    assert report.useful_blocks == report.total_blocks == 9
    assert report.useful_layers == report.total_layers == 20
    assert report.branch_ratio == {}
    # The whole curve goes on past the first failure until every removable block is gone.
    assert len(report.lesion_curve) == 7
    assert report.lesion_curve[0][1] < report.full_accuracy - report.tolerance
    assert report.accuracy_without_removable == report.full_accuracy
    assert report.useful_layers_interval == (20, 20)  # it fails on every resample too
    # The residual network of the same depth can do without at least one block.
    assert residual_report.total_layers == 20
    assert not any(residual_report.essential)
    assert len(residual_report.removable) >= 1
    assert residual_report.useful_blocks < residual_report.total_blocks


def test_greedy_curve_stays_within_tolerance_until_it_stops(residual, residual_report,
                                                             digits) -> None:
    report = residual_report
    floor = report.full_accuracy - report.tolerance
    removed = len(report.removable)
    assert [n for n, _ in report.lesion_curve[:removed]] == report.removable
    assert all(acc >= floor - 1e-9 for _, acc in report.lesion_curve[:removed])
    # The whole curve: every removable block, the tolerance crossing right after the
    # removable prefix (unless nothing crossed), a loss for every point.
    assert len(report.lesion_curve) == report.total_blocks - sum(report.essential)
    assert len(report.loss_curve) == len(report.lesion_curve)
    if removed < len(report.lesion_curve):
        assert report.lesion_curve[removed][1] < floor
    # The smallest loss rise first.
    importance = dict(zip(report.block_names, report.block_importance, strict=True))
    rise = dict(zip(report.block_names, report.block_loss_increase, strict=True))
    ranks = [rise[n] for n, _ in report.lesion_curve]
    assert ranks == sorted(ranks)
    assert report.total_layers == residual.num_layers
    assert report.useful_layers == report.total_layers - 2 * removed
    assert report.useful_blocks == report.total_blocks - removed
    # The accuracy without the removable blocks is what the plain switch gives.
    for name in report.removable:
        residual.blocks[name].lesioned = True
    try:
        _, without = evaluate(residual, digits.val_x, digits.val_y)
    finally:
        for name in report.removable:
            residual.blocks[name].lesioned = False
    assert report.accuracy_without_removable == without
    if removed:
        assert report.lesion_curve[removed - 1][1] == without
    # Every point of a longer curve is what the plain switch gives for its prefix.
    loose = analyze(residual, digits.val_x, digits.val_y, tolerance=1.0)  # removes all
    assert loose.removable == [n for n, _ in loose.lesion_curve] and len(loose.removable) == 9
    for k, (_, accuracy) in enumerate(loose.lesion_curve):
        prefix = [n for n, _ in loose.lesion_curve[:k + 1]]
        for name in prefix:
            residual.blocks[name].lesioned = True
        try:
            _, switched = evaluate(residual, digits.val_x, digits.val_y)
        finally:
            for name in prefix:
                residual.blocks[name].lesioned = False
        assert accuracy == switched, prefix
    # A zero tolerance removes nothing that costs accuracy.
    strict = analyze(residual, digits.val_x, digits.val_y, tolerance=0.0)
    assert strict.accuracy_without_removable >= strict.full_accuracy
    assert all(importance[n] <= 0.0 for n in strict.removable)


def test_gates_alphas_ratios_and_plain_types(digits) -> None:
    highway = train(Candidate(**{**SMALL.to_dict(), "block": "highway"}), digits,
                    threads=THREADS).model
    report = analyze(highway, digits.val_x, digits.val_y)
    assert set(report.gate_means) == set(highway.blocks)
    assert all(0.0 < t < 1.0 for t in report.gate_means.values())
    # The gate bias starts at -2: the mean gate starts near sigmoid(-2) = 0.12, not 0.5.
    assert any(abs(t - 0.5) > 0.05 for t in report.gate_means.values())
    assert report.alphas == {}
    assert set(report.branch_ratio) == set(highway.blocks)

    rezero = train(Candidate(**{**SMALL.to_dict(), "shortcut": "rezero"}), digits,
                   threads=THREADS).model
    report = analyze(rezero, digits.val_x, digits.val_y)
    assert report.alphas == {n: float(b.alpha.detach()) for n, b in rezero.blocks.items()}
    assert any(a != 0.0 for a in report.alphas.values())
    assert report.gate_means == {}
    # The ratio counts alpha: scaling alpha scales the ratio.
    block_name = next(iter(rezero.blocks))
    with torch.no_grad():
        rezero.blocks[block_name].alpha.mul_(2.0)
    doubled = analyze(rezero, digits.val_x, digits.val_y)
    assert doubled.branch_ratio[block_name] == pytest.approx(
        2 * report.branch_ratio[block_name], rel=1e-4)

    encoded = json.loads(json.dumps(report.to_dict()))
    assert encoded["block_names"] == report.block_names
    assert all(isinstance(entry, list) for entry in encoded["lesion_curve"])
    assert report.summary().startswith(f"{report.total_layers} layers, "
                                       f"{report.total_blocks} blocks: ")
    table = report.table()
    assert all(name in table for name in report.block_names)
    assert "a=" in table


def test_bad_arguments_are_refused(residual, digits) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        analyze(residual, digits.val_x, digits.val_y, tolerance=-0.1)
    with pytest.raises(ValueError, match="targets"):
        analyze(residual, digits.val_x, digits.val_y[:-1])


class _Removed(torch.nn.Module):
    """Stands where a block was taken out, computing what the lesioned block did."""

    def __init__(self, block) -> None:
        super().__init__()
        self.block = [block]  # not a child: the model's blocks no longer include it

    def forward(self, x):
        return self.block[0].lesioned_output(x)


def test_stages_may_hold_what_is_left_of_removed_blocks(residual, residual_report,
                                                       digits) -> None:
    model = copy.deepcopy(residual)
    model.stages[1][1] = _Removed(model.stages[1][1])
    report = analyze(model, digits.val_x, digits.val_y)
    assert report.block_names == [n for n in residual_report.block_names if n != "stages.1.1"]
    index = residual_report.block_names.index("stages.1.1")
    assert report.full_accuracy == pytest.approx(
        residual_report.full_accuracy - residual_report.block_importance[index], abs=1e-12)
    for name, importance in zip(report.block_names, report.block_importance, strict=True):
        model.blocks[name].lesioned = True
        try:
            _, lesioned = evaluate(model, digits.val_x, digits.val_y)
        finally:
            model.blocks[name].lesioned = False
        assert importance == report.full_accuracy - lesioned, name


def test_the_interval_holds_the_estimate_and_narrows_with_more_images(residual, digits,
                                                                      residual_report) -> None:
    """A planted check: the same validation images sixteen times over is the same estimate
    from sixteen times the evidence, so its bootstrap interval must be narrower. (Four
    times is not always enough: when the first removal costs nearly the tolerance, four
    copies still leave the crossing inside the spread.)"""
    report = residual_report
    low, high = report.useful_layers_interval
    assert low <= report.useful_layers <= high
    blocks_low, blocks_high = report.useful_blocks_interval
    assert blocks_low <= report.useful_blocks <= blocks_high
    assert high > low  # 269 images leave the crossing uncertain
    repeated = analyze(residual, digits.val_x.repeat(16, 1, 1, 1), digits.val_y.repeat(16),
                       tolerance=0.01)
    assert repeated.useful_layers == report.useful_layers  # same point estimate
    assert repeated.lesion_curve == report.lesion_curve
    r_low, r_high = repeated.useful_layers_interval
    assert r_high - r_low < high - low
    # The bootstrap is seeded: the same seed, the same interval.
    again = analyze(residual, digits.val_x, digits.val_y, tolerance=0.01)
    assert again.useful_layers_interval == report.useful_layers_interval


def test_the_crossing_of_the_whole_curve_is_the_useful_depth(residual, digits) -> None:
    """Read the useful depth off the curve by hand at several tolerances."""
    for tolerance in (0.0, 0.005, 0.01, 0.03, 0.1):
        report = analyze(residual, digits.val_x, digits.val_y, tolerance=tolerance)
        floor = report.full_accuracy - tolerance - 1e-9
        crossing = next((k for k, (_, acc) in enumerate(report.lesion_curve) if acc < floor),
                        len(report.lesion_curve))
        assert len(report.removable) == crossing, tolerance
        assert report.useful_blocks == report.total_blocks - crossing
        low, high = report.useful_blocks_interval
        assert low <= report.useful_blocks <= high
