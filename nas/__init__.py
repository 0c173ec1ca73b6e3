"""resnas: neural-architecture search for residual networks that measures useful depth."""

from __future__ import annotations

__version__ = "0.1.0"
