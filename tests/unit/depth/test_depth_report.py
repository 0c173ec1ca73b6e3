"""``DepthReport.to_result``: the report as a search trial's result carries it."""

from __future__ import annotations

import json

from nas.depth.report import RESULT_KEYS, DepthReport


def report() -> DepthReport:
    return DepthReport(
        block_names=["stages.0.0", "stages.0.1", "stages.1.0"],
        block_importance=[0.01234567, 0.0, 1.0],
        essential=[False, False, True],
        full_accuracy=0.9,
        block_loss_increase=[0.1234567891, -0.0000001, None],
        full_loss=0.3,
        loss_curve=[0.31234567, 0.9],
        useful_blocks_interval=(2, 3),
        useful_layers_interval=(6, 8),
        lesion_curve=[("stages.0.1", 0.8888888888), ("stages.0.0", 0.5)],
        removable=["stages.0.1"],
        useful_blocks=2,
        total_blocks=3,
        useful_layers=6,
        total_layers=8,
        tolerance=0.01,
        accuracy_without_removable=0.8765432109,
        gate_means={"stages.0.0": 0.1111111111},
        alphas={"stages.0.1": -0.2222222222},
        branch_ratio={"stages.0.0": 0.3333333333, "stages.0.1": 0.0},
        seconds=1.23456789,
        selection_images=10,
        held_out_images=9,
        selection_accuracy=0.9000000001,
        held_out_accuracy=0.8888888889,
        held_out_curve=[0.7777777777, 0.5],
        block_influence=[0.4444444444, None, 0.25],
        block_cka=None,
        random_deletions=[(1, [0.5555555555, 0.5]), (2, [0.5])],
    )


def test_to_result_has_the_result_keys_in_order_and_survives_json() -> None:
    result = report().to_result()
    assert tuple(result) == RESULT_KEYS
    assert len(set(RESULT_KEYS)) == len(RESULT_KEYS)
    assert json.loads(json.dumps(result)) == result


def test_to_result_rounds_lists_keeps_none_and_turns_dicts_into_pairs() -> None:
    result = report().to_result()
    assert result["block_importance"] == [0.012346, 0.0, 1.0]
    assert result["block_loss_increase"] == [0.123457, -0.0, None]
    assert result["lesion_curve"] == [["stages.0.1", 0.888889], ["stages.0.0", 0.5]]
    # pairs, not dicts: Tune would flatten a dict into one key per block
    assert result["gate_means"] == [["stages.0.0", 0.111111]]
    assert result["alphas"] == [["stages.0.1", -0.222222]]
    assert result["branch_ratio"] == [["stages.0.0", 0.333333], ["stages.0.1", 0.0]]
    assert result["random_deletions"] == [[1, [0.555556, 0.5]], [2, [0.5]]]
    assert result["block_influence"] == [0.444444, None, 0.25]
    assert result["block_cka"] == []  # none measured
    assert result["useful_layers_interval"] == [6, 8]
    # single figures are carried as they are; the analysis time under its own name
    assert result["depth_seconds"] == 1.23456789 and "seconds" not in result
    assert result["selection_accuracy"] == 0.9000000001
    assert result["accuracy_without_removable"] == 0.8765432109
