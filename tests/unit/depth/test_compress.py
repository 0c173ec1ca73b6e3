"""Removing blocks for real: same function as the lesion, fewer parameters, kept accuracy."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from helpers import ROOT, THREADS

from nas.candidate import Candidate
from nas.depth.compress import compress
from nas.depth.lesion import analyze
from nas.models.blocks import Bypass
from nas.models.resnet import build_model
from nas.training.checkpoint import load_checkpoint, save_checkpoint
from nas.training.loop import train

TRAINED = Candidate(blocks_per_stage=3, width=8, epochs=4, batch_size=32, lr=0.1, augment=False)


@pytest.fixture(scope="module")
def trained(digits):
    return train(TRAINED, digits, threads=THREADS).model


@pytest.fixture(scope="module")
def planted(trained):
    """The trained network with one branch zeroed: that block computes its lesion exactly,
    so the analysis must find it removable."""
    model = copy.deepcopy(trained)
    last_norm = model.blocks[PLANTED].branch[-1]
    torch.nn.init.zeros_(last_norm.weight)
    torch.nn.init.zeros_(last_norm.bias)
    return model


PLANTED = "stages.0.1"
# A plain network of one block a stage: the shape-changing blocks cannot go, and deleting
# the first costs most of its accuracy, so nothing is removable.
PLAIN = Candidate(blocks_per_stage=1, width=8, shortcut="none", epochs=3, batch_size=32,
                  lr=0.05, augment=False)


def test_removing_a_block_computes_what_its_lesion_computed() -> None:
    torch.manual_seed(0)
    for shortcut in ("identity", "projection", "scaled", "rezero", "none"):
        model = build_model(Candidate(blocks_per_stage=3, width=8, shortcut=shortcut), 1, 10,
                            16).eval()
        for p in model.parameters():  # make every branch matter
            torch.nn.init.normal_(p, std=0.2)
        x = torch.randn(5, 1, 16, 16)
        names = ["stages.0.1", "stages.2.2"]
        for n in names:
            model.blocks[n].lesioned = True
        expected = model(x)
        for n in names:
            model.blocks[n].lesioned = False
        smaller = copy.deepcopy(model).remove_blocks(names)
        assert torch.allclose(smaller(x), expected, atol=1e-5), shortcut
        assert isinstance(smaller.stages[0][1], Bypass)
        assert len(smaller.blocks) == 7 and smaller.num_layers == model.num_layers - 4
        assert smaller.num_params < model.num_params


def test_a_block_that_changes_shape_in_a_plain_net_cannot_be_removed() -> None:
    model = build_model(Candidate(shortcut="none"), 1, 10, 16)
    with pytest.raises(ValueError, match="cannot be removed"):
        model.remove_blocks(["stages.1.0"])
    with pytest.raises(ValueError, match="no residual block"):
        model.remove_blocks(["stages.9.9"])


def test_compressed_checkpoint_round_trip(tmp_path, trained, digits) -> None:
    smaller = copy.deepcopy(trained).remove_blocks(["stages.0.2"])
    path = save_checkpoint(tmp_path / "small.pt", smaller, digits)
    loaded, meta = load_checkpoint(path)
    assert meta["removed"] == ["stages.0.2"] and len(loaded.blocks) == 8
    x = digits.val_x[:16]
    assert torch.allclose(loaded.eval()(x), smaller.eval()(x), atol=1e-6)


def test_compress_has_a_control_and_the_cost_is_compressed_minus_control(planted,
                                                                          digits) -> None:
    report = analyze(planted, digits.val_x, digits.val_y, tolerance=0.02)
    assert PLANTED in report.removable
    result = compress(planted, digits, report, epochs=1, threads=THREADS)
    assert result.removed == report.removable
    assert result.compressed["blocks"] == result.full["blocks"] - len(report.removable)
    assert result.compressed["params"] < result.full["params"]
    # the control: the full network (all its blocks) fine-tuned the same way
    control = result.control
    assert control is not None and control["blocks"] == result.full["blocks"]
    assert control["val_accuracy"] != result.full["val_accuracy"] or \
        control["test_accuracy"] != result.full["test_accuracy"]  # it was trained
    for split in ("val", "test"):
        key = f"{split}_accuracy"
        assert result.cost_pp(split) == pytest.approx(
            (result.compressed[key] - control[key]) * 100)
    out = result.to_dict()
    assert out["removal_cost_pp"]["val"] == pytest.approx(result.cost_pp("val"))
    assert result.speed is not None and result.speed.low <= result.speed.ratio
    assert result.compressed["images_per_second"] == result.speed.second.images_per_second
    # analysis promised at most the tolerance; fine-tuning must not lose more
    assert result.cost_pp("val") >= -(2 + 1)
    assert all(b.lesioned is False for b in planted.blocks.values())
    without = compress(planted, digits, report, epochs=0, threads=THREADS, speed=False)
    assert without.control is None and without.baseline is without.full


def test_compress_with_nothing_removable_says_so_and_writes_nothing(tmp_path, digits) -> None:
    plain = train(PLAIN, digits, threads=THREADS).model
    ckpt = save_checkpoint(tmp_path / "plain.pt", plain, digits)
    out = tmp_path / "small.pt"
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "compress", str(ckpt), "--save",
                           str(out)], cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "nothing to remove: all 3 blocks are useful (8 layers, tolerance 1.00 pp); nothing "
        "fine-tuned, no checkpoint written (--force fine-tunes a copy anyway)"]
    assert proc.stderr == "" and not out.exists()


def test_analyze_and_compress_commands(tmp_path, trained, planted, digits) -> None:
    ckpt = save_checkpoint(tmp_path / "net.pt", trained, digits)
    run = [sys.executable, "-m", "nas.cli"]
    proc = subprocess.run([*run, "analyze", str(ckpt), "--json"], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("block_names", "block_importance", "removable", "useful_blocks",
                "total_blocks", "useful_layers", "total_layers", "full_accuracy"):
        assert key in out
    assert out["total_blocks"] == 9 and len(out["block_importance"]) == 9
    assert out["block_names"][0] == "stages.0.0"
    text = subprocess.run([*run, "analyze", str(ckpt)], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)
    assert text.returncode == 0 and text.stdout.count("20 layers, 9 blocks") == 1
    curve = subprocess.run([*run, "analyze", str(ckpt), "--curve"], cwd=ROOT, text=True,
                           capture_output=True, timeout=300)
    assert curve.returncode == 0, curve.stderr
    section = curve.stdout.split("removed  block", 1)[1]  # after the table, the curve
    rows = [line.split() for line in section.splitlines()
            if line.split() and line.split()[0].isdigit()]
    # the full network, then one row per removable block (none is essential here)
    assert [int(row[0]) for row in rows] == list(range(10))
    assert [row[1] for row in rows[1:]] == [name for name, _ in out["lesion_curve"]]
    removable = len(out["removable"])
    assert f"{removable} removable before the curve falls below" in curve.stdout
    assert ("crosses the tolerance" in curve.stdout) == (removable < 9)
    small = tmp_path / "small.pt"
    planted_ckpt = save_checkpoint(tmp_path / "planted.pt", planted, digits)
    proc = subprocess.run([*run, "compress", str(planted_ckpt), "--epochs", "1", "--save",
                           str(small)], cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert small.is_file()
    table = {line[:24].strip(): line[24:].split() for line in proc.stdout.splitlines()[1:4]}
    assert list(table) == ["full", "full, fine-tuned", "compressed, fine-tuned"]
    assert table["full, fine-tuned"][:3] == table["full"][:3]  # same blocks, layers, params
    assert table["full, fine-tuned"][5] == "-"  # same network as full: one speed is enough
    summary = proc.stdout.splitlines()[4]
    val_cost = float(summary.split(" val ")[1].split(" pp")[0])
    control_val, compressed_val = (float(table[row][3].rstrip("%")) for row in
                                   ("full, fine-tuned", "compressed, fine-tuned"))
    assert val_cost == pytest.approx(compressed_val - control_val, abs=0.011)
    assert "(compressed minus full, both fine-tuned 1 epoch)" in summary
    assert "paired repeats) the images/s" in summary
    bad = subprocess.run([*run, "analyze", str(tmp_path / "missing.pt")], cwd=ROOT, text=True,
                         capture_output=True, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
