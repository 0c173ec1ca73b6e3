"""One point of a search space: the architecture and how to train it.

A plain frozen dataclass so that the core (model, train, depth) never needs
the space loader, Optuna or Ray to describe what it builds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

# The default batch (Candidate.batch_for): steps an epoch, and its bounds.
AUTO_STEPS_PER_EPOCH = 32
AUTO_BATCH_MIN, AUTO_BATCH_MAX = 16, 128


@dataclass(frozen=True)
class Candidate:
    """Architecture and training settings of one network.

    Defaults are the documented training defaults: SGD with Nesterov
    momentum 0.9, one-cycle schedule, lr 0.1, weight decay 5e-4, and a batch
    scaled to the training set (``batch_size=None``; see :meth:`batch_for`).
    """

    # architecture
    stages: int = 3
    blocks_per_stage: int | tuple[int, ...] = 3
    block: str = "basic"
    shortcut: str = "identity"
    width: int = 16
    gate_bias: float = -2.0
    # training
    dataset: str = "digits"
    epochs: int = 10
    batch_size: int | None = None  # None: scaled to the data (batch_for)
    lr: float = 0.1
    weight_decay: float = 5e-4
    momentum: float = 0.9
    optimizer: str = "sgd"
    schedule: str = "onecycle"
    label_smoothing: float = 0.0
    augment: bool = True
    seed: int = 0
    data: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if isinstance(self.blocks_per_stage, list):
            object.__setattr__(self, "blocks_per_stage", tuple(self.blocks_per_stage))

    @property
    def stage_depths(self) -> tuple[int, ...]:
        """Number of blocks in each stage."""
        if isinstance(self.blocks_per_stage, int):
            return (self.blocks_per_stage,) * self.stages
        return tuple(self.blocks_per_stage)

    def batch_for(self, train_images: int) -> int:
        """The batch size a training on ``train_images`` images uses.

        The candidate's own when it names one. Otherwise the largest power of two that
        still gives an epoch at least AUTO_STEPS_PER_EPOCH steps, from 16 to 128: a fixed
        batch of 128 is 10 steps an epoch on the bundled digits (1,259 images), and
        ResNet-20 then reached 40-62% val in 10 epochs, against 99.6-100% with batch 32
        (same lr 0.1, seeds 0 and 1). On MNIST or CIFAR it is 128, as before.
        """
        if self.batch_size is not None:
            return self.batch_size
        target = max(train_images // AUTO_STEPS_PER_EPOCH, 1)
        return min(max(1 << (target.bit_length() - 1), AUTO_BATCH_MIN), AUTO_BATCH_MAX)

    def describe(self, *, training: bool = True, compact: bool = False) -> str:
        """The candidate in words, one formatter for every place that shows one.

        ``basic/identity, 3x3x3 blocks, width 16, lr 0.1, weight decay 0.0005, batch auto``;
        ``training=False`` stops after the width; ``compact`` is the running table's
        ``basic/identity 3x3x3 w16``, enough to tell running trials apart.
        """
        depth = "x".join(map(str, self.stage_depths))
        if compact:
            return f"{self.block}/{self.shortcut} {depth} w{self.width}"
        text = f"{self.block}/{self.shortcut}, {depth} blocks, width {self.width}"
        if training:
            text += (f", lr {self.lr:.3g}, weight decay {self.weight_decay:.2g}, "
                     f"batch {self.batch_size or 'auto'}")
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so it can sit in a weights-only checkpoint or JSON."""
        out = dataclasses.asdict(self)
        if isinstance(out["blocks_per_stage"], tuple):
            out["blocks_per_stage"] = list(out["blocks_per_stage"])
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Candidate:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Candidate))
