"""Residual blocks and shortcuts, registered by name.

Every block has two children: ``branch`` computes R(x) and ``shortcut``
computes S(x). The block type decides how they combine (docs/design.md, "Blocks and
shortcuts", gives each block's and shortcut's exact semantics):

========== ============================= =====================
block      branch                        combine
========== ============================= =====================
basic      conv3-BN-ReLU-conv3-BN        ReLU(R + S)
bottleneck 1x1-3x3-1x1, expansion 4      ReLU(R + S)
preact     BN-ReLU-conv3-BN-ReLU-conv3   R + S
highway    basic branch, gate T          T*R + (1-T)*S
========== ============================= =====================

The shortcut style decides S(x) and a factor on the branch: ``identity``
(option A when the shape changes), ``projection`` (option B), ``conv``
(option C), ``scaled`` (0.5*x with the branch halved), ``rezero`` (branch
times a learned alpha that starts at 0) and ``none`` (no shortcut: a plain
network). All 24 pairs build and train; with ``highway`` + ``none`` the gate
has nothing to carry and the block computes T*R.

Setting ``block.lesioned = True`` makes the block compute as if R(x) = 0 (a
highway block as if T = 0), i.e. it outputs S(x): Veit et al.'s deletion of a
residual module, as a switch rather than a copy of the model. A plain block
whose shape changes cannot be lesioned (``block.removable`` is False).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nas.names import SHORTCUT_TYPES


def kaiming(conv: nn.Conv2d) -> nn.Conv2d:
    """He initialisation for convolutions followed by ReLU (He et al. 2015)."""
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return kaiming(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False))


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return kaiming(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False))


# --- shortcuts -------------------------------------------------------------


class PadShortcut(nn.Module):
    """Option A: subsample by the stride and zero-pad the new channels; no parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride
        if self.extra_channels < 0:
            raise ValueError("option A shortcut cannot reduce channels")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return x


class Projection(nn.Sequential):
    """Options B and C: 1x1 convolution (with the stride) and batch norm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class Scaled(nn.Module):
    """Multiplies its input by a constant: the 0.5*x shortcut of He et al. (2016)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


class NoShortcut(nn.Module):
    """A plain network carries nothing around the branch.

    Called only when the block is lesioned, where a block whose shape is
    unchanged passes its input through (the layer is deleted).
    """

    def __init__(self, shape_kept: bool) -> None:
        super().__init__()
        self.shape_kept = shape_kept

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.shape_kept:
            raise RuntimeError("a plain block that changes shape cannot be removed")
        return x


