"""Cheap measures of what a block does, read from activations the lesion pass caches anyway.

The lesion importance needs a forward pass per block; these need none beyond the one
full forward :func:`nas.depth.lesion.analyze` runs first, so they cost a few
matrix products. They answer different questions, and where they disagree with the
lesion is itself informative:

- **block influence** ``1 - cos(input, output)`` per image, averaged (Men et al. 2024,
  ShortGPT): how far the block turns its input. 0 for a block whose output is its
  input (a zero branch on an identity shortcut); it says nothing about whether the
  turn matters to the classifier.
- ``‖R(x)‖ / ‖S(x)‖`` (recorded by the lesion pass's hooks as ``branch_ratio``): how
  big the branch is against the shortcut. A small branch can still carry what the
  classifier needs.
- **linear CKA** between a block's output and the next block's output in its stage
  (Kornblith et al. 2019): how similar the two representations are, up to rotation
  and scale. Near 1 means the next block changes little of what this one made.

Also here, Veit et al.'s random deletions: accuracy when k blocks chosen at random are
lesioned together, against the greedy curve; a residual network degrades smoothly,
a plain one falls at once.
"""

from __future__ import annotations

import numpy as np
import torch

# Linear CKA compares image-by-image Gram matrices: cost grows with the square of the
# images, so a fixed subsample keeps it a few products per block on any dataset.
CKA_IMAGES = 256
# Random deletions: at most this many values of k, each with this many draws.
DELETION_KS = 8
DELETION_DRAWS = 4


def block_influence(inputs: torch.Tensor, outputs: torch.Tensor) -> float | None:
    """Mean over images of 1 - cos(input, output); None where the block changes shape."""
    if inputs.shape != outputs.shape:
        return None
    cos = torch.nn.functional.cosine_similarity(inputs.float().flatten(1),
                                                outputs.float().flatten(1), dim=1, eps=1e-12)
    return float((1.0 - cos).mean())


def centred_gram(features: torch.Tensor) -> torch.Tensor:
    """The image-by-image Gram matrix of centred features: what linear CKA compares."""
    flat = features.double().flatten(1)
    flat = flat - flat.mean(dim=0, keepdim=True)
    return flat @ flat.T


def linear_cka(first: torch.Tensor, second: torch.Tensor) -> float:
    """Linear CKA of two activations of the same images (rows): 1 for identical ones,
    invariant to rotation and isotropic scale of either. 0 where one is constant."""
    if len(first) != len(second):
        raise ValueError(f"CKA needs the same images: {len(first)} against {len(second)}")
    return gram_cka(centred_gram(first), centred_gram(second))


def gram_cka(k: torch.Tensor, m: torch.Tensor) -> float:
    """Linear CKA from two centred Gram matrices (a block's, computed once, serves both of
    the comparisons it takes part in)."""
    denominator = float(torch.linalg.norm(k) * torch.linalg.norm(m))
    if denominator == 0.0:
        return 0.0
    return float((k * m).sum()) / denominator


def deletion_plan(removable: list[int], seed: int) -> list[tuple[int, list[list[int]]]]:
    """For up to ``DELETION_KS`` values of k from 1 to every removable block, the draws of k
    blocks (indices into ``removable``'s values) to lesion together; seeded."""
    count = len(removable)
    if count == 0:
        return []
    ks = sorted({int(round(k)) for k in np.linspace(1, count, min(count, DELETION_KS))})
    rng = np.random.default_rng(seed)
    plan = []
    for k in ks:
        draws = 1 if k == count else DELETION_DRAWS  # all of them: one way only
        plan.append((k, [sorted(int(i) for i in rng.choice(removable, size=k, replace=False))
                         for _ in range(draws)]))
    return plan
