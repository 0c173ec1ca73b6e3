"""Useful depth, measured on networks trained for real on the bundled digits."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from helpers import THREADS

from nas.candidate import Candidate
from nas.depth.interval import split_halves
from nas.depth.lesion import DepthReport, analyze
from nas.depth.measures import linear_cka
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


def halves(digits, seed: int = RESIDUAL.seed):
    """The (selection, held-out) validation images ``analyze`` uses for ``seed``."""
    selection, held_out = split_halves(digits.val_y.numpy(), seed)
    return ((digits.val_x[selection], digits.val_y[selection]),
            (digits.val_x[held_out], digits.val_y[held_out]))


def lesioned_accuracy(model, names, x, y) -> float:
    """Accuracy on ``x``/``y`` with the blocks ``names`` lesioned by the plain switch."""
    for name in names:
        model.blocks[name].lesioned = True
    try:
        return evaluate(model, x, y)[1]
    finally:
        for name in names:
            model.blocks[name].lesioned = False


def test_cached_lesions_match_the_plain_switch_and_restore_the_model(residual, digits) -> None:
    residual.train()
    report = analyze(residual, digits.val_x, digits.val_y)
    assert residual.training
    assert not any(b.lesioned for b in residual.blocks.values())
    full_loss, full = evaluate(residual, digits.val_x, digits.val_y)
    assert report.full_accuracy == full
    assert report.full_loss == pytest.approx(full_loss, abs=1e-6)
    assert report.block_names == list(residual.blocks)
    # Importance and loss rise are measured on the selection half only.
    (x, y), _ = halves(digits)
    half_loss, half = evaluate(residual, x, y)
    assert report.selection_accuracy == half
    for name, block in residual.blocks.items():
        block.lesioned = True
        try:
            lesioned_loss, lesioned = evaluate(residual, x, y)
        finally:
            block.lesioned = False
        index = report.block_names.index(name)
        assert report.block_importance[index] == half - lesioned, name
        assert report.block_loss_increase[index] == pytest.approx(lesioned_loss - half_loss,
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
    # A zero branch on an identity shortcut passes its input on: it turns nothing.
    influence = dict(zip(report.block_names, report.block_influence, strict=True))
    assert influence["stages.0.1"] == pytest.approx(0.0, abs=1e-6)
    assert influence["stages.2.2"] == pytest.approx(0.0, abs=1e-6)
    assert influence["stages.1.0"] is None  # changes shape: no cosine to take
    assert min(v for v in influence.values() if v is not None) >= -1e-6
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
    assert report.lesion_curve[0][1] < report.selection_accuracy - report.tolerance
    assert report.accuracy_without_removable == report.held_out_accuracy
    assert report.useful_layers_interval == (20, 20)  # it fails on every resample too
    # The residual network of the same depth can lose any block, and its least important
    # one costs it less than the plain network's least important one costs that.
    assert residual_report.total_layers == 20
    assert not any(residual_report.essential)
    assert (residual_report.selection_accuracy - residual_report.lesion_curve[0][1]
            < report.selection_accuracy - report.lesion_curve[0][1])


def test_greedy_curve_stays_within_tolerance_until_it_stops(residual, residual_report,
                                                             digits) -> None:
    report = residual_report
    floor = report.selection_accuracy - report.tolerance
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
    # The accuracy without the removable blocks is what the plain switch gives on the
    # held-out half; the curve's point there, on the selection half.
    (x, y), (held_x, held_y) = halves(digits)
    without = lesioned_accuracy(residual, report.removable, held_x, held_y)
    assert report.accuracy_without_removable == without
    assert report.held_out_accuracy == evaluate(residual, held_x, held_y)[1]
    assert report.removal_cost == report.held_out_accuracy - without
    if removed:
        assert report.held_out_curve[removed - 1] == without
        assert report.lesion_curve[removed - 1][1] == lesioned_accuracy(
            residual, report.removable, x, y)
    # Every point of a longer curve is what the plain switch gives for its prefix.
    loose = analyze(residual, digits.val_x, digits.val_y, tolerance=1.0)  # removes all
    assert loose.removable == [n for n, _ in loose.lesion_curve] and len(loose.removable) == 9
    for k, (_, accuracy) in enumerate(loose.lesion_curve):
        prefix = [n for n, _ in loose.lesion_curve[:k + 1]]
        assert accuracy == lesioned_accuracy(residual, prefix, x, y), prefix
        assert loose.held_out_curve[k] == lesioned_accuracy(residual, prefix, held_x, held_y)
    # A zero tolerance removes nothing that costs accuracy on the selection half.
    strict = analyze(residual, digits.val_x, digits.val_y, tolerance=0.0)
    assert all(acc >= strict.selection_accuracy for _, acc in
               strict.lesion_curve[:len(strict.removable)])
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
    assert report.selection_accuracy == pytest.approx(
        residual_report.selection_accuracy - residual_report.block_importance[index],
        abs=1e-12)
    (x, y), _ = halves(digits)
    for name, importance in zip(report.block_names, report.block_importance, strict=True):
        lesioned = lesioned_accuracy(model, [name], x, y)
        assert importance == report.selection_accuracy - lesioned, name


def test_the_interval_holds_the_estimate_and_narrows_with_more_images(residual, digits,
                                                                      residual_report) -> None:
    """A planted check: the same validation images sixteen times over is sixteen times the
    evidence, so the bootstrap interval must be narrower. (Four times is not always
    enough: when the first removal costs nearly the tolerance, four copies still leave
    the crossing inside the spread.) The halves of the repeated set hold each image
    about eight times, so its point estimate may differ; its interval holds it too."""
    report = residual_report
    low, high = report.useful_layers_interval
    assert low <= report.useful_layers <= high
    blocks_low, blocks_high = report.useful_blocks_interval
    assert blocks_low <= report.useful_blocks <= blocks_high
    assert high > low  # 269 images leave the crossing uncertain
    repeated = analyze(residual, digits.val_x.repeat(16, 1, 1, 1), digits.val_y.repeat(16),
                       tolerance=0.01)
    r_low, r_high = repeated.useful_layers_interval
    assert r_low <= repeated.useful_layers <= r_high
    assert r_high - r_low < high - low
    # The bootstrap is seeded: the same seed, the same interval.
    again = analyze(residual, digits.val_x, digits.val_y, tolerance=0.01)
    assert again.useful_layers_interval == report.useful_layers_interval


def test_the_crossing_of_the_whole_curve_is_the_useful_depth(residual, digits) -> None:
    """Read the useful depth off the curve by hand at several tolerances."""
    for tolerance in (0.0, 0.005, 0.01, 0.03, 0.1):
        report = analyze(residual, digits.val_x, digits.val_y, tolerance=tolerance)
        floor = report.selection_accuracy - tolerance - 1e-9
        crossing = next((k for k, (_, acc) in enumerate(report.lesion_curve) if acc < floor),
                        len(report.lesion_curve))
        assert len(report.removable) == crossing, tolerance
        assert report.useful_blocks == report.total_blocks - crossing
        low, high = report.useful_blocks_interval
        assert low <= report.useful_blocks <= high


def test_selection_and_held_out_halves_are_disjoint_and_fixed_by_the_seed(digits) -> None:
    y = digits.val_y.numpy()
    selection, held_out = split_halves(y, 0)
    assert set(selection).isdisjoint(held_out)
    assert sorted([*selection, *held_out]) == list(range(len(y)))
    assert abs(len(selection) - len(held_out)) <= 1
    again = split_halves(y, 0)
    assert (again[0] == selection).all() and (again[1] == held_out).all()
    assert set(split_halves(y, 1)[0]) != set(selection)
    for label in set(y.tolist()):  # stratified: every class split as evenly as it can be
        assert abs((y[selection] == label).sum() - (y[held_out] == label).sum()) <= 1
    one = split_halves(y[:1], 0)
    assert list(one[0]) == list(one[1]) == [0]  # nothing to hold out


def test_linear_cka_is_one_for_a_block_with_itself_and_ignores_rotation() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(64, 8, 4, 4, generator=generator)
    assert linear_cka(features, features) == pytest.approx(1.0, abs=1e-9)
    rotation, _ = torch.linalg.qr(torch.randn(128, 128, generator=generator))
    turned = 3.0 * features.flatten(1) @ rotation
    assert linear_cka(features, turned) == pytest.approx(1.0, abs=1e-6)
    # Unrelated features score low where there are many more images than features (with
    # more features than images linear CKA is biased up, which is why analyze uses 256).
    few = torch.randn(512, 6, generator=generator)
    assert linear_cka(few, torch.randn(512, 6, generator=generator)) < 0.1
    assert linear_cka(features, torch.ones(64, 3)) == 0.0


def test_measures_and_random_deletions_of_residual_against_plain(plain, residual,
                                                                  residual_report,
                                                                  digits) -> None:
    report = residual_report
    names = report.block_names
    cka = dict(zip(names, report.block_cka, strict=True))
    last_of_stage = {"stages.0.2", "stages.1.2", "stages.2.2"}
    assert {n for n, v in cka.items() if v is None} == last_of_stage
    assert all(0.0 <= v <= 1.0 + 1e-9 for v in cka.values() if v is not None)
    # Veit et al.: k random blocks of the removable ones, on the held-out half.
    deletions = dict(report.random_deletions)
    assert sorted(deletions) == list(deletions) and deletions
    assert max(deletions) == len(report.lesion_curve)  # every removable block at the end
    assert all(len(accs) == (1 if k == max(deletions) else 4) for k, accs in deletions.items())
    # A draw with every removable block lesioned is the end of the held-out curve.
    assert deletions[max(deletions)] == [report.held_out_curve[-1]]
    plain_report = analyze(plain, digits.val_x, digits.val_y)
    plain_deletions = dict(plain_report.random_deletions)
    # One random block gone: the residual network hardly notices, the plain one falls.
    residual_one = sum(deletions[1]) / len(deletions[1])
    plain_one = sum(plain_deletions[1]) / len(plain_deletions[1])
    assert residual_one > plain_one, (residual_one, plain_one)
    assert "CKA next" in report.table() and "random deletions" in report.curve()


def test_without_random_deletions_the_report_is_the_same_but_for_them(residual, residual_report,
                                                                     digits) -> None:
    """What a search asks of a trial its report will not draw deletions for."""
    lean = analyze(residual, digits.val_x, digits.val_y, with_deletions=False)
    assert lean.random_deletions is None and residual_report.random_deletions
    full, cut = residual_report.to_dict(), lean.to_dict()
    assert cut.pop("random_deletions") == []
    full.pop("random_deletions")
    full.pop("seconds"), cut.pop("seconds")
    assert cut == full
