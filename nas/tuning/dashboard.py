"""What optuna-dashboard shows beyond Optuna's own plots, written beside the search.

Each analysed trial gets a note (its per-block lesion table) and the study a figure of
nominal against useful depth. Both are storage writes, and the figure reads every
complete trial, so neither runs on Ray Tune's event thread, where it would delay the
next trial: :class:`DashboardWriter` takes them on a thread of its own, writes notes as
they come and redraws the figure at most every ``REDRAW_SECONDS`` (and once at the end).
A write that fails loses nothing of the study: it is one warning line, and the
``nas report`` of the study draws the same from the trials themselves.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import optuna

from nas.errors import one_line

REDRAW_SECONDS = 10.0
_log = logging.getLogger(__name__)
_FIGURE = object()  # a queue item: the depth figure needs a redraw
_STOP = object()


class DashboardWriter:
    """Notes and the depth figure of one study, off the caller's thread."""

    def __init__(self, study: optuna.Study, redraw_seconds: float = REDRAW_SECONDS) -> None:
        self.study = study
        self.redraw_seconds = redraw_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._warned = False
        self._thread = threading.Thread(target=self._run, name="resnas-dashboard", daemon=True)
        self._thread.start()

    def note(self, trial: optuna.Trial, markdown: str) -> None:
        """The trial's dashboard note (written soon, in order)."""
        self._queue.put((trial, markdown))

    def depth_changed(self) -> None:
        """A trial with a useful depth was told: redraw the figure when it is due."""
        self._queue.put(_FIGURE)

    def close(self) -> None:
        """Write what is queued, redraw a figure still due, and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        due, drawn = False, float("-inf")
        while True:
            wait = max(0.0, drawn + self.redraw_seconds - time.monotonic()) if due else None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                item = None  # the redraw is due
            if item is _STOP:
                if due:
                    self._guarded(self._draw_figure)
                return
            if item is _FIGURE:
                due = True
            elif item is not None:
                self._guarded(self._save_note, *item)
            if due and time.monotonic() - drawn >= self.redraw_seconds:
                self._guarded(self._draw_figure)
                due, drawn = False, time.monotonic()

    def _save_note(self, trial: optuna.Trial, markdown: str) -> None:
        from optuna_dashboard import save_note

        save_note(trial, markdown)

    def _draw_figure(self) -> None:
        from optuna_dashboard import save_plotly_graph_object

        from nas.report import DEPTH_FIGURE_ID, depth_info, plot_depth

        info = depth_info(self.study)
        if info["trial"]:
            save_plotly_graph_object(self.study, plot_depth(info),
                                     graph_object_id=DEPTH_FIGURE_ID)

    def _guarded(self, write, *args: Any) -> None:
        try:
            write(*args)
        except Exception as exc:  # noqa: BLE001 - the study itself is safe; say it once
            if not self._warned:
                self._warned = True
                _log.warning("warning: could not write the dashboard's notes or depth figure "
                             "(%s: %s); the study is intact and 'nas report' draws the same",
                             type(exc).__name__, one_line(exc, 200))
