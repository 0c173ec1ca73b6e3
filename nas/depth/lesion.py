"""Useful depth: how many of a trained network's blocks it actually needs.

A residual block computes ``H(x) = R(x) + S(x)``; after training many blocks
have ``R(x)`` close to zero and can be deleted with little loss (Veit et al.
2016). :func:`analyze` lesions each block alone (``block.lesioned = True``:
the block outputs S(x), no model copy), records the accuracy drop as the
block's importance, then removes the least important blocks greedily while
the accuracy stays within ``tolerance`` of the full network. Highway gate
means, rezero alphas and the size of R(x) against S(x) come from hooks during
one full forward pass.

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
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from nas.models.resnet import ResNet
from nas.training.device import autocast

__all__ = ["DepthReport", "analyze"]

ESSENTIAL_IMPORTANCE = 1.0
# Accuracies are fractions k/n; the slack keeps "exactly at the tolerance" inside it.
_SLACK = 1e-9


@dataclass
class DepthReport:
    """Per-block importance and the depth a trained network actually uses."""

    block_names: list[str]
    block_importance: list[float]
    essential: list[bool]
    full_accuracy: float
    lesion_curve: list[tuple[str, float]]
    removable: list[str]
    useful_blocks: int
    total_blocks: int
    useful_layers: int
    total_layers: int
    tolerance: float
    accuracy_without_removable: float
    gate_means: dict[str, float]
    alphas: dict[str, float]
    branch_ratio: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready types (lesion curve entries as lists)."""
        out = asdict(self)
        out["lesion_curve"] = [[name, acc] for name, acc in self.lesion_curve]
        return out

    def summary(self) -> str:
        """One line: nominal against useful depth and what removing the rest costs."""
        removed = len(self.removable)
        cost = 100.0 * (self.full_accuracy - self.accuracy_without_removable)
        return (f"{self.total_layers} layers, {self.total_blocks} blocks: "
                f"{self.useful_blocks} useful ({self.useful_layers} layers); "
                f"removing the other {removed} costs {cost:.1f} pp")

    def table(self) -> str:
        """A text table, one row per block in forward order."""
        removable = set(self.removable)
        header = f"{'block':<12} {'importance':>10} {'gate/alpha':>10} {'ratio':>8}  status"
        lines = [header, "-" * len(header)]
        for name, imp, essential in zip(self.block_names, self.block_importance, self.essential,
                                        strict=True):
            if name in self.gate_means:
                ga = f"T={self.gate_means[name]:.3f}"
            elif name in self.alphas:
                ga = f"a={self.alphas[name]:+.3f}"
            else:
                ga = "-"
            ratio = f"{self.branch_ratio[name]:.3f}" if name in self.branch_ratio else "-"
            status = ("essential" if essential
                      else "removable" if name in removable else "kept")
            lines.append(f"{name:<12} {imp:>+10.4f} {ga:>10} {ratio:>8}  {status}")
        lines.append(self.summary())
        return "\n".join(lines)


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


def analyze(model: ResNet, inputs: torch.Tensor, targets: torch.Tensor,
            tolerance: float = 0.01, batch_size: int = 1024) -> DepthReport:
    """Lesion every block of a trained ``model`` on ``inputs``/``targets``.

    Importance is the accuracy drop when a block alone is lesioned (1.0 for
    blocks that cannot be removed). The greedy pass removes blocks in order of
    importance, least first, while the accuracy stays at or above
    ``full_accuracy - tolerance``; the first removal that breaks it ends the
    pass and is not kept. Runs in eval mode; the model's training mode and all
    lesion switches are restored afterwards, also on errors.
    """
    if not 0.0 <= tolerance <= 1.0:
        raise ValueError(f"tolerance must be in [0, 1], got {tolerance}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if len(inputs) == 0 or len(inputs) != len(targets):
        raise ValueError(f"need as many targets as inputs, at least one: got "
                         f"{len(inputs)} inputs and {len(targets)} targets")
    started = time.perf_counter()
    named = list(model.blocks.items())
    names = [n for n, _ in named]
    blocks = [b for _, b in named]
    sequence, position = _stage_modules(model, blocks)
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = inputs.device
    inputs, targets = inputs.to(device), targets.to(device)
    n = len(inputs)
    batches = [(inputs[i:i + batch_size], targets[i:i + batch_size])
               for i in range(0, n, batch_size)]
    was_training = model.training
    stats = _Stats(named)

    def run_from(start: int, cache: list[list[torch.Tensor]],
                 keep: list[list[torch.Tensor]] | None = None) -> float:
        """Accuracy when running from stage module ``start``'s input in ``cache`` onward.

        With ``keep``, the inputs of the modules after ``start`` are recorded there.
        """
        correct = 0
        for b, (_, y) in enumerate(batches):
            x = cache[b][start]
            for k in range(start, len(sequence)):
                if keep is not None and k > start:
                    keep[b][k] = x
                x = sequence[k](x)
            correct += int((model.forward_head(x).float().argmax(1) == y).sum())
        return correct / n

    try:
        model.eval()
        for block in blocks:
            block.lesioned = False
        with torch.inference_mode(), autocast(device):
            # One full forward: cache every stage module's input, collect hook statistics.
            cache: list[list[torch.Tensor]] = []
            correct = 0
            for x, y in batches:
                x = model.stem(x)
                row = []
                for module in sequence:
                    row.append(x)
                    x = module(x)
                cache.append(row)
                correct += int((model.forward_head(x).float().argmax(1) == y).sum())
            full = correct / n
            stats.remove()

            essential = [not getattr(b, "removable", True) for b in blocks]
            importance = []
            for i, block in enumerate(blocks):
                if essential[i]:
                    importance.append(ESSENTIAL_IMPORTANCE)
                    continue
                block.lesioned = True
                try:
                    importance.append(full - run_from(position[i], cache))
                finally:
                    block.lesioned = False

            # Greedy: least important first (ties: the later block first).
            order = sorted((i for i in range(len(blocks)) if not essential[i]),
                           key=lambda i: (importance[i], -i))
            current = [list(row) for row in cache]  # inputs under the accepted lesions
            curve: list[tuple[str, float]] = []
            removed: list[int] = []
            accuracy_without = full
            floor = full - tolerance - _SLACK
            for i in order:
                blocks[i].lesioned = True
                trial = [list(row) for row in current]
                acc = run_from(position[i], current, keep=trial)
                curve.append((names[i], acc))
                if acc < floor:
                    blocks[i].lesioned = False
                    break
                removed.append(i)
                current = trial
                accuracy_without = acc
    finally:
        stats.remove()
        for block in blocks:
            block.lesioned = False
        model.train(was_training)

    removable = [names[i] for i in removed]
    removed_layers = sum(blocks[i].layers for i in removed)
    total_layers = int(model.num_layers)
    alphas = {name: float(b.alpha.detach()) for name, b in named
              if getattr(b, "alpha", None) is not None}
    return DepthReport(
        block_names=names,
        block_importance=importance,
        essential=essential,
        full_accuracy=full,
        lesion_curve=curve,
        removable=removable,
        useful_blocks=len(blocks) - len(removed),
        total_blocks=len(blocks),
        useful_layers=total_layers - removed_layers,
        total_layers=total_layers,
        tolerance=float(tolerance),
        accuracy_without_removable=accuracy_without,
        gate_means=stats.gate_means(),
        alphas=alphas,
        branch_ratio=stats.branch_ratio(),
        seconds=time.perf_counter() - started,
    )
