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
forward caches every block's input and each lesion runs only from block i
onward. The greedy pass keeps the activations of the configuration it has
accepted so far, so adding one more lesion runs only from that block onward
as well. The stages run module by module (``model.stage_modules()``) and the
model's own ``forward_head`` finishes each pass, so nothing here re-implements
the network. This module imports torch only.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.depth.interval import first_crossing, split_halves, useful_interval
from nas.depth.measures import (
    CKA_IMAGES,
    block_influence,
    centred_gram,
    deletion_plan,
    gram_cka,
)
from nas.depth.report import DepthReport
from nas.models.resnet import ResNet
from nas.training.device import autocast

__all__ = ["DepthReport", "analyze"]

ESSENTIAL_IMPORTANCE = 1.0


class _Stats:
    """Forward hooks that collect gate means and branch/shortcut norm ratios."""

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

    def _gate_hook(self, name: str):
        def hook(_module, _inputs, output):
            t = torch.sigmoid(output.float())
            self.gate_sum[name] += float(t.sum())
            self.gate_count[name] += t.numel()
        return hook

    def _branch_hook(self, name: str, block: nn.Module):
        def hook(_module, _inputs, output):
            norm = output.float().flatten(1).norm(dim=1)
            alpha = getattr(block, "alpha", None)
            factor = (alpha.detach().float().abs() if alpha is not None
                      else float(getattr(block, "branch_scale", 1.0)))
            self._pair(name, "r", norm * factor)
        return hook

    def _shortcut_hook(self, name: str):
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


def _stage_modules(model: ResNet, blocks: list[nn.Module]) -> tuple[list[nn.Module], list[int]]:
    """The modules the stages run in order, and where each residual block sits among them.

    Besides blocks the stages may hold what ``nas compress`` left of removed ones.
    """
    sequence = model.stage_modules()
    where = {id(m): k for k, m in enumerate(sequence)}
    if any(id(b) not in where for b in blocks):
        raise ValueError("analyze needs a resnas ResNet whose residual blocks sit in its stages")
    return sequence, [where[id(b)] for b in blocks]


def _stage_of(name: str) -> str:
    """``stages.1.4`` -> ``stages.1``: blocks of one stage share a resolution and width."""
    return name.rsplit(".", 1)[0]


