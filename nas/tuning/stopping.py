"""How a search stops: on a signal, on a full disk, and what a trial leaves when it ends.

Ray Tune callbacks and a logging filter the driver installs around ``tuner.fit()``:
:class:`DeferredCtrlC` lets Ctrl-C and SIGTERM act between two steps of Tune's loop,
:class:`DiskFullLogs` turns Tune's logged failures to write its own files on a full disk
into the searcher's halt, and :class:`DropTrainingStates` removes a trial's per-epoch
training states from Tune's folder once the trial has ended (they exist only to restart
a trial whose worker dies; kept, they would take as much disk as the checkpoints).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ray.tune import Callback

from nas.disk import NEARLY_FULL, disk_full, free_bytes, full_error
from nas.study.config import is_url

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DiskFullLogs(logging.Filter):
    """Ray Tune's own writes on a full disk, as a halt instead of a logged traceback.

    Tune catches what fails as it saves its experiment state into ``results/`` and logs
    it with its traceback, then goes on; here such a record halts the search (one line
    at the end, as any full disk) and is not printed. Other records pass."""

    def __init__(self, searcher: Any, suspects: list[tuple[str, str | None]],
                 shown: str) -> None:
        super().__init__()
        self.searcher, self.suspects, self.shown = searcher, suspects, shown

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        said = disk_full(error) or disk_full(Exception(record.getMessage()))
        # A worker that died for want of space (Ray's session logs) says nothing of disks:
        # an error while a disk the search writes to is full is taken as that disk's doing.
        if not said and not (record.levelno >= logging.ERROR and self._a_disk_is_full()):
            return True
        if self.searcher.halt is None:
            self.searcher.halt = full_error(error or Exception(), self.suspects, self.shown)
        return False

    def _a_disk_is_full(self) -> bool:
        free = [free_bytes(path) for _, path in self.suspects if path is not None]
        return any(left is not None and left < NEARLY_FULL for left in free)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """On the handlers of Ray's loggers, which every Tune record passes through."""
        handlers = {h for name in ("ray", "ray.tune", "ray.train")
                    for h in logging.getLogger(name).handlers}
        for handler in handlers:
            handler.addFilter(self)
        try:
            yield
        finally:
            for handler in handlers:
                handler.removeFilter(self)


class DeferredCtrlC(Callback):
    """Ctrl-C while ``tuner.fit()`` runs acts between two steps of Tune's loop (as the same
    KeyboardInterrupt, raised from here), never in the middle of Tune's or its loggers'
    code: one raised there can leave a lock held for good (tensorboardX's queue, whose exit
    handler then blocks the driver's exit). A second Ctrl-C acts at once.

    SIGTERM (what SLURM, Kubernetes and ``ray job stop`` send) stops the search the same
    way, and :attr:`terminated` tells the caller, whose exit status then says so."""

    pending = False
    terminated = False

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach only the main thread
            return

        def note(number, frame):
            self.terminated = self.terminated or number == signal.SIGTERM
            if self.pending:
                raise KeyboardInterrupt
            self.pending = True

        previous = {sig: signal.signal(sig, note) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def on_step_begin(self, iteration, trials, **info) -> None:
        if self.pending:
            raise KeyboardInterrupt

    def on_step_end(self, iteration, trials, **info) -> None:
        self.on_step_begin(iteration, trials)


class DropTrainingStates(Callback):
    """A trial's ``checkpoint_*`` folders (its training states) gone once it has ended:
    completed, pruned, failed or stopped alike. Each is written after an epoch so that
    Tune can restart a trial whose worker dies (``FailureConfig.max_failures``); Tune keeps
    the last one for good (``num_to_keep=1``), the size of two copies of the network."""

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info) -> None:
        drop_training_states(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info) -> None:
        drop_training_states(trial)


def drop_training_states(trial: Any) -> None:
    """Delete the trial's checkpoint folders in Tune's storage, local or a URI alike."""
    storage = trial.storage
    _drop_checkpoints(storage.storage_filesystem, storage.trial_fs_path, depth=1)


def drop_run_training_states(run_folder: str) -> None:
    """Every ``checkpoint_*`` folder of one Tune run (``results/<study>/tune/run-*``): what
    its trials left that no callback removed, as when the search stops all of them at
    once (Ctrl-C, SIGTERM, a full disk). Only this run's: another driver's run on the same
    study may still need its states."""
    import pyarrow.fs

    with contextlib.suppress(OSError, ValueError):  # a URI Tune accepted but pyarrow won't
        filesystem, path = pyarrow.fs.FileSystem.from_uri(run_folder) if is_url(run_folder) \
            else (pyarrow.fs.LocalFileSystem(), run_folder)
        _drop_checkpoints(filesystem, path, depth=2)


def _drop_checkpoints(filesystem, folder: str, depth: int) -> None:
    """``checkpoint_*`` folders up to ``depth`` levels below ``folder``, deleted."""
    import pyarrow.fs

    with contextlib.suppress(OSError):  # a state that cannot go stays: nothing is lost
        for entry in filesystem.get_file_info(pyarrow.fs.FileSelector(folder)):
            if entry.type != pyarrow.fs.FileType.Directory:
                continue
            if entry.base_name.startswith("checkpoint_"):
                filesystem.delete_dir(entry.path)
            elif depth > 1:
                _drop_checkpoints(filesystem, entry.path, depth - 1)
