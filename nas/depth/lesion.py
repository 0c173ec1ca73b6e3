"""Useful depth: how many of a trained network's blocks it actually needs.

A residual block computes ``H(x) = R(x) + S(x)``; after training many blocks
have ``R(x)`` close to zero and can be deleted with little loss (Veit et al.
2016). :func:`analyze` lesions each block alone (``block.lesioned = True``:
the block outputs S(x), no model copy), records the accuracy drop as the
block's importance and the rise in validation loss beside it, then removes
blocks greedily, smallest loss rise first, while the accuracy stays within
``tolerance`` of the full network. The loss orders them because it is
continuous: most blocks of a trained residual network change no prediction
when lesioned (an accuracy drop of exactly 0), but each moves the loss.
The pass goes on past the first removal that breaks the tolerance until
every removable block is gone (the whole lesion curve); the useful depth is
read off that curve where it first crosses the tolerance, and a bootstrap
over the validation images (:mod:`nas.depth.interval`) gives it a 90%
interval from the same per-image results. All of that is decided on one half
of the validation images; the other half (held out, :func:`split_halves`)
reports the accuracy without the removable blocks, so choosing and reporting
never share an image. Highway gate means, rezero alphas and the size of R(x)
against S(x) come from hooks during one full forward pass, block influence and
CKA (:mod:`nas.depth.measures`) from the activations it caches; Veit et al.'s
random deletions reuse that cache too.

Why it is fast: lesioning block i changes nothing before it, so one full
forward caches every block's input (:class:`~nas.depth.forward_cache.ForwardCache`)
and each lesion runs only from block i onward. The greedy pass keeps the
activations of the configuration it has accepted so far, so adding one more
lesion runs only from that block onward as well. The stages run module by
module (``model.stage_modules()``) and the model's own ``forward_head``
finishes each pass, so nothing here re-implements the network.

:func:`analyze` only orchestrates; each step is a function of its own, testable on
its own: :func:`single_lesions`, :func:`greedy_curve`, :func:`random_deletions`.
This module imports torch only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from nas.depth.forward_cache import BlockSite, ForwardCache, Scores, block_sites
from nas.depth.interval import first_crossing, split_halves, useful_interval
from nas.depth.measures import (
    BranchStatistics,
    deletion_plan,
    mean_influence,
    next_block_cka,
    rezero_alphas,
)
from nas.depth.report import DepthReport
from nas.models.resnet import ResNet
from nas.training.device import autocast

__all__ = ["DepthReport", "GreedyCurve", "SingleLesions", "analyze", "greedy_curve",
           "random_deletions", "single_lesions"]

ESSENTIAL_IMPORTANCE = 1.0


def analyze(model: ResNet, inputs: torch.Tensor, targets: torch.Tensor,
            tolerance: float = 0.01, batch_size: int = 1024, seed: int | None = None,
            with_deletions: bool = True) -> DepthReport:
    """Lesion every block of a trained ``model`` on ``inputs``/``targets``.

    The images are split into two halves for ``seed`` (default: the model's candidate
    seed). On the selection half: importance is the accuracy drop when a block alone
    is lesioned (1.0 for blocks that cannot be removed), and beside it the rise in
    mean cross-entropy; the greedy pass removes blocks in order of that loss rise,
    smallest first (then the accuracy drop, then forward order), and goes on until
    every removable block is gone; the removable blocks are the prefix of that order
    before the accuracy first falls below the half's full accuracy minus
    ``tolerance``. The held-out half gets the same curve and the random deletions,
    and says what removing the removable blocks costs. ``seed`` also seeds the
    bootstrap and the random draws. Runs in eval mode; the model's training mode and
    all lesion switches are restored afterwards, also on errors.

    Args:
        model: a trained network (``TrainResult.model``, ``nas.load_checkpoint``).
        inputs, targets: the validation images and labels it is judged on.
        tolerance: how much accuracy removing blocks may cost (0.01: one point).
        batch_size: images per forward pass.
        seed: fixes the halves, the bootstrap and the random deletions.
        with_deletions: false skips Veit et al.'s random deletions (a third of the
            analysis's time; the report's ``random_deletions`` is then None). A search
            records them only for the trials its report can show (:mod:`nas.tuning.trial`).

    Returns:
        A :class:`DepthReport`: ``useful_layers`` and its ``useful_layers_interval``,
        per-block measures, the lesion curve; ``table()``, ``curve()``, ``summary()``.
    """
    _check_arguments(inputs, targets, tolerance, batch_size)
    if seed is None:
        seed = int(getattr(getattr(model, "candidate", None), "seed", 0) or 0)
    started = time.perf_counter()
    sites = block_sites(model)
    named = [(site.name, site.block) for site in sites]
    device = _device_of(model, inputs)
    selection, held_out = split_halves(targets.cpu().numpy(), seed)
    was_training = model.training
    statistics = BranchStatistics(named)
    try:
        model.eval()
        _clear_lesions(sites)
        with torch.inference_mode(), autocast(device):
            cache, full = ForwardCache.record(model, inputs.to(device), targets.to(device),
                                              batch_size)
            statistics.remove()  # the hooks were for the full pass only
            influence = [mean_influence(cache.activations, s.module_index) for s in sites]
            cka = next_block_cka(cache.activations, [s.module_index for s in sites],
                                 [s.stage for s in sites])
            singles = single_lesions(cache, sites, full, selection)
            curve = greedy_curve(cache, sites, singles.greedy_order(), selection)
            deletions = (random_deletions(cache, sites, curve.order, held_out, seed)
                         if with_deletions else None)
    finally:
        statistics.remove()
        _clear_lesions(sites)
        model.train(was_training)
    return _report(sites, int(model.num_layers), full, (selection, held_out), singles, curve,
                   tolerance, seed, started, gate_means=statistics.gate_means(),
                   alphas=rezero_alphas(named), branch_ratio=statistics.branch_ratio(),
                   block_influence=influence, block_cka=cka, random_deletions=deletions)


def _check_arguments(inputs: torch.Tensor, targets: torch.Tensor, tolerance: float,
                     batch_size: int) -> None:
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"tolerance must be in [0, 1], got {tolerance}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(f"need as many targets as inputs, at least one: got "
                         f"{len(inputs)} inputs and {len(targets)} targets")


def _device_of(model: ResNet, inputs: torch.Tensor) -> torch.device:
    """Where the model runs (a model without parameters runs where its inputs are)."""
    try:
        return next(model.parameters()).device
    except StopIteration:
        return inputs.device


def _clear_lesions(sites: list[BlockSite]) -> None:
    for site in sites:
        site.block.lesioned = False


@contextmanager
def _lesioned(sites: list[BlockSite]) -> Iterator[None]:
    """The blocks of ``sites`` lesioned together, and restored however the block ends."""
    for site in sites:
        site.block.lesioned = True
    try:
        yield
    finally:
        _clear_lesions(sites)


@dataclass(frozen=True)
class SingleLesions:
    """Each block lesioned alone, measured on the selection half (forward order)."""

    importance: list[float]  # accuracy drop; ESSENTIAL_IMPORTANCE where it cannot be lesioned
    loss_rise: list[float | None]  # rise in mean cross-entropy; None where essential
    essential: list[bool]

    def greedy_order(self) -> list[int]:
        """The removable blocks, smallest loss rise first; exact ties by accuracy drop, then
        forward order. The loss decides because it is continuous: most lesions of a trained
        residual network change no prediction at all."""
        return sorted((i for i, essential in enumerate(self.essential) if not essential),
                      key=lambda i: (self.loss_rise[i], self.importance[i], i))


def single_lesions(cache: ForwardCache, sites: list[BlockSite], full: Scores,
                   selection: np.ndarray) -> SingleLesions:
    """Lesion each removable block alone, running from its own module on (``cache`` holds
    the unlesioned inputs), against the full network's ``full`` scores on ``selection``."""
    full_accuracy, full_loss = full.accuracy(selection), full.mean_loss(selection)
    essential = [not getattr(site.block, "removable", True) for site in sites]
    importance: list[float] = []
    loss_rise: list[float | None] = []
    for site, cannot_go in zip(sites, essential, strict=True):
        if cannot_go:
            importance.append(ESSENTIAL_IMPORTANCE)
            loss_rise.append(None)
            continue
        with _lesioned([site]):
            lesioned = cache.run_from(site.module_index)
        importance.append(full_accuracy - lesioned.accuracy(selection))
        loss_rise.append(lesioned.mean_loss(selection) - full_loss)
    return SingleLesions(importance, loss_rise, essential)


