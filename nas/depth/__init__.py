"""Useful depth: which blocks a trained network needs, and the network without the rest.

Torch only: ``nas analyze``, ``nas compress`` and every search trial use it.
"""

from __future__ import annotations

from nas.depth.compress import CompressResult, compress
from nas.depth.lesion import DepthReport, analyze

__all__ = ["CompressResult", "DepthReport", "analyze", "compress"]