def make_shortcut(style: str, in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """S(x) for a shortcut style, given whether the block changes shape."""
    same_shape = stride == 1 and in_channels == out_channels
    if style == "none":
        return NoShortcut(shape_kept=same_shape)
    if style == "conv":
        return Projection(in_channels, out_channels, stride)
    if same_shape:
        return Scaled(0.5) if style == "scaled" else nn.Identity()
    if style == "identity":
        if out_channels >= in_channels:
            return PadShortcut(in_channels, out_channels, stride)
        return Projection(in_channels, out_channels, stride)
    if style in ("projection", "scaled", "rezero"):
        return Projection(in_channels, out_channels, stride)
    raise ValueError(f"unknown shortcut {style!r}; allowed: {', '.join(SHORTCUT_TYPES)}")


# --- blocks ----------------------------------------------------------------


class ResidualBlock(nn.Module):
    """Base class: owns the shortcut, the branch factor and the lesion switch."""

    expansion: ClassVar[int] = 1
    convs_on_main_path: ClassVar[int] = 2
    post_activation: ClassVar[bool] = True  # ReLU after the sum

    def __init__(self, in_channels: int, channels: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = channels * self.expansion
        self.stride = stride
        self.shortcut_style = shortcut
        self.shortcut = make_shortcut(shortcut, in_channels, self.out_channels, stride)
        self.has_shortcut = shortcut != "none"
        self.alpha = nn.Parameter(torch.zeros(())) if shortcut == "rezero" else None
        self.branch_scale = 0.5 if shortcut == "scaled" else 1.0
        self.lesioned = False

    @property
    def removable(self) -> bool:
        """Whether lesioning is defined: false for a plain block that changes shape."""
        return self.has_shortcut or self.shortcut.shape_kept

    @property
    def layers(self) -> int:
        """Layers counted as He et al. do: convolutions on the main path."""
        return self.convs_on_main_path

    def scaled_branch(self, x: torch.Tensor) -> torch.Tensor:
        r = self.branch(x)
        if self.alpha is not None:
            return r * self.alpha
        if self.branch_scale != 1.0:
            return r * self.branch_scale
        return r

    def init_last_layer(self, layer: nn.BatchNorm2d | nn.Conv2d) -> None:
        """Zero-init the branch's last layer so the block starts as its shortcut.

        Skipped where that would cut the signal or the gradient, or is done
        already: plain blocks (no shortcut), rezero (alpha starts at 0) and
        highway (its gate starts close to the shortcut).
        """
        if self.shortcut_style not in ("none", "rezero") and not isinstance(self, HighwayBlock):
            nn.init.zeros_(layer.weight)

    def combine(self, r: torch.Tensor, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lesioned:
            return self.lesioned_output(x)
        s = self.shortcut(x) if self.has_shortcut else None
        return self.combine(self.scaled_branch(x), s, x)

    def lesioned_output(self, x: torch.Tensor) -> torch.Tensor:
        """What the block outputs with R(x) = 0 (Veit et al.'s deletion)."""
        s = self.shortcut(x)
        return F.relu(s) if self.post_activation and self.has_shortcut else s


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions, post-activation (He et al. 2015)."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: str = "identity", **_: object) -> None:
        super().__init__(in_channels, channels, stride, shortcut)
        last_norm = nn.BatchNorm2d(channels)
        self.branch = nn.Sequential(
            conv3x3(in_channels, channels, stride), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv3x3(channels, channels), last_norm,
        )
        self.init_last_layer(last_norm)

    def combine(self, r: torch.Tensor, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        return F.relu(r + s) if s is not None else F.relu(r)


class BottleneckBlock(BasicBlock):
    """1x1 reduce, 3x3, 1x1 expand by 4 (He et al. 2015)."""

    expansion = 4
    convs_on_main_path = 3

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: str = "identity", **_: object) -> None:
        ResidualBlock.__init__(self, in_channels, channels, stride, shortcut)
        out = channels * self.expansion
        last_norm = nn.BatchNorm2d(out)
        self.branch = nn.Sequential(
            conv1x1(in_channels, channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv3x3(channels, channels, stride), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv1x1(channels, out), last_norm,
        )
        self.init_last_layer(last_norm)


class PreActBlock(ResidualBlock):
    """Full pre-activation: BN-ReLU-conv-BN-ReLU-conv, added to S(x) (He et al. 2016)."""

    post_activation = False

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: str = "identity", **_: object) -> None:
        super().__init__(in_channels, channels, stride, shortcut)
        last_conv = conv3x3(channels, channels)
        self.branch = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=False),
            conv3x3(in_channels, channels, stride),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            last_conv,
        )
        self.init_last_layer(last_conv)

    def combine(self, r: torch.Tensor, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        return r + s if s is not None else r


class HighwayBlock(BasicBlock):
    """Basic branch gated against the shortcut: T*R + (1-T)*S (Srivastava et al. 2015).

    T = sigmoid(conv1x1(x) + b) per output channel and position; b starts
    negative (``gate_bias``) so the block starts close to its shortcut.
    """

    post_activation = False

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 shortcut: str = "identity", gate_bias: float = -2.0, **_: object) -> None:
        super().__init__(in_channels, channels, stride, shortcut)
        self.gate = nn.Conv2d(in_channels, channels, 1, stride=stride, bias=True)
        nn.init.constant_(self.gate.bias, gate_bias)

    def combine(self, r: torch.Tensor, s: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * r + (1 - t) * s if s is not None else t * r


BLOCKS: dict[str, type[ResidualBlock]] = {
    "basic": BasicBlock,
    "bottleneck": BottleneckBlock,
    "preact": PreActBlock,
    "highway": HighwayBlock,
}


def create_block(name: str, in_channels: int, channels: int, stride: int = 1,
                 shortcut: str = "identity", **kwargs: object) -> ResidualBlock:
    """Build a registered block by name; ``channels`` is the block's inner width."""
    try:
        cls = BLOCKS[name]
    except KeyError:
        raise ValueError(f"unknown block {name!r}; allowed: {', '.join(BLOCKS)}") from None
    if shortcut not in SHORTCUT_TYPES:
        raise ValueError(f"unknown shortcut {shortcut!r}; allowed: {', '.join(SHORTCUT_TYPES)}")
    return cls(in_channels, channels, stride=stride, shortcut=shortcut, **kwargs)


class Bypass(nn.Module):
    """What a removed block leaves behind: its shortcut, and the ReLU after the sum.

    Computes exactly what the block computed while lesioned, without the
    branch's parameters: the compressed network of ``nas compress``.
    """

    def __init__(self, block: ResidualBlock) -> None:
        super().__init__()
        if not block.removable:
            raise ValueError("a plain block that changes shape cannot be removed")
        self.shortcut = block.shortcut
        self.relu = block.post_activation and block.has_shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.shortcut(x)
        return F.relu(s) if self.relu else s