@dataclass(frozen=True)
class GreedyCurve:
    """The network after each removal of the greedy pass, every removable block gone at
    the end."""

    order: list[int]  # indices into the blocks, in removal order
    points: list[tuple[str, float]]  # the block removed, selection accuracy after it
    losses: list[float]  # selection mean loss after each removal
    right: list[torch.Tensor]  # per image (all of them), classified right after each removal

    def removable(self, full_accuracy: float, tolerance: float) -> int:
        """How many removals stay within ``tolerance`` of ``full_accuracy`` before the
        first that does not: the removable prefix of the order."""
        if not self.points:
            return 0
        return int(first_crossing(np.array([full_accuracy]),
                                  np.array([[acc for _, acc in self.points]]), tolerance)[0])

    def correct(self, images: int) -> np.ndarray:
        """(removals, images): 0/1 per image after each removal, what the bootstrap resamples."""
        if not self.right:
            return np.zeros((0, images), dtype=bool)
        return torch.stack(self.right).numpy()


def greedy_curve(cache: ForwardCache, sites: list[BlockSite], order: list[int],
                 selection: np.ndarray) -> GreedyCurve:
    """Lesion the blocks ``order`` names one after another, keeping the earlier lesions:
    each step runs from the block it adds, on the activations of the step before."""
    points, losses, right = [], [], []
    current = cache
    try:
        for i in order:
            sites[i].block.lesioned = True
            scores, current = current.advance(sites[i].module_index)
            points.append((sites[i].name, scores.accuracy(selection)))
            losses.append(scores.mean_loss(selection))
            right.append(scores.right)
    finally:
        _clear_lesions(sites)
    return GreedyCurve(list(order), points, losses, right)


