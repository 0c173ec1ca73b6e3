"""What :func:`nas.depth.lesion.analyze` found, and its text forms (table, curve, summary).

Two halves of the validation images play two parts (``DepthReport.selection_images``
and ``held_out_images``): the lesion importance, the greedy order and the useful depth
are chosen on the selection half; the accuracy without the removable blocks, the
held-out curve and the random deletions are measured on the other half, which took
no part in choosing, so the cost of removal they report is not flattered by the
choice. ``full_accuracy``/``full_loss`` are the network's own, on every image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DepthReport"]


@dataclass
class DepthReport:
    """Per-block importance and the depth a trained network actually uses."""

    block_names: list[str]
    # Accuracy drop when the block alone is lesioned (selection half; 1.0: essential).
    block_importance: list[float]
    essential: list[bool]
    full_accuracy: float
    # The rise in mean cross-entropy when the block alone is lesioned (None: essential).
    block_loss_increase: list[float | None]
    full_loss: float
    # The whole greedy curve on the selection half: accuracy and mean loss after each
    # removal, every removable block gone at the end; ``lesion_curve`` names the blocks.
    loss_curve: list[float]
    # 90% bootstrap intervals (over the selection images) of the useful depth.
    useful_blocks_interval: tuple[int, int]
    useful_layers_interval: tuple[int, int]
    lesion_curve: list[tuple[str, float]]
    removable: list[str]
    useful_blocks: int
    total_blocks: int
    useful_layers: int
    total_layers: int
    tolerance: float
    # Held-out half: the accuracy without the removable blocks (the honest cost).
    accuracy_without_removable: float
    gate_means: dict[str, float]
    alphas: dict[str, float]
    branch_ratio: dict[str, float]
    seconds: float
    selection_images: int = 0
    held_out_images: int = 0
    selection_accuracy: float = 0.0  # the full network on the selection half
    held_out_accuracy: float = 0.0   # ... and on the held-out half
    held_out_curve: list[float] | None = None  # the greedy curve on the held-out half
    # 1 - cos(input, output), and linear CKA with the next block of its stage (None where
    # undefined: a block that changes shape, the last block of a stage).
    block_influence: list[float | None] | None = None
    block_cka: list[float | None] | None = None
    # Veit et al.: (k, held-out accuracy of each draw of k random removable blocks lesioned)
    random_deletions: list[tuple[int, list[float]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready types (pairs as lists)."""
        out = asdict(self)
        out["lesion_curve"] = [[name, acc] for name, acc in self.lesion_curve]
        out["random_deletions"] = [[k, list(accs)] for k, accs in self.random_deletions or []]
        return out

    @property
    def removal_cost(self) -> float:
        """Held-out accuracy lost by removing the removable blocks (negative: gained)."""
        return self.held_out_accuracy - self.accuracy_without_removable

    def summary(self) -> str:
        """One line: nominal against useful depth and what removing the rest costs."""
        low, high = self.useful_layers_interval
        return (f"{self.total_layers} layers, {self.total_blocks} blocks: "
                f"{self.useful_blocks} useful ({self.useful_layers} layers, 90% interval "
                f"{low}-{high}); removing the other {len(self.removable)} costs "
                f"{100.0 * self.removal_cost:.1f} pp on {self.held_out_images} held-out images")

    def curve(self) -> str:
        """The whole lesion curve as text: after each removal in the greedy order, the
        accuracy on both halves and the loss, and where the tolerance is crossed."""
        floor = self.selection_accuracy - self.tolerance
        held_out = self.held_out_curve or [float("nan")] * len(self.lesion_curve)
        header = (f"{'removed':>7}  {'block':<12} {'selection':>9} {'held-out':>9} "
                  f"{'sel. loss':>9}")
        lines = [header, "-" * len(header),
                 f"{0:>7}  {'(none)':<12} {self.selection_accuracy:>9.2%} "
                 f"{self.held_out_accuracy:>9.2%} {'':>9}"]
        kept = len(self.removable)
        for k, ((name, accuracy), loss, other) in enumerate(
                zip(self.lesion_curve, self.loss_curve, held_out, strict=True), start=1):
            mark = "  <- crosses the tolerance" if k == kept + 1 else ""
            lines.append(f"{k:>7}  {name:<12} {accuracy:>9.2%} {other:>9.2%} "
                         f"{loss:>9.4f}{mark}")
        lines.append(f"tolerance {self.tolerance:.2%} on the {self.selection_images} selection "
                     f"images: {kept} removable before the curve falls below {floor:.2%}")
        if self.random_deletions:
            means = ", ".join(f"k={k} {sum(accs) / len(accs):.1%}"
                              for k, accs in self.random_deletions)
            lines.append(f"random deletions (held-out, mean of draws): {means}")
        return "\n".join(lines)

    def table(self) -> str:
        """A text table, one row per block in forward order."""
        removable = set(self.removable)
        influence = self.block_influence or [None] * len(self.block_names)
        cka = self.block_cka or [None] * len(self.block_names)
        header = (f"{'block':<12} {'importance':>10} {'loss rise':>10} {'gate/alpha':>10} "
                  f"{'ratio':>7} {'influence':>9} {'CKA next':>8}  status")
        lines = [header, "-" * len(header)]
        for k, name in enumerate(self.block_names):
            if name in self.gate_means:
                ga = f"T={self.gate_means[name]:.3f}"
            elif name in self.alphas:
                ga = f"a={self.alphas[name]:+.3f}"
            else:
                ga = "-"
            ratio = f"{self.branch_ratio[name]:.3f}" if name in self.branch_ratio else "-"
            status = ("essential" if self.essential[k]
                      else "removable" if name in removable else "kept")
            rise = self.block_loss_increase[k]
            lines.append(f"{name:<12} {self.block_importance[k]:>+10.4f} "
                         f"{'-' if rise is None else f'{rise:+.4f}':>10} {ga:>10} {ratio:>7} "
                         f"{_number(influence[k]):>9} {_number(cka[k]):>8}  {status}")
        lines.append(self.summary())
        return "\n".join(lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
