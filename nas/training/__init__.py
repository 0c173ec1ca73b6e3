"""Training a candidate, where it runs, and the files it leaves behind (checkpoints, and
exported programs that run without resnas).

Torch only: the search, the command line and the benchmarks all train through here.
"""

from __future__ import annotations

from nas.training.checkpoint import (
    CHECKPOINT_FORMAT,
    DIGEST_FILE,
    STATE_FILE,
    load_checkpoint,
    load_failure,
    read_state,
    save_checkpoint,
    write_state,
)
from nas.training.device import autocast, available_cpus, resolve_device, synchronize
from nas.training.export import Exported, export_model
from nas.training.loop import (
    EVAL_BATCH,
    Report,
    TrainResult,
    evaluate,
    make_optimizer,
    make_schedule,
    train,
)

export = export_model  # the name ``import nas`` gives it: nas.export(model, "net.pt2", "pt2")

__all__ = ["CHECKPOINT_FORMAT", "DIGEST_FILE", "EVAL_BATCH", "STATE_FILE", "Exported",
           "Report", "TrainResult", "autocast", "available_cpus", "evaluate", "export",
           "export_model",
           "load_checkpoint", "load_failure", "make_optimizer", "make_schedule", "read_state",
           "resolve_device", "save_checkpoint", "synchronize", "train", "write_state"]
