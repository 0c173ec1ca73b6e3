"""Remove the blocks that useful-depth analysis found removable, fine-tune, compare.

The proof that the measurement is right: a network without its removable
blocks should keep the full network's accuracy with fewer parameters and
more images per second. Torch only.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch

from nas.data import Splits
from nas.depth.report import DepthReport
from nas.models.resnet import ResNet
from nas.training.device import synchronize
from nas.training.loop import evaluate, train

FINE_TUNE_LR_FACTOR = 0.1  # fine-tuning starts from trained weights: a tenth of the rate


@dataclass
class CompressResult:
    removed: list[str]
    full: dict[str, Any]
    compressed: dict[str, Any]
    model: ResNet


def inference_rate(model: ResNet, x: torch.Tensor, repeats: int = 3) -> float:
    """Images per second of eval-mode inference over ``x`` (best of ``repeats``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        evaluate(model, x, torch.zeros(len(x), dtype=torch.long, device=x.device))
        synchronize(x.device)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def measure(model: ResNet, splits: Splits, speed: bool = True) -> dict[str, Any]:
    """Accuracy on val and test, the size of the network and (``speed``) its images/second:
    one row of ``nas compress``'s and ``nas verify-depth``'s tables."""
    row = {
        "val_accuracy": evaluate(model, splits.val_x, splits.val_y)[1],
        "test_accuracy": evaluate(model, splits.test_x, splits.test_y)[1],
        "params": model.num_params,
        "blocks": len(model.blocks),
        "layers": model.num_layers,
    }
    if speed:
        row["images_per_second"] = inference_rate(model, splits.test_x)
    return row


def compress(model: ResNet, splits: Splits, report: DepthReport, epochs: int,
             threads: int | None = None, device: str | torch.device | None = None,
             ) -> CompressResult:
    """A copy of ``model`` without ``report.removable``, fine-tuned for ``epochs`` epochs.

    Args:
        model: the trained network; left as it is.
        splits: the data it was trained on.
        report: ``nas.analyze``'s report of ``model``.
        epochs: fine-tuning epochs (cosine schedule from a tenth of the learning rate).
        threads, device: as for ``nas.train``.

    Returns:
        A ``CompressResult``: the removed blocks, both networks' accuracy, size and
        speed, and ``model``, the smaller network.
    """
    full = measure(model, splits)
    smaller = copy.deepcopy(model).remove_blocks(report.removable)
    if epochs > 0:
        candidate = dataclasses.replace(model.candidate, epochs=epochs, schedule="cosine",
                                        lr=model.candidate.lr * FINE_TUNE_LR_FACTOR)
        smaller = train(candidate, splits, device=device, threads=threads, model=smaller).model
    return CompressResult(list(report.removable), full, measure(smaller, splits), smaller)
