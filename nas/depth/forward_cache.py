"""One full forward pass, kept: every stage module's input, so a lesion reruns only what it changes.

Lesioning block i changes nothing before it, so :class:`ForwardCache` records, per batch,
the input of every module the stages run (``ResNet.stage_modules()``: residual blocks and
what ``nas compress`` left of removed ones) and the features after the last. A lesion
then runs from block i's module onward and finishes with the model's own
``forward_head``: nothing here re-implements the network. Callers run it under
``torch.inference_mode()`` (and the device's autocast), as :func:`nas.depth.analyze` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.models.blocks import ResidualBlock
from nas.models.resnet import ResNet

__all__ = ["BlockSite", "ForwardCache", "Scores", "block_sites"]


@dataclass(frozen=True)
class BlockSite:
    """A residual block as the cache sees it: which module of the stages it is."""

    name: str  # ``stages.{stage}.{index}``, as in ``ResNet.blocks``
    stage: int
    module_index: int  # index among ``ResNet.stage_modules()``: the cache column of its input
    block: ResidualBlock


def block_sites(model: ResNet) -> list[BlockSite]:
    """The model's residual blocks in forward order, with where each sits among the modules
    the stages run.

    Raises:
        ValueError: a residual block of ``model.blocks`` is not a module of a stage (the
            cache could not start a pass at it).
    """
    first_of_stage = np.cumsum([0] + [len(stage) for stage in model.stages])
    sites = [BlockSite(position.name, position.stage,
                       int(first_of_stage[position.stage]) + position.index, block)
             for position, block in model.named_blocks()]
    if [site.name for site in sites] != list(model.blocks):
        raise ValueError("analyze needs a resnas ResNet whose residual blocks sit in its stages")
    return sites


@dataclass(frozen=True)
class Scores:
    """Per image, in input order: classified right, and its cross-entropy (both on the CPU),
    so that any subset of the images (a half, a bootstrap resample) is scored later
    without another forward pass."""

    right: torch.Tensor
    losses: torch.Tensor

    @classmethod
    def of(cls, logits: torch.Tensor, targets: torch.Tensor) -> Scores:
        logits = logits.float()
        return cls((logits.argmax(1) == targets).cpu(),
                   F.cross_entropy(logits, targets, reduction="none").cpu())

    @classmethod
    def concatenate(cls, parts: list[Scores]) -> Scores:
        return cls(torch.cat([p.right for p in parts]), torch.cat([p.losses for p in parts]))

    def accuracy(self, images: np.ndarray) -> float:
        """The share of ``images`` (indices) classified right."""
        return int(self.right[images].sum()) / len(images)

    def mean_loss(self, images: np.ndarray) -> float:
        return float(self.losses[images].mean())


class ForwardCache:
    """Each batch's input to every stage module (``activations[batch][k]``; the last entry
    of a batch is the features after the last module), from one pass of the model.

    The activations are those of the lesion switches in force when they were recorded:
    :meth:`record` with none, :meth:`advance` with one more.
    """

    def __init__(self, model: ResNet, modules: list[nn.Module], targets: list[torch.Tensor],
                 activations: list[list[torch.Tensor]], batch_size: int) -> None:
        self.model = model
        self.modules = modules
        self.targets = targets
        self.activations = activations
        self.batch_size = batch_size

    @classmethod
    def record(cls, model: ResNet, inputs: torch.Tensor, targets: torch.Tensor,
               batch_size: int) -> tuple[ForwardCache, Scores]:
        """One full forward pass of ``model`` in batches of ``batch_size``, cached, and how
        it scored on every image (forward hooks on the model see this pass)."""
        modules = model.stage_modules()
        starts = range(0, len(inputs), batch_size)
        batch_targets = [targets[i:i + batch_size] for i in starts]
        activations, scores = [], []
        for i, y in zip(starts, batch_targets, strict=True):
            x = model.stem(inputs[i:i + batch_size])
            row = []
            for module in modules:
                row.append(x)
                x = module(x)
            activations.append([*row, x])
            scores.append(Scores.of(model.forward_head(x), y))
        return cls(model, modules, batch_targets, activations, batch_size), \
            Scores.concatenate(scores)

    def rows_of(self, images: np.ndarray) -> list[torch.Tensor]:
        """Which rows of each batch ``images`` (sorted indices into the inputs) are: what
        :meth:`run_from` takes to run those images only."""
        device = self.targets[0].device
        return [torch.as_tensor(images[(images >= start) & (images < start + self.batch_size)]
                                - start, device=device)
                for start in range(0, self.batch_size * len(self.targets), self.batch_size)]

    def run_from(self, start: int, rows: list[torch.Tensor] | None = None) -> Scores:
        """The scores when the stages run on from module ``start``'s cached input under the
        lesion switches in force now; with ``rows`` (:meth:`rows_of`), those images only."""
        return self._run(start, rows=rows)

    def advance(self, start: int) -> tuple[Scores, ForwardCache]:
        """Like :meth:`run_from` (every image), and a cache of this run: the modules after
        ``start`` get the inputs it gave them, so the next lesion runs from its own block
        on top of the switches in force now."""
        successor = ForwardCache(self.model, self.modules, self.targets,
                                 [list(row) for row in self.activations], self.batch_size)
        return self._run(start, record=successor.activations), successor

    def _run(self, start: int, rows: list[torch.Tensor] | None = None,
             record: list[list[torch.Tensor]] | None = None) -> Scores:
        scores = []
        for b, y in enumerate(self.targets):
            x = self.activations[b][start]
            if rows is not None:
                x, y = x[rows[b]], y[rows[b]]
            for k in range(start, len(self.modules)):
                if record is not None and k > start:
                    record[b][k] = x
                x = self.modules[k](x)
            scores.append(Scores.of(self.model.forward_head(x), y))
        return Scores.concatenate(scores)
