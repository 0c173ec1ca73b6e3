"""The networks a candidate describes: residual blocks by name and the ResNet built from them.

Torch only, so that training, analysis and checkpoint loading need no search machinery.
"""

from __future__ import annotations

from nas.models.blocks import BLOCKS, Bypass, ResidualBlock, create_block
from nas.models.resnet import (
    BlockPosition,
    ResNet,
    StageSpec,
    build_model,
    make_stages,
    parse_block_name,
)

__all__ = ["BLOCKS", "BlockPosition", "Bypass", "ResNet", "ResidualBlock", "StageSpec",
           "build_model", "create_block", "make_stages", "parse_block_name"]
