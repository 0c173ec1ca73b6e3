"""resnas: neural-architecture search for residual networks that measures useful depth.

The names a Python user needs are re-exported here and imported on first use,
so ``import nas`` stays light: nothing of torch, Optuna or Ray is loaded until
one of them is used (``nas.load_space`` needs none of the three).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it
_API = {
    "NasError": "nas.errors",
    "DiskFull": "nas.errors",
    "DiskShort": "nas.errors",
    "Candidate": "nas.candidate",
    "SearchSpace": "nas.space",
    "load_space": "nas.space",
    "load_candidate": "nas.space",
    "build_model": "nas.models",
    "load_data": "nas.data",
    "train": "nas.training",
    "evaluate": "nas.training",
    "save_checkpoint": "nas.training",
    "load_checkpoint": "nas.training",
    "export": "nas.training",
    "analyze": "nas.depth",
    "compress": "nas.depth",
    "verify_depth": "nas.depth",
    "search": "nas.api",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'nas' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
