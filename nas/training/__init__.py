"""Training a candidate, where it runs, and the files it leaves behind (checkpoints, and
exported programs that run without resnas).

Torch only: the search, the command line and the benchmarks all train through here.
This top level is the public API (what ``import nas`` and a notebook use); the
checkpoint format's internals (the per-epoch training state, its digest file) and the
loop's parts stay in their modules, where the search's trial imports them by name.
"""

from __future__ import annotations

from nas.training.checkpoint import load_checkpoint, save_checkpoint
from nas.training.device import available_cpus, resolve_device
from nas.training.export import Exported, export_model
from nas.training.loop import Report, TrainResult, evaluate, train

export = export_model  # the name ``import nas`` gives it: nas.export(model, "net.pt2", "pt2")

__all__ = ["Exported", "Report", "TrainResult", "available_cpus", "evaluate", "export",
           "export_model", "load_checkpoint", "resolve_device", "save_checkpoint", "train"]