def analyze(model: ResNet, inputs: torch.Tensor, targets: torch.Tensor,
            tolerance: float = 0.01, batch_size: int = 1024, seed: int | None = None
            ) -> DepthReport:
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

    Returns:
        A :class:`DepthReport`: ``useful_layers`` and its ``useful_layers_interval``,
        per-block measures, the lesion curve; ``table()``, ``curve()``, ``summary()``.
    """
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"tolerance must be in [0, 1], got {tolerance}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(f"need as many targets as inputs, at least one: got "
                         f"{len(inputs)} inputs and {len(targets)} targets")
    if seed is None:
        seed = int(getattr(getattr(model, "candidate", None), "seed", 0) or 0)
    started = time.perf_counter()
    named = list(model.blocks.items())
    names = [n for n, _ in named]
    blocks = [b for _, b in named]
    sequence, position = _stage_modules(model, blocks)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = inputs.device
    selection, held_out = split_halves(targets.cpu().numpy(), seed)
    inputs, targets = inputs.to(device), targets.to(device)
    n = len(inputs)
    batches = [(inputs[i:i + batch_size], targets[i:i + batch_size])
               for i in range(0, n, batch_size)]
    # The held-out images of each batch: the random deletions run on those only.
    held_out_rows = [torch.as_tensor(held_out[(held_out >= i) & (held_out < i + batch_size)]
                                     - i, device=device) for i in range(0, n, batch_size)]
    was_training = model.training
    stats = _Stats(named)

    def scored(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image: classified right, and its cross-entropy (both on the CPU)."""
        logits = logits.float()
        return ((logits.argmax(1) == y).cpu(),
                F.cross_entropy(logits, y, reduction="none").cpu())

    def run_from(start: int, cache: list[list[torch.Tensor]],
                 keep: list[list[torch.Tensor]] | None = None,
                 rows: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image correctness and loss when running from stage module ``start``'s
        input in ``cache`` onward. With ``keep``, the inputs of the modules after
        ``start`` are recorded there; with ``rows``, only those images of each batch run.
        """
        right, losses = [], []
        for b, (_, y) in enumerate(batches):
            x = cache[b][start]
            if rows is not None:
                x, y = x[rows[b]], y[rows[b]]
            for k in range(start, len(sequence)):
                if keep is not None and k > start:
                    keep[b][k] = x
                x = sequence[k](x)
            batch_right, batch_losses = scored(model.forward_head(x), y)
            right.append(batch_right)
            losses.append(batch_losses)
        return torch.cat(right), torch.cat(losses)

    def accuracy(right: torch.Tensor, half: np.ndarray = selection) -> float:
        return int(right[half].sum()) / len(half)

    try:
        model.eval()
        for block in blocks:
            block.lesioned = False
        with torch.inference_mode(), autocast(device):
            # One full forward: cache every stage module's input (and the features after
            # the last), collect hook statistics.
            cache: list[list[torch.Tensor]] = []
            right, losses = [], []
            for x, y in batches:
                x = model.stem(x)
                row = []
                for module in sequence:
                    row.append(x)
                    x = module(x)
                cache.append(row + [x])
                batch_right, batch_losses = scored(model.forward_head(x), y)
                right.append(batch_right)
                losses.append(batch_losses)
            full_right, full_losses = torch.cat(right), torch.cat(losses)
            full_selection = accuracy(full_right)
            full_selection_loss = float(full_losses[selection].mean())
            stats.remove()
            influence, cka = _representation(names, position, cache)

            essential = [not getattr(b, "removable", True) for b in blocks]
            importance: list[float] = []
            loss_rise: list[float | None] = []
            for i, block in enumerate(blocks):
                if essential[i]:
                    importance.append(ESSENTIAL_IMPORTANCE)
                    loss_rise.append(None)
                    continue
                block.lesioned = True
                try:
                    lesioned_right, lesioned_losses = run_from(position[i], cache)
                finally:
                    block.lesioned = False
                importance.append(full_selection - accuracy(lesioned_right))
                loss_rise.append(float(lesioned_losses[selection].mean()) - full_selection_loss)

            # Greedy: the smallest loss rise first; exact ties by accuracy drop, then forward
            # order. Essential blocks are never tried.
            order = sorted((i for i in range(len(blocks)) if not essential[i]),
                           key=lambda i: (loss_rise[i], importance[i], i))
            current = [list(row) for row in cache]  # inputs under the lesions so far
            curve: list[tuple[str, float]] = []
            loss_curve: list[float] = []
            curve_right: list[torch.Tensor] = []
            for i in order:  # the whole curve: every removable block goes in turn
                blocks[i].lesioned = True
                trial = [list(row) for row in current]
                step_right, step_losses = run_from(position[i], current, keep=trial)
                curve.append((names[i], accuracy(step_right)))
                loss_curve.append(float(step_losses[selection].mean()))
                curve_right.append(step_right)
                current = trial
            for block in blocks:
                block.lesioned = False
            deletions = []
            for k, draws in deletion_plan(order, seed):
                results = []
                for chosen in draws:
                    for i in chosen:
                        blocks[i].lesioned = True
                    kept_right, _ = run_from(min(position[i] for i in chosen), cache,
                                             rows=held_out_rows)
                    results.append(int(kept_right.sum()) / len(held_out))
                    for i in chosen:
                        blocks[i].lesioned = False
                deletions.append((k, results))
    finally:
        stats.remove()
        for block in blocks:
            block.lesioned = False
        model.train(was_training)

    full_np = full_right.numpy()
    curve_np = (torch.stack(curve_right).numpy() if curve_right
                else np.zeros((0, n), dtype=bool))
    kept = int(first_crossing(np.array([full_selection]),
                              np.array([[acc for _, acc in curve]]), tolerance)[0]) if curve else 0
    held_out_curve = [float(c[held_out].mean()) for c in curve_np]
    full_held_out = float(full_np[held_out].mean())
    removed = order[:kept]
    removed_layers = sum(blocks[i].layers for i in removed)
    total_layers = int(model.num_layers)
    blocks_interval, layers_interval = useful_interval(
        full_np[selection], curve_np[:, selection], [blocks[i].layers for i in order],
        len(blocks), total_layers, tolerance, seed=seed)
    alphas = {name: float(b.alpha.detach()) for name, b in named
              if getattr(b, "alpha", None) is not None}
    return DepthReport(
        block_names=names,
        block_importance=importance,
        essential=essential,
        full_accuracy=int(full_right.sum()) / n,
        block_loss_increase=loss_rise,
        full_loss=float(full_losses.mean()),
        loss_curve=loss_curve,
        useful_blocks_interval=blocks_interval,
        useful_layers_interval=layers_interval,
        lesion_curve=curve,
        removable=[names[i] for i in removed],
        useful_blocks=len(blocks) - len(removed),
        total_blocks=len(blocks),
        useful_layers=total_layers - removed_layers,
        total_layers=total_layers,
        tolerance=float(tolerance),
        accuracy_without_removable=held_out_curve[kept - 1] if kept else full_held_out,
        gate_means=stats.gate_means(),
        alphas=alphas,
        branch_ratio=stats.branch_ratio(),
        seconds=time.perf_counter() - started,
        selection_images=len(selection),
        held_out_images=len(held_out),
        selection_accuracy=full_selection,
        held_out_accuracy=full_held_out,
        held_out_curve=held_out_curve,
        block_influence=influence,
        block_cka=cka,
        random_deletions=deletions,
    )


def _representation(names: list[str], position: list[int], cache: list[list[torch.Tensor]]
                    ) -> tuple[list[float | None], list[float | None]]:
    """Block influence over every image and CKA with the next block of the same stage over
    the first ``CKA_IMAGES``, from the cached inputs (a block's output is the next stage
    module's input, or the features after the last)."""
    grams: dict[int, torch.Tensor] = {}

    def gram(k: int) -> torch.Tensor:
        """The centred Gram matrix of stage module ``k``'s input on the first images, made
        once: a block's output is compared with the one before it and the one after."""
        if k not in grams:
            parts, have = [], 0
            for row in cache:
                if have >= CKA_IMAGES:
                    break
                parts.append(row[k][:CKA_IMAGES - have])
                have += len(parts[-1])
            grams[k] = centred_gram(torch.cat(parts))
        return grams[k]

    influence: list[float | None] = []
    for p in position:
        per_batch = [block_influence(row[p], row[p + 1]) for row in cache]
        if per_batch[0] is None:
            influence.append(None)
            continue
        sizes = [len(row[p]) for row in cache]
        influence.append(sum(v * m for v, m in zip(per_batch, sizes, strict=True)) / sum(sizes))
    cka: list[float | None] = []
    for i, p in enumerate(position):
        following = next((j for j in range(i + 1, len(names))
                          if _stage_of(names[j]) == _stage_of(names[i])), None)
        cka.append(None if following is None else
                   gram_cka(gram(p + 1), gram(position[following] + 1)))
    return influence, cka
