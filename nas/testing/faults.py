"""Faults the reliability tests inject into real searches: ``RESNAS_INJECT_FAULTS``.

The tests need real Ray trials to fail in real ways (a trial that raises, runs
out of memory, loses its worker, finds its checkpoint damaged; a driver killed
halfway through recording a trial), so the faults fire inside the product. This
module owns the variable and its parsing; the product calls one named hook at
each point where a fault can fire, and every hook does nothing when the
variable is unset (normal use).

``RESNAS_INJECT_FAULTS="3:raise,5:oom"`` makes trial 3 raise and trial 5 fail as
if out of memory; ``4:kill-driver`` kills the driver (SIGKILL) halfway through
recording trial 4's end in the study; the :data:`CHECKPOINT_FAULTS` kill the
trial's worker in epoch 2, after the state of epoch 1 was checkpointed intact
(``crash``), truncated, bit-flipped or deleted. ``fill-disk-study`` and
``fill-disk-checkpoint`` fill the disk of the study (as the driver records the trial's
end) or of the results folder (before the trial's checkpoint is written): the writes that
follow meet a real full disk.
"""

from __future__ import annotations

import errno
import functools
import os
import shutil
import signal
from pathlib import Path

ENV = "RESNAS_INJECT_FAULTS"
CHECKPOINT_FAULTS = ("crash", "truncate-checkpoint", "corrupt-checkpoint",
                     "delete-checkpoint")
FILLER = ".resnas-filler"  # the file that fills a disk; the tests delete it to free space
FILL_AT_MOST = 64 * 2**20  # a disk with more free space is not filled: the fault is raised


@functools.lru_cache(maxsize=4)
def _parse(text: str) -> dict[int, str]:
    faults: dict[int, str] = {}
    for item in text.split(","):
        number, _, kind = item.partition(":")
        if number.strip().isdigit():
            faults.setdefault(int(number), kind.strip())
    return faults


def fault_for(trial_number: int) -> str | None:
    """The fault to inject into this trial, or None (always None in normal use)."""
    return _parse(os.environ.get(ENV, "")).get(trial_number)


def before_training(trial_number: int) -> None:
    """Raise as a failing trial would: an error, or an allocation failure."""
    fault = fault_for(trial_number)
    if fault == "raise":
        raise RuntimeError(f"injected fault in trial {trial_number}")
    if fault == "oom":  # what a CUDA or host allocation failure raises
        raise MemoryError(f"injected out-of-memory in trial {trial_number}")


def before_state_saved(trial_number: int, epoch: int, restarted: bool) -> None:
    """Kill the worker in epoch 2, as when its node dies; Tune then restores the trial."""
    if fault_for(trial_number) in CHECKPOINT_FAULTS and not restarted and epoch == 2:
        os._exit(1)


def after_state_saved(trial_number: int, epoch: int, restarted: bool, folder: Path,
                      state_file: str) -> None:
    """Damage the state of epoch 1 the way the trial's fault says."""
    fault = fault_for(trial_number)
    if fault not in CHECKPOINT_FAULTS or restarted or epoch != 1:
        return
    state = folder / state_file
    data = state.read_bytes()
    if fault == "truncate-checkpoint":
        state.write_bytes(data[: len(data) // 2])
    elif fault == "corrupt-checkpoint":  # same size, a few bytes flipped mid-file
        middle = len(data) // 2
        state.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 8])
                          + data[middle + 8:])
    elif fault == "delete-checkpoint":
        state.unlink()


def while_recording(trial_number: int) -> None:
    """Kill the driver halfway through recording the trial's end in the study."""
    if fault_for(trial_number) == "kill-driver":
        os.kill(os.getpid(), signal.SIGKILL)


def before_checkpoint(trial_number: int, folder: str) -> None:
    """Fill the disk of the results folder just before the trial writes its checkpoint."""
    if fault_for(trial_number) == "fill-disk-checkpoint":
        fill_disk(Path(folder))


def before_recording(trial_number: int, storage_file: str | None) -> None:
    """Fill the disk of an SQLite study just before the driver records the trial's end."""
    if fault_for(trial_number) == "fill-disk-study" and storage_file:
        fill_disk(Path(storage_file).parent)


def fill_disk(folder: Path) -> None:
    """Leave no free space on ``folder``'s filesystem, with one file, :data:`FILLER`.

    Only a small filesystem (the tests' tmpfs) is filled; on any other the full disk is
    raised here instead, as the write would have raised it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(folder).free > FILL_AT_MOST:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(folder))
    with open(folder / FILLER, "ab", buffering=0) as filler:
        block = b"\0" * 65536
        while block:
            try:
                filler.write(block)
            except OSError:
                block = block[: len(block) // 2]
