"""Useful depth: which blocks a trained network needs, the network without the rest, and
one that deep trained from scratch.

Torch only: ``nas analyze``, ``nas compress``, ``nas verify-depth`` and every search trial
use it.
"""

from __future__ import annotations

from nas.depth.compress import CompressResult, compress
from nas.depth.lesion import analyze
from nas.depth.report import DepthReport
from nas.depth.verify import VerifyResult, verify_depth

__all__ = ["CompressResult", "DepthReport", "VerifyResult", "analyze", "compress", "verify_depth"]
