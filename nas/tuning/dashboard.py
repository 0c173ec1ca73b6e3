"""What optuna-dashboard shows beyond Optuna's own plots, written beside the search.

Each analysed trial gets a note (its per-block lesion table) and the study a figure of
nominal against useful depth. Both are storage writes, so neither runs on Ray Tune's
event thread, where it would delay the next trial: :class:`DashboardWriter` takes them on
a thread of its own, writes notes as they come and redraws the figure at most every
``REDRAW_SECONDS`` (and once at the end). The figure's points are read from the study
once, lean, when the writer starts; after that each told trial brings its own point, so
a redraw costs the same at 10,000 trials as at 10 (issue 28: reading every trial at each
redraw took 16 s at 10,000). A write that fails loses nothing of the study: it is one
warning line, and the ``nas report`` of the study draws the same from the trials.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import optuna

from nas.errors import one_line
from nas.report.info import DepthPoint

REDRAW_SECONDS = 10.0
_log = logging.getLogger(__name__)
_STOP = object()


class DashboardWriter:
    """Notes and the depth figure of one study, off the caller's thread."""

    def __init__(self, study: optuna.Study, redraw_seconds: float = REDRAW_SECONDS) -> None:
        self.study = study
        self.redraw_seconds = redraw_seconds
        self._queue: queue.Queue[Any] = queue.Queue()
        self._warned = False
        self._points: dict[int, DepthPoint] = {}  # per trial number; read at the start
        self._thread = threading.Thread(target=self._run, name="resnas-dashboard", daemon=True)
        self._thread.start()

    def note(self, trial: optuna.Trial, markdown: str) -> None:
        """The trial's dashboard note (written soon, in order)."""
        self._queue.put((trial, markdown))

    def depth_changed(self, point: DepthPoint) -> None:
        """A trial with a useful depth was told: add its point, redraw when it is due."""
        self._queue.put(point)

    def close(self) -> None:
        """Write what is queued, redraw a figure still due, and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        self._guarded(self._read_points)
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
            if isinstance(item, dict):  # a DepthPoint
                self._points[item["trial"]] = item
                due = True
            elif item is not None:
                self._guarded(self._save_note, *item)
            if due and time.monotonic() - drawn >= self.redraw_seconds:
                self._guarded(self._draw_figure)
                due, drawn = False, time.monotonic()

    def _save_note(self, trial: optuna.Trial, markdown: str) -> None:
        from optuna_dashboard import save_note

        save_note(trial, markdown)

    def _read_points(self) -> None:
        """The points of the trials the study held before this search (one lean read)."""
        from nas.report.info import depth_points
        from nas.study.queries import LeanStudy

        keys = ("candidate", "useful_layers", "total_layers", "useful_layers_interval")
        for point in depth_points(LeanStudy(self.study, keys, (), steps=False)):
            self._points.setdefault(point["trial"], point)

    def _draw_figure(self) -> None:
        from optuna_dashboard import save_plotly_graph_object

        from nas.report import DEPTH_FIGURE_ID, plot_depth
        from nas.report.info import depth_info_of

        if not self._points:
            return
        points = [self._points[n] for n in sorted(self._points)]
        best = max(p["accuracy"] for p in points)  # drawn whatever is sampled
        info = depth_info_of(points, {p["trial"] for p in points if p["accuracy"] == best})
        save_plotly_graph_object(self.study, plot_depth(info), graph_object_id=DEPTH_FIGURE_ID)

    def _guarded(self, write, *args: Any) -> None:
        try:
            write(*args)
        except Exception as exc:  # noqa: BLE001 - the study itself is safe; say it once
            if not self._warned:
                self._warned = True
                _log.warning("warning: could not write the dashboard's notes or depth figure "
                             "(%s: %s); the study is intact and 'nas report' draws the same",
                             type(exc).__name__, one_line(exc, 200))