def random_deletions(cache: ForwardCache, sites: list[BlockSite], order: list[int],
                     held_out: np.ndarray, seed: int) -> list[tuple[int, list[float]]]:
    """Veit et al.: held-out accuracy with k of the removable blocks (``order``), drawn at
    random (:func:`~nas.depth.measures.deletion_plan`), lesioned together."""
    rows = cache.rows_of(held_out)  # the random deletions run on the held-out images only
    deletions = []
    for k, draws in deletion_plan(order, seed):
        results = []
        for chosen in draws:
            with _lesioned([sites[i] for i in chosen]):
                kept = cache.run_from(min(sites[i].module_index for i in chosen), rows=rows)
            results.append(int(kept.right.sum()) / len(held_out))
        deletions.append((k, results))
    return deletions


def _report(sites: list[BlockSite], total_layers: int, full: Scores,
            halves: tuple[np.ndarray, np.ndarray], singles: SingleLesions, curve: GreedyCurve,
            tolerance: float, seed: int, started: float, **measures: Any) -> DepthReport:
    """The report: where the curve crosses the tolerance on the selection half, its
    bootstrap interval, what the removal costs on the held-out half, and the one-pass
    ``measures`` (gate means, alphas, branch ratios, influence, CKA, random deletions) as
    given. ``seconds`` counts from ``started`` to the end of the bootstrap."""
    selection, held_out = halves
    full_accuracy = full.accuracy(selection)
    full_correct = full.right.numpy()
    curve_correct = curve.correct(len(full_correct))
    kept = curve.removable(full_accuracy, tolerance)
    held_out_curve = [float(c[held_out].mean()) for c in curve_correct]
    full_held_out = float(full_correct[held_out].mean())
    removed = curve.order[:kept]
    removed_layers = sum(sites[i].block.layers for i in removed)
    blocks_interval, layers_interval = useful_interval(
        full_correct[selection], curve_correct[:, selection],
        [sites[i].block.layers for i in curve.order], len(sites), total_layers, tolerance,
        seed=seed)
    return DepthReport(
        block_names=[site.name for site in sites],
        block_importance=singles.importance,
        essential=singles.essential,
        full_accuracy=int(full.right.sum()) / len(full_correct),
        block_loss_increase=singles.loss_rise,
        full_loss=float(full.losses.mean()),
        loss_curve=curve.losses,
        useful_blocks_interval=blocks_interval,
        useful_layers_interval=layers_interval,
        lesion_curve=curve.points,
        removable=[sites[i].name for i in removed],
        useful_blocks=len(sites) - len(removed),
        total_blocks=len(sites),
        useful_layers=total_layers - removed_layers,
        total_layers=total_layers,
        tolerance=float(tolerance),
        accuracy_without_removable=held_out_curve[kept - 1] if kept else full_held_out,
        selection_images=len(selection),
        held_out_images=len(held_out),
        selection_accuracy=full_accuracy,
        held_out_accuracy=full_held_out,
        held_out_curve=held_out_curve,
        seconds=time.perf_counter() - started,
        **measures,
    )
