"""Remove the blocks that useful-depth analysis found removable, fine-tune, compare.

The proof that the measurement is right: a network without its removable blocks
should keep the full network's accuracy with fewer parameters and more images per
second. Fine-tuning alone raises accuracy, so the compressed network is compared with
a control: the full network fine-tuned with the same epochs, schedule and seed. The
cost of removal is compressed minus control; the speed is measured in alternation
with the full network (:mod:`nas.training.speed`). Torch only.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from nas.data import Splits
from nas.depth.report import DepthReport
from nas.models.resnet import ResNet
from nas.training.loop import evaluate, train
from nas.training.speed import SpeedRatio, compare_speed

FINE_TUNE_LR_FACTOR = 0.1  # fine-tuning starts from trained weights: a tenth of the rate


@dataclass
class CompressResult:
    """Rows of ``nas compress``'s table and the smaller network.

    ``control`` is the full network fine-tuned as the compressed one was (None without
    fine-tuning: the full network itself is then the comparison).
    """

    removed: list[str]
    full: dict[str, Any]
    control: dict[str, Any] | None
    compressed: dict[str, Any]
    speed: SpeedRatio | None  # the compressed network's images/s against the full one's
    model: ResNet

    @property
    def baseline(self) -> dict[str, Any]:
        """What the compressed network is compared with: the control, else the full net."""
        return self.control if self.control is not None else self.full

    def cost_pp(self, split: str) -> float:
        """What removing the blocks cost on ``split`` ('val' or 'test'), in points:
        compressed minus control (negative: it lost accuracy)."""
        key = f"{split}_accuracy"
        return (self.compressed[key] - self.baseline[key]) * 100

    def to_dict(self) -> dict[str, Any]:
        return {"removed": self.removed, "full": self.full, "control": self.control,
                "compressed": self.compressed,
                "removal_cost_pp": {"val": self.cost_pp("val"), "test": self.cost_pp("test")},
                "params_share": self.compressed["params"] / self.full["params"],
                "speed": self.speed.to_dict() if self.speed else None}


def measure(model: ResNet, splits: Splits) -> dict[str, Any]:
    """Accuracy on val and test and the size of the network: one row of ``nas compress``'s
    and ``nas verify-depth``'s tables."""
    return {
        "val_accuracy": evaluate(model, splits.val_x, splits.val_y)[1],
        "test_accuracy": evaluate(model, splits.test_x, splits.test_y)[1],
        "params": model.num_params,
        "blocks": len(model.blocks),
        "layers": model.num_layers,
    }


def fine_tune(model: ResNet, splits: Splits, epochs: int, threads: int | None = None,
              device: str | torch.device | None = None) -> ResNet:
    """``model`` trained ``epochs`` more epochs: cosine from a tenth of its learning rate,
    its own seed (so two networks fine-tuned here see the same batches)."""
    candidate = dataclasses.replace(model.candidate, epochs=epochs, schedule="cosine",
                                    lr=model.candidate.lr * FINE_TUNE_LR_FACTOR)
    return train(candidate, splits, device=device, threads=threads, model=model).model


def compress(model: ResNet, splits: Splits, report: DepthReport, epochs: int,
             threads: int | None = None, device: str | torch.device | None = None,
             speed: bool = True) -> CompressResult:
    """A copy of ``model`` without ``report.removable``, fine-tuned for ``epochs`` epochs,
    beside a copy of the full network fine-tuned the same way (the control).

    Args:
        model: the trained network; left as it is.
        splits: the data it was trained on.
        report: ``nas.analyze``'s report of ``model``.
        epochs: fine-tuning epochs (cosine schedule from a tenth of the learning rate);
            0: none, and no control.
        threads, device: as for ``nas.train``.
        speed: time the full and the compressed network's inference on the test split.

    Returns:
        A ``CompressResult``: the removed blocks, the three networks' accuracy and size,
        the speed ratio, the cost of removal (``cost_pp``), and ``model``, the smaller
        network.
    """
    full = measure(model, splits)
    smaller = copy.deepcopy(model).remove_blocks(report.removable)
    control = None
    if epochs > 0:
        control = measure(fine_tune(copy.deepcopy(model), splits, epochs, threads, device),
                          splits)
        smaller = fine_tune(smaller, splits, epochs, threads, device)
    ratio = compare_speed(model, smaller, splits.test_x) if speed else None
    compressed = measure(smaller, splits)
    if ratio is not None:
        full["images_per_second"] = ratio.first.images_per_second
        compressed["images_per_second"] = ratio.second.images_per_second
    return CompressResult(list(report.removable), full, control, compressed, ratio, smaller)
