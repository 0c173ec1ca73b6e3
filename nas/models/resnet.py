"""Build a ResNet from a Candidate.

Reads top to bottom like torchvision's resnet.py, but the stage layout comes
from a side-effect-free :func:`make_stages` and any number of stages works.
The forward pass is split as in timm (:meth:`ResNet.forward_features`, then
:meth:`ResNet.forward_head`) so that useful-depth analysis can run the stages
module by module and finish with the model's own head instead of a copy of it.
Submodule names (``stem``, ``stages.{i}.{j}``, ``head_norm``, ``pool``, ``fc``)
are the checkpoint format: renaming one breaks every saved checkpoint. Code that
needs a block's stage asks the model (:meth:`ResNet.named_blocks`,
:meth:`ResNet.stage_depths`, :meth:`ResNet.stage_of`) or, with no model at hand,
:func:`parse_block_name`: the ``stages.{i}.{j}`` format is spelled out here only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from nas.candidate import Candidate
from nas.models.blocks import Bypass, ResidualBlock, create_block, kaiming

LARGE_IMAGE = 64  # from this size on, the stem downsamples by 4 (7x7 stride 2 + max-pool)


@dataclass(frozen=True)
class StageSpec:
    """One stage: how many blocks, their inner width and the first block's stride."""

    index: int
    blocks: int
    channels: int
    stride: int


class BlockPosition(NamedTuple):
    """Where a block sits: its stage and its index within that stage (``stages.{stage}.{index}``).

    Blocks of one stage share a resolution and width, which is what analyses compare.
    """

    stage: int
    index: int

    @property
    def name(self) -> str:
        """The block's module name, the key of its weights in a checkpoint."""
        return f"stages.{self.stage}.{self.index}"


_BLOCK_NAME = re.compile(r"stages\.([0-9]+)\.([0-9]+)")


def parse_block_name(name: str) -> BlockPosition:
    """``stages.1.4`` -> ``BlockPosition(stage=1, index=4)``: for callers that hold block
    names but no model (a candidate and the names a report found removable).

    Raises:
        ValueError: ``name`` is not of the form ``stages.I.J`` (``fc``, ``stages.x.1``).
    """
    match = _BLOCK_NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"not a block name (stages.I.J): {name!r}")
    return BlockPosition(int(match[1]), int(match[2]))


def make_stages(candidate: Candidate) -> tuple[StageSpec, ...]:
    """Stage layout: widths double and resolution halves from one stage to the next."""
    return tuple(
        StageSpec(index=i, blocks=n, channels=candidate.width * 2**i, stride=1 if i == 0 else 2)
        for i, n in enumerate(candidate.stage_depths)
    )


class ResNet(nn.Module):
    """Stem, stages of residual blocks (``stages.{i}.{j}``), pooled linear classifier."""

    def __init__(self, candidate: Candidate, in_channels: int, num_classes: int,
                 image_size: int) -> None:
        super().__init__()
        self.candidate = candidate
        width = candidate.width
        if image_size >= LARGE_IMAGE:
            self.stem = nn.Sequential(
                kaiming(nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        else:
            self.stem = nn.Sequential(
                kaiming(nn.Conv2d(in_channels, width, 3, padding=1, bias=False)),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            )
        channels = width
        stages = []
        for spec in make_stages(candidate):
            blocks = []
            for j in range(spec.blocks):
                block = create_block(
                    candidate.block, channels, spec.channels,
                    stride=spec.stride if j == 0 else 1,
                    shortcut=candidate.shortcut, gate_bias=candidate.gate_bias,
                )
                channels = block.out_channels
                blocks.append(block)
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Pre-activation blocks leave their sum un-normalised: finish with BN-ReLU.
        self.head_norm = (
            nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
            if candidate.block == "preact" else nn.Identity()
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        self.num_classes = num_classes
        self.removed: list[str] = []  # blocks replaced by their shortcut (nas compress)

    @property
    def blocks(self) -> dict[str, ResidualBlock]:
        """The residual blocks in forward order, keyed by their module name."""
        return {
            name: m for name, m in self.named_modules() if isinstance(m, ResidualBlock)
        }

    def named_blocks(self) -> Iterator[tuple[BlockPosition, ResidualBlock]]:
        """Each residual block the stages run, in forward order, with where it sits.

        A stage's index counts every module it holds, so a block keeps its index (and
        checkpoint name) when ``nas compress`` has put a :class:`Bypass` before it.
        """
        for stage, modules in enumerate(self.stages):
            for index, module in enumerate(modules):
                if isinstance(module, ResidualBlock):
                    yield BlockPosition(stage, index), module

    def stage_depths(self) -> tuple[int, ...]:
        """Residual blocks per stage: a compressed network lacks the ones it lost."""
        depths = [0] * len(self.stages)
        for position, _ in self.named_blocks():
            depths[position.stage] += 1
        return tuple(depths)

    def stage_of(self, name: str) -> int:
        """The stage of this model's block ``name``.

        Raises:
            ValueError: ``name`` is no residual block of this model.
        """
        if name not in self.blocks:
            raise ValueError(f"no residual block named {name!r}")
        return parse_block_name(name).stage

    def remove_blocks(self, names: list[str]) -> ResNet:
        """Replace the named blocks by their shortcuts, in place; returns the model."""
        blocks = self.blocks
        for name in names:
            if name not in blocks:
                raise ValueError(f"no residual block named {name!r}")
            position = parse_block_name(name)
            self.stages[position.stage][position.index] = Bypass(blocks[name])
            self.removed.append(name)
        return self

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def num_layers(self) -> int:
        """He et al.'s count: stem conv + convolutions on the main path + classifier."""
        return 1 + sum(b.layers for b in self.blocks.values()) + 1

    def stage_modules(self) -> list[nn.Module]:
        """The modules the stages run, in order: residual blocks and what ``nas compress``
        left of removed ones (:class:`Bypass`)."""
        return [module for stage in self.stages for module in stage]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and stages: the feature map before the classifier head."""
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Head norm, global pooling and the linear classifier, on a feature map."""
        x = self.pool(self.head_norm(x))
        return self.fc(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(candidate: Candidate, in_channels: int, num_classes: int,
                image_size: int) -> ResNet:
    """The network a candidate describes, for inputs of the given shape.

    Args:
        candidate: the architecture (stages, blocks, block type, shortcut, width).
        in_channels, num_classes, image_size: the data's shape (``Splits`` has them).

    Returns:
        An untrained ``ResNet`` (``forward_features`` / ``forward_head`` as in timm).
    """
    return ResNet(candidate, in_channels, num_classes, image_size)
