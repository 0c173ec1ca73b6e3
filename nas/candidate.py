"""One point of a search space: the architecture and how to train it.

A plain frozen dataclass so that the core (model, train, depth) never needs
the space loader, Optuna or Ray to describe what it builds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

BLOCK_TYPES = ("basic", "bottleneck", "preact", "highway")
SHORTCUT_TYPES = ("identity", "projection", "conv", "scaled", "rezero", "none")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant")


@dataclass(frozen=True)
class Candidate:
    """Architecture and training settings of one network.

    Defaults are the documented training defaults: SGD with Nesterov
    momentum 0.9, one-cycle schedule, batch 128, lr 0.1, weight decay 5e-4.
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
    batch_size: int = 128
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
