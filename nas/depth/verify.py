"""Does the measured useful depth predict anything? Train a network that deep from scratch.

Lesioning (:mod:`nas.depth.lesion`) says which blocks a *trained* network can
lose; ``nas compress`` shows the pruned network keeps its accuracy. Neither
says whether a network built at the useful depth would learn as well on its
own: the removable blocks might still have helped the rest to train. So this
builds the candidate with each stage shortened by its removable blocks, trains
it from scratch with the same settings and seed (epochs, lr, schedule, batch,
data split), and compares both on the validation and test splits. Torch only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from nas.candidate import Candidate
from nas.data import Splits
from nas.depth.compress import measure as compress_row
from nas.depth.report import DepthReport
from nas.models.resnet import ResNet, parse_block_name
from nas.training.loop import train


@dataclass
class VerifyResult:
    """The checkpoint's network against one of its useful depth trained from scratch."""

    removed: list[str]  # the blocks the useful depth leaves out (incl. earlier compression)
    kept_for_shape: list[int]  # stages whose every block was removable: one block kept
    trained: bool  # False: nothing to remove, the useful network is the full network
    tolerance: float
    full: dict[str, Any]
    useful: dict[str, Any]
    val_difference_pp: float  # useful minus full, percentage points
    test_difference_pp: float
    # The verdict: the tolerance judges val, the split the useful depth was chosen on
    # (useful val accuracy >= full val accuracy - tolerance) ...
    within_tolerance: bool
    # ... and the same rule on test, images neither the training nor the choice saw, said
    # beside it so that a test drop past the tolerance is never read as "within"
    test_within_tolerance: bool
    candidate: dict[str, Any]  # the from-scratch network's candidate
    seconds: float  # training time of the from-scratch network
    model: ResNet | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready types, without the model."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "model"}
        out["full"], out["useful"] = dict(self.full), dict(self.useful)
        return out


def useful_depths(candidate: Candidate, removable: list[str]) -> tuple[tuple[int, ...], list[int]]:
    """Stage depths without ``removable``, and the stages that kept one block for shape.

    A stage never goes below one block: its first block carries the stage's stride and
    width change, which a candidate cannot express without a block. A stage whose every
    block was removable keeps one and is listed, since the network is then deeper than
    the lesion said it needs.
    """
    depths = list(candidate.stage_depths)
    for name in set(removable):
        stage = parse_block_name(name).stage
        if stage >= len(depths):
            raise ValueError(f"{name}: the candidate has {len(depths)} stages")
        depths[stage] -= 1
    kept = [i for i, d in enumerate(depths) if d < 1]
    return tuple(max(d, 1) for d in depths), kept


def useful_stage_depths(candidate: Candidate, removable: list[str]) -> tuple[int, ...]:
    """The candidate's stage depths minus the removed blocks per stage (at least 1 each)."""
    return useful_depths(candidate, removable)[0]


def measure(model: ResNet, splits: Splits) -> dict[str, Any]:
    """Accuracy on val and test, the size of the network and its stage depths, the same
    for both rows (no speed: the question here is accuracy)."""
    return {**compress_row(model, splits),
            "stage_depths": list(model.stage_depths())}


def verify_depth(model: ResNet, splits: Splits, report: DepthReport, threads: int | None = None,
                 device: str | torch.device | None = None,
                 progress: Callable[[int, dict[str, float]], bool] | None = None
                 ) -> VerifyResult:
    """Train ``model``'s candidate at the useful depth ``report`` measured, from scratch,
    and compare it with ``model`` (the full network) on ``splits``.

    ``splits`` must be the ones the checkpoint was trained on (same seed) so that the
    from-scratch network sees the same training images and is judged on the same
    validation images. Blocks an earlier ``nas compress`` removed count as removed.
    ``progress`` is the training loop's per-epoch ``report`` callback.

    Args:
        model: the trained full network; splits: the data it was trained on.
        report: ``nas.analyze``'s report of ``model``.
        threads, device: as for ``nas.train``.

    Returns:
        A ``VerifyResult``: both networks' stage depths, sizes, val and test accuracy,
        the differences, and the verdict on each split: ``within_tolerance`` (val, the
        split the tolerance judges) and ``test_within_tolerance``.
    """
    full = measure(model, splits)
    removed = list(model.removed) + [n for n in report.removable if n not in model.removed]
    depths, kept = useful_depths(model.candidate, removed)
    candidate = dataclasses.replace(model.candidate, blocks_per_stage=depths)
    trained = list(depths) != full["stage_depths"]
    seconds = 0.0
    if trained:
        started = time.perf_counter()
        useful_model = train(candidate, splits, report=progress, threads=threads,
                             device=device).model
        seconds = time.perf_counter() - started
        useful = measure(useful_model, splits)
    else:  # nothing to remove: training the same network again would only repeat it
        useful_model, useful = model, dict(full)
    val_diff = useful["val_accuracy"] - full["val_accuracy"]
    test_diff = useful["test_accuracy"] - full["test_accuracy"]
    return VerifyResult(
        removed=removed, kept_for_shape=kept, trained=trained, tolerance=report.tolerance,
        full=full, useful=useful, val_difference_pp=100.0 * val_diff,
        test_difference_pp=100.0 * test_diff,
        # accuracies are multiples of 1/n: a hair of slack keeps k/n - tolerance exact
        within_tolerance=val_diff >= -report.tolerance - 1e-9,
        test_within_tolerance=test_diff >= -report.tolerance - 1e-9,
        candidate=candidate.to_dict(), seconds=seconds, model=useful_model)
