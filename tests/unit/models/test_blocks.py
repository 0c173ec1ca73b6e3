"""Every block x shortcut pair builds, passes gradients, trains; lesions are exact."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import THREADS
from torch import nn

from nas.candidate import Candidate
from nas.models.blocks import (
    BLOCKS,
    HighwayBlock,
    PadShortcut,
    Projection,
    ResidualBlock,
    create_block,
    make_shortcut,
)
from nas.models.resnet import build_model
from nas.names import BLOCK_TYPES, SHORTCUT_TYPES
from nas.training.loop import train

PAIRS = list(itertools.product(BLOCK_TYPES, SHORTCUT_TYPES))


def test_registry_names_match_the_candidate_vocabulary() -> None:
    assert tuple(BLOCKS) == BLOCK_TYPES
    for style in SHORTCUT_TYPES:  # every shortcut name builds, same shape or not
        assert isinstance(make_shortcut(style, 8, 8, 1), nn.Module), style
        assert isinstance(make_shortcut(style, 8, 16, 2), nn.Module), style
    assert len(PAIRS) == 24


@pytest.mark.parametrize(("block", "shortcut"), PAIRS)
@pytest.mark.parametrize(("channels", "size"), [(1, 16), (3, 32)])
def test_pair_forward_and_gradients(block: str, shortcut: str, channels: int, size: int) -> None:
    torch.manual_seed(0)
    candidate = Candidate(block=block, shortcut=shortcut, blocks_per_stage=2, width=8)
    model = build_model(candidate, channels, 10, size)
    x = torch.randn(6, channels, size, size)
    out = model(x)
    assert out.shape == (6, 10)
    assert torch.isfinite(out).all()
    F.cross_entropy(out, torch.arange(6) % 10).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{block}/{shortcut}: no gradient for {name}"
        assert torch.isfinite(p.grad).all(), f"{block}/{shortcut}: non-finite gradient {name}"
    # Some parameter moves the loss at the first step (the network is not dead).
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize(("block", "shortcut"), PAIRS)
def test_pair_trains_on_digits(block: str, shortcut: str, digits) -> None:
    candidate = Candidate(block=block, shortcut=shortcut, blocks_per_stage=1, width=8,
                          epochs=4, batch_size=32, lr=0.1, augment=False)
    result = train(candidate, digits, threads=THREADS)
    assert result.epochs == 4
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert last < first, f"{block}/{shortcut} did not reduce its loss ({first} -> {last})"
    assert result.val_accuracy > 0.3  # chance is 0.1


@pytest.mark.parametrize(("block", "shortcut"), PAIRS)
def test_children_are_branch_and_shortcut(block: str, shortcut: str) -> None:
    b = create_block(block, 8, 8, stride=2, shortcut=shortcut)
    children = dict(b.named_children())
    assert isinstance(children["branch"], nn.Module)
    assert isinstance(children["shortcut"], nn.Module)


def test_shortcut_options_when_the_shape_changes() -> None:
    a = create_block("basic", 8, 16, stride=2, shortcut="identity")
    assert isinstance(a.shortcut, PadShortcut)
    assert sum(p.numel() for p in a.shortcut.parameters()) == 0
    x = torch.randn(2, 8, 8, 8)
    s = a.shortcut(x)
    assert s.shape == (2, 16, 4, 4)
    assert torch.equal(s[:, :8], x[:, :, ::2, ::2]) and (s[:, 8:] == 0).all()
    assert isinstance(create_block("basic", 8, 16, 2, "projection").shortcut, Projection)
    assert isinstance(create_block("basic", 8, 8, 1, "projection").shortcut, nn.Identity)
    assert isinstance(create_block("basic", 8, 8, 1, "conv").shortcut, Projection)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown block 'dense'"):
        create_block("dense", 8, 8)
    with pytest.raises(ValueError, match="unknown shortcut 'skip'"):
        create_block("basic", 8, 8, shortcut="skip")


@pytest.mark.parametrize("block", BLOCK_TYPES)
def test_fresh_residual_block_starts_as_its_shortcut(block: str) -> None:
    """Zero-init of the last norm (and rezero's alpha) makes R(x) = 0 at the start."""
    torch.manual_seed(0)
    for shortcut in ("identity", "rezero"):
        b = create_block(block, 16, 16 // BLOCKS[block].expansion, 1, shortcut).eval()
        if block == "highway":
            continue  # the gate still mixes S with a zero branch: checked below
        x = torch.relu(torch.randn(3, 16, 8, 8))
        assert torch.allclose(b(x), x, atol=1e-6), f"{block}/{shortcut}"


@pytest.mark.parametrize(("block", "shortcut"), PAIRS)
def test_lesion_outputs_the_shortcut(block: str, shortcut: str) -> None:
    torch.manual_seed(1)
    b = create_block(block, 8, 8 // BLOCKS[block].expansion, stride=1, shortcut=shortcut).eval()
    for p in b.parameters():  # make R(x) non-zero
        nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 8, 6, 6)
    full = b(x)
    b.lesioned = True
    cut = b(x)
    if shortcut == "none":
        expected = x  # a plain block of unchanged shape is deleted outright
    else:
        expected = b.shortcut(x)
        if shortcut == "scaled":
            assert torch.allclose(expected, 0.5 * x)
        if b.post_activation:
            expected = F.relu(expected)
    assert torch.allclose(cut, expected), f"{block}/{shortcut}"
    assert not torch.allclose(cut, full)
    b.lesioned = False
    assert torch.equal(b(x), full)  # the switch leaves the weights alone


def test_plain_block_that_changes_shape_is_essential() -> None:
    b = create_block("basic", 8, 16, stride=2, shortcut="none")
    assert not b.removable
    b.lesioned = True
    with pytest.raises(RuntimeError, match="cannot be removed"):
        b(torch.randn(1, 8, 8, 8))
    assert create_block("basic", 8, 8, 1, "none").removable
    assert create_block("basic", 8, 16, 2, "identity").removable


def test_highway_gate_starts_near_sigmoid_of_its_bias() -> None:
    torch.manual_seed(0)
    model = build_model(Candidate(block="highway", gate_bias=-3.0, blocks_per_stage=2), 1, 10, 16)
    gates = [b.gate for b in model.blocks.values() if isinstance(b, HighwayBlock)]
    assert len(gates) == 6
    x = torch.randn(8, 16, 16, 16)
    t = torch.sigmoid(gates[0](x)).detach()
    assert abs(float(t.mean()) - float(torch.sigmoid(torch.tensor(-3.0)))) < 0.05


def test_rezero_alpha_is_a_learned_scalar_from_zero() -> None:
    b = create_block("basic", 8, 8, 1, "rezero")
    assert isinstance(b, ResidualBlock) and b.alpha is not None
    assert float(b.alpha.detach()) == 0.0 and b.alpha.requires_grad
