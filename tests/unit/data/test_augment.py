"""Tests for nas.data's augment_batch: random crops and flips of a whole batch at once."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nas.data import DataError, augment_batch

# --------------------------------------------------------------------------- augment_batch


def crop_matches(x: torch.Tensor, out: torch.Tensor, pad: int) -> torch.Tensor:
    """For each image, which of the (2p+1)² crops of the zero-padded input it equals."""
    h, w = x.shape[2:]
    padded = F.pad(x, (pad, pad, pad, pad))
    size = 2 * pad + 1
    hits = [
        (out == padded[:, :, dy : dy + h, dx : dx + w]).flatten(1).all(1)
        for dy in range(size)
        for dx in range(size)
    ]
    return torch.stack(hits, dim=1)


def test_augment_none_is_identity() -> None:
    x = torch.randn(4, 3, 8, 8)
    assert augment_batch(x, "none") is x


@pytest.mark.parametrize(("size", "pad"), [(16, 1), (28, 2)])
def test_augment_crop_is_a_random_translation(size: int, pad: int) -> None:
    x = torch.rand(400, 2, size, size) + 1.0  # no zeros, so every crop is recognisable
    out = augment_batch(x, "crop", torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    hits = crop_matches(x, out, pad=pad)
    assert (hits.sum(1) == 1).all()  # every image is exactly one crop of its padded self
    offset = hits.float().argmax(1)
    side = 2 * pad + 1
    assert len(set(offset.tolist())) == side * side  # every shift occurs
    unshifted = offset == (side * side) // 2  # the centre crop is the original image
    assert 0 < int(unshifted.sum()) < 400 // 2
    assert torch.equal(out[unshifted], x[unshifted])
    # a shifted image keeps the pixels that stay inside and gains only zero padding
    moved = ~unshifted
    kept = (out[moved] != 0).flatten(1).sum(1)
    assert (kept < 2 * size * size).all() and (kept >= 2 * (size - pad) ** 2).all()


def test_augment_crop_flip_flips_about_half() -> None:
    x = torch.rand(1000, 3, 8, 8) + 1.0
    out = augment_batch(x, "crop-flip", torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    plain = crop_matches(x, out, pad=4).any(1)
    flipped = crop_matches(x.flip(3), out, pad=4).any(1)
    assert (plain ^ flipped).all()  # each image is a crop of itself or of its mirror image
    assert 400 < int(flipped.sum()) < 600


def test_augment_deterministic_with_generator() -> None:
    x = torch.randn(64, 3, 16, 16)
    for mode in ("crop", "crop-flip"):
        a = augment_batch(x, mode, torch.Generator().manual_seed(7))
        b = augment_batch(x, mode, torch.Generator().manual_seed(7))
        c = augment_batch(x, mode, torch.Generator().manual_seed(8))
        assert torch.equal(a, b) and not torch.equal(a, c)


def test_augment_unknown_mode() -> None:
    with pytest.raises(DataError, match="crop-flip"):
        augment_batch(torch.zeros(1, 1, 4, 4), "rotate")
