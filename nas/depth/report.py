"""What :func:`nas.depth.lesion.analyze` found, and its text forms (table, curve, summary).

Two halves of the validation images play two parts (``DepthReport.selection_images``
and ``held_out_images``): the lesion importance, the greedy order and the useful depth
are chosen on the selection half; the accuracy without the removable blocks, the
held-out curve and the random deletions are measured on the other half, which took
no part in choosing, so the cost of removal they report is not flattered by the
choice. ``full_accuracy``/``full_loss`` are the network's own, on every image.

:meth:`DepthReport.to_result` is the report as a search trial records it
(:data:`RESULT_KEYS` names its keys, for the searcher that reads them back).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RESULT_KEYS", "DepthReport"]

RESULT_DIGITS = 6  # a Tune result carries rounded values: smaller, and as precise as useful


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

    def to_result(self) -> dict[str, Any]:
        """Flat values a Ray Tune result can carry, keys in :data:`RESULT_KEYS` order.

        Per-block dicts become ``[name, value]`` pairs (Tune would flatten a dict into one
        key per block), floats of lists are rounded to ``RESULT_DIGITS`` digits with None
        kept, and ``seconds`` is ``depth_seconds`` (the trial has its own ``seconds``).
        """
        return {key: carry(getattr(self, field)) for key, field, carry in _RESULT_FIELDS}

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


def _as_is(value: Any) -> Any:
    return value


def _rounded(values: Iterable[float | None] | None) -> list[float | None]:
    return [None if v is None else round(v, RESULT_DIGITS) for v in values or []]


def _rounded_pairs(pairs: Iterable[tuple[Any, float]]) -> list[list[Any]]:
    return [[key, round(value, RESULT_DIGITS)] for key, value in pairs]


def _rounded_items(values: dict[str, float]) -> list[list[Any]]:
    return _rounded_pairs(values.items())


def _rounded_deletions(deletions: list[tuple[int, list[float]]] | None) -> list[list[Any]]:
    return [[k, _rounded(accs)] for k, accs in deletions or []]


# (key in the trial's result, DepthReport field, how its value is carried), in result order.
_RESULT_FIELDS: tuple[tuple[str, str, Callable[[Any], Any]], ...] = (
    ("useful_blocks", "useful_blocks", _as_is),
    ("total_blocks", "total_blocks", _as_is),
    ("useful_layers", "useful_layers", _as_is),
    ("total_layers", "total_layers", _as_is),
    ("useful_blocks_interval", "useful_blocks_interval", list),
    ("useful_layers_interval", "useful_layers_interval", list),
    ("block_names", "block_names", list),
    ("block_importance", "block_importance", _rounded),
    ("block_loss_increase", "block_loss_increase", _rounded),
    ("essential", "essential", list),
    ("removable", "removable", list),
    ("lesion_curve", "lesion_curve", _rounded_pairs),
    ("loss_curve", "loss_curve", _rounded),
    ("gate_means", "gate_means", _rounded_items),
    ("alphas", "alphas", _rounded_items),
    ("depth_seconds", "seconds", _as_is),
    # decided on one half of the validation images, reported on the other
    ("selection_images", "selection_images", _as_is),
    ("held_out_images", "held_out_images", _as_is),
    ("selection_accuracy", "selection_accuracy", _as_is),
    ("held_out_accuracy", "held_out_accuracy", _as_is),
    ("accuracy_without_removable", "accuracy_without_removable", _as_is),
    ("held_out_curve", "held_out_curve", _rounded),
    ("block_influence", "block_influence", _rounded),
    ("block_cka", "block_cka", _rounded),
    ("branch_ratio", "branch_ratio", _rounded_items),
    ("random_deletions", "random_deletions", _rounded_deletions),
)
# The keys of DepthReport.to_result, in order: what a search's result carries of the report.
RESULT_KEYS: tuple[str, ...] = tuple(key for key, _, _ in _RESULT_FIELDS)
