"""Batched augmentation of whole-split tensors, on whatever device they live on.

The splits stay as tensors (on the GPU when one is used, as airbench does)
rather than going through a DataLoader, so augmentation has to work on a
whole batch at once too: a per-image Python loop would dominate the cost of
the small networks a search trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nas.data.errors import DataError

AUGMENT_MODES: tuple[str, ...] = ("none", "crop", "crop-flip")


def augment_batch(
    x: torch.Tensor, mode: str, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Randomly augment a batch ``N×C×H×W`` on its own device, without a per-image loop.

    ``"crop"`` zero-pads ``H // 14`` px (at least 1: 1 px for the 16-px digits,
    2 px for 28-px MNIST) and crops back to the original size at a random
    offset per image (a random translation by up to that much; zero is the train
    mean after normalisation).  ``"crop-flip"`` does the CIFAR recipe: 4 px
    pad and random crop, plus a horizontal flip of a random half.  ``"none"``
    returns ``x`` itself.  Random numbers come from ``generator`` (which may
    live on the CPU while ``x`` is on a GPU), so a seeded generator makes the
    result reproducible.
    """
    if mode not in AUGMENT_MODES:
        raise DataError(f"unknown augmentation {mode!r}; choose one of: {', '.join(AUGMENT_MODES)}")
    if mode == "none":
        return x
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects an N×C×H×W batch, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        return x
    # A shift of 2 px on the 16-px digits (upsampled from 8) moves them by a
    # whole source pixel, which costs several points in a 10-epoch run.
    pad = max(1, x.shape[2] // 14) if mode == "crop" else 4
    out = _random_crop(x, pad, generator)
    if mode == "crop-flip":
        flip = _rand(x.shape[0], generator, x.device) < 0.5
        out = torch.where(flip.view(-1, 1, 1, 1), out.flip(3), out)
    return out


def _generator_device(generator: torch.Generator | None, fallback: torch.device) -> torch.device:
    return generator.device if generator is not None else fallback


def _randint(high: int, n: int, generator: torch.Generator | None, device: torch.device):
    """``n`` integers in ``[0, high)`` drawn on the generator's device, returned on ``device``."""
    src = _generator_device(generator, device)
    return torch.randint(0, high, (n,), generator=generator, device=src).to(device)


def _rand(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    src = _generator_device(generator, device)
    return torch.rand(n, generator=generator, device=src).to(device)


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator | None) -> torch.Tensor:
    """Pad by ``pad`` zeros and crop an ``H×W`` window at a random offset per image.

    Two ``gather`` calls pick each image's rows and then its columns, so the
    whole batch is cropped in a couple of kernels on any device.
    """
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = _randint(2 * pad + 1, n, generator, x.device)
    dx = _randint(2 * pad + 1, n, generator, x.device)
    rows = dy[:, None] + torch.arange(h, device=x.device)  # n×h
    cols = dx[:, None] + torch.arange(w, device=x.device)  # n×w
    rows = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    out = padded.gather(2, rows)  # n×c×h×(w+2p)
    cols = cols.view(n, 1, 1, w).expand(n, c, h, w)
    return out.gather(3, cols)
