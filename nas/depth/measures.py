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

:class:`BranchStatistics` collects what hooks see during the full forward pass (highway
gate means, ``branch_ratio``); :func:`mean_influence` and :func:`next_block_cka` read
influence and CKA off the activations that pass cached
(:class:`nas.depth.forward_cache.ForwardCache`, ``activations[batch][module]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

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


Activations = Sequence[Sequence[torch.Tensor]]  # [batch][stage module]: each module's input


def mean_influence(activations: Activations, module_index: int) -> float | None:
    """:func:`block_influence` of stage module ``module_index`` over every cached image (the
    next module's input is its output); None where the block changes shape."""
    per_batch = [block_influence(row[module_index], row[module_index + 1])
                 for row in activations]
    if per_batch[0] is None:
        return None
    sizes = [len(row[module_index]) for row in activations]
    return sum(v * m for v, m in zip(per_batch, sizes, strict=True)) / sum(sizes)


def next_block_cka(activations: Activations, module_indices: list[int], stages: list[int]
                   ) -> list[float | None]:
    """Per block: linear CKA of its output with the output of the next block of the same
    stage, over the first ``CKA_IMAGES`` cached images (None for a stage's last block).

    ``module_indices`` and ``stages``: each block's stage module and stage, forward order.
    """
    grams: dict[int, torch.Tensor] = {}

    def gram(k: int) -> torch.Tensor:
        """The centred Gram matrix of stage module ``k``'s input on the first images, made
        once: a block's output is compared with the one before it and the one after."""
        if k not in grams:
            parts, have = [], 0
            for row in activations:
                if have >= CKA_IMAGES:
                    break
                parts.append(row[k][:CKA_IMAGES - have])
                have += len(parts[-1])
            grams[k] = centred_gram(torch.cat(parts))
        return grams[k]

    cka: list[float | None] = []
    for i, k in enumerate(module_indices):
        following = next((j for j in range(i + 1, len(stages)) if stages[j] == stages[i]), None)
        cka.append(None if following is None else
                   gram_cka(gram(k + 1), gram(module_indices[following] + 1)))
    return cka


Hook = Callable[[nn.Module, Any, torch.Tensor], None]


class BranchStatistics:
    """Forward hooks that collect highway gate means and the ``‖R(x)‖ / ‖S(x)‖`` ratios of
    the blocks in ``blocks`` (name, block) over the passes they see; :meth:`remove` them
    once the full forward pass is done (a lesioned block runs no branch)."""

    def __init__(self, blocks: list[tuple[str, nn.Module]]) -> None:
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        self.gate_sum: dict[str, float] = {}
        self.gate_count: dict[str, int] = {}
        self.ratio_sum: dict[str, float] = {}
        self.ratio_count: dict[str, int] = {}
        self._pending: dict[str, tuple[str, torch.Tensor]] = {}
        for name, block in blocks:
            gate = getattr(block, "gate", None)
            if isinstance(gate, nn.Module):
                self.gate_sum[name], self.gate_count[name] = 0.0, 0
                self.handles.append(gate.register_forward_hook(self._gate_hook(name)))
            if getattr(block, "has_shortcut", False):
                self.ratio_sum[name], self.ratio_count[name] = 0.0, 0
                self.handles.append(
                    block.branch.register_forward_hook(self._branch_hook(name, block)))
                self.handles.append(
                    block.shortcut.register_forward_hook(self._shortcut_hook(name)))

    def _gate_hook(self, name: str) -> Hook:
        def hook(_module, _inputs, output):
            t = torch.sigmoid(output.float())
            self.gate_sum[name] += float(t.sum())
            self.gate_count[name] += t.numel()
        return hook

    def _branch_hook(self, name: str, block: nn.Module) -> Hook:
        def hook(_module, _inputs, output):
            norm = output.float().flatten(1).norm(dim=1)
            alpha = getattr(block, "alpha", None)
            factor = (alpha.detach().float().abs() if alpha is not None
                      else float(getattr(block, "branch_scale", 1.0)))
            self._pair(name, "r", norm * factor)
        return hook

    def _shortcut_hook(self, name: str) -> Hook:
        def hook(_module, _inputs, output):
            self._pair(name, "s", output.float().flatten(1).norm(dim=1))
        return hook

    def _pair(self, name: str, kind: str, norm: torch.Tensor) -> None:
        """Blocks call S before R or after it: add the ratio once both norms are in."""
        other = self._pending.pop(name, None)
        if other is None or other[0] == kind:
            self._pending[name] = (kind, norm)
            return
        r, s = (norm, other[1]) if kind == "r" else (other[1], norm)
        self.ratio_sum[name] += float((r / s.clamp_min(1e-12)).sum())
        self.ratio_count[name] += len(r)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def gate_means(self) -> dict[str, float]:
        return {k: self.gate_sum[k] / self.gate_count[k]
                for k in self.gate_sum if self.gate_count[k]}

    def branch_ratio(self) -> dict[str, float]:
        return {k: self.ratio_sum[k] / self.ratio_count[k]
                for k in self.ratio_sum if self.ratio_count[k]}


def rezero_alphas(blocks: list[tuple[str, nn.Module]]) -> dict[str, float]:
    """The learned branch factor of each block that has one (rezero shortcuts)."""
    return {name: float(block.alpha.detach()) for name, block in blocks
            if getattr(block, "alpha", None) is not None}
