"""What a running search shows: a live table on a terminal, lines in a log, JSON for scripts.

The searcher (:mod:`nas.tuning.searcher`) tells the study and hands each event to a
:class:`Progress`: a trial started, an epoch, a trial ended (:class:`TrialEnd`: number,
kind, values, reason). :class:`Progress` is the one owner of what a search counts (complete,
pruned, failed), of the best so far and of every line of text; its subclasses only choose
where the text goes:

- :class:`LiveProgress` on a terminal (:mod:`nas.tuning.live`): a table redrawn in place
  (``rich``), one row per running trial with its epoch bar and last validation accuracy,
  a header with the counts, the best so far, the elapsed time and an estimate of the time
  left; finished trials scroll above it as the lines a log gets.
- :class:`LineProgress` elsewhere (a log, CI, ``ray job submit``): a line per finished
  trial, and at most every ``HEARTBEAT_SECONDS`` a line saying what runs at which epoch,
  so a long trial shows life.
- :class:`JsonProgress` (``--progress json``): one JSON object per event on stdout.
- :class:`QuietProgress`: nothing (the Python API's default).

:func:`nas.tuning.options.make_progress` picks one by name; :func:`forward_logs` routes
resnas's own log records (a storage outage, say) to the same channel while a search runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from nas.candidate import Candidate
from nas.errors import NasError, option
from nas.names import PROGRESS_CHOICES

HEARTBEAT_SECONDS = 30.0
# What a trial's end may carry besides its values, shown in its JSON event.
END_DETAILS = ("useful_layers", "total_layers", "useful_layers_interval", "useful_blocks",
               "total_blocks", "fail_reason", "error", "test_accuracy", "params")


@dataclass(frozen=True)
class SearchStart:
    """What a search is about to run; ``front``: the study's best trial, or its Pareto
    front, before this run, as (number, values) pairs (a resumed search counts them)."""

    study: str
    budget: int
    epochs: int
    dataset: str
    concurrent: int
    per_trial: str
    pruner: str
    sampler: str
    objectives: int = 1
    front: tuple[tuple[int, tuple[float, ...]], ...] = ()


@dataclass(frozen=True)
class TrialEnd:
    """How a trial ended. ``kind``: complete, pruned, failed or retried (its worker died,
    or the search stopped it: its candidate runs again); ``values``: a complete trial's
    objective values; ``reason``: why it failed or is retried; ``details``: its last
    result (useful depth, test accuracy ...)."""

    number: int
    kind: str
    epochs: int
    val_accuracy: float | None = None
    values: tuple[float, ...] | None = None
    reason: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class _Running:
    number: int
    candidate: str
    started: float
    epoch: int = 0
    val: float | None = None


@dataclass
class Progress:
    """Keeps the search's state and makes its text; subclasses decide where it goes."""

    epochs: int = 0
    budget: int = 0
    objectives: int = 1
    started: float = field(default_factory=time.monotonic)
    running: dict[int, _Running] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"complete": 0, "pruned": 0,
                                                           "failed": 0})
    # The best trial, or the Pareto front (accuracy up, costs down): (number, values).
    front: list[tuple[int, tuple[float, ...]]] = field(default_factory=list)

    # --- events (the searcher and the driver call these) -----------------------------
    def search_started(self, start: SearchStart) -> None:
        self.budget, self.epochs, self.objectives = start.budget, start.epochs, start.objectives
        self.started = time.monotonic()
        self.front = []
        for number, values in start.front:
            self._update_front(number, values)
        text = (f"searching {start.budget} trial(s) of '{start.study}' ({start.dataset}, up to "
                f"{start.epochs} epochs each, {start.concurrent} at a time, {start.per_trial} "
                f"per trial; pruner {start.pruner}, sampler {start.sampler})")
        self.show_message(text, event={"event": "search_started", "study": start.study,
                                       "trials": start.budget, "epochs": start.epochs})

    def trial_started(self, number: int, candidate: dict[str, Any]) -> None:
        short = Candidate.from_dict(candidate).describe(compact=True)
        self.running[number] = _Running(number, short, time.monotonic())
        self.show_trial_started(number, candidate)

    def epoch(self, number: int, epoch: int, val: float) -> None:
        row = self.running.get(number)
        if row is not None:
            row.epoch, row.val = epoch, val
        self.show_epoch(number, epoch, val)

    def trial_ended(self, end: TrialEnd) -> None:
        self.running.pop(end.number, None)
        if end.kind in self.counts:
            self.counts[end.kind] += 1
        if end.kind == "complete" and end.values is not None:
            self._update_front(end.number, end.values)
        self.show_trial_ended(end, self.end_line(end))

    def message(self, text: str) -> None:
        self.show_message(text, event={"event": "message", "text": text})

    def search_finished(self, ran: int, interrupted: bool) -> None:
        self.show_finished(ran, interrupted)

    def close(self) -> None:
        """Leave the terminal as it was (also after Ctrl-C)."""

    # --- display (subclasses) --------------------------------------------------------
    def show_message(self, text: str, event: dict[str, Any]) -> None: ...
    def show_trial_started(self, number: int, candidate: dict[str, Any]) -> None: ...
    def show_epoch(self, number: int, epoch: int, val: float) -> None: ...
    def show_trial_ended(self, end: TrialEnd, line: str) -> None: ...
    def show_finished(self, ran: int, interrupted: bool) -> None: ...

    # --- the text --------------------------------------------------------------------
    def end_line(self, end: TrialEnd) -> str:
        """``trial   3 pruned at epoch 2 val 41.00% | running 1, complete 2, ... | best``."""
        state = {"complete": "complete", "pruned": f"pruned at epoch {end.epochs}",
                 "failed": f"failed ({end.reason})",
                 "retried": f"{end.reason}; will be retried"}.get(end.kind, end.kind)
        if end.kind == "complete" and "useful_layers" in end.details:
            state += (f" ({end.details['useful_layers']} of {end.details['total_layers']} "
                      "layers useful)")
        value = end.val_accuracy
        shown = f" val {value:.2%}" if _finite(value) else ""
        c = self.counts
        return (f"trial {end.number:>3} {state}{shown} | running {len(self.running)}, "
                f"complete {c['complete']}, pruned {c['pruned']}, failed {c['failed']}"
                f"{self.best_text()}")

    def best_text(self) -> str:
        if not self.front:
            return ""
        if self.objectives > 1:
            return f" | Pareto front {len(self.front)} trial(s)"
        number, values = self.front[0]
        return f" | best {values[0]:.2%} (trial {number})"

    def finished(self) -> int:
        return sum(self.counts.values())

    def estimate_left(self) -> float | None:
        """Seconds left: the time per finished trial so far (trials in parallel included),
        times the trials to go; None until one has finished."""
        done = self.finished()
        if not done:
            return None
        return (time.monotonic() - self.started) / done * max(0, self.budget - done)

    def header(self) -> str:
        c = self.counts
        elapsed = time.monotonic() - self.started
        left = self.estimate_left()
        eta = f", ~{_clock(left)} left" if left is not None and self.running else ""
        return (f"{self.finished()}/{self.budget} finished: complete {c['complete']}, pruned "
                f"{c['pruned']}, failed {c['failed']}{self.best_text()} | {_clock(elapsed)}{eta}")

    def _update_front(self, number: int, values: tuple[float, ...]) -> None:
        """The best trial (one objective: the first of the highest accuracy, as Optuna's
        ``best_trial``), or the non-dominated trials (``best_trials``)."""
        if self.objectives == 1:
            if not self.front or values[0] > self.front[0][1][0]:
                self.front = [(number, tuple(values))]
            return
        if any(_dominates(kept, values) for _, kept in self.front):
            return
        self.front = [(n, kept) for n, kept in self.front if not _dominates(values, kept)]
        self.front.append((number, tuple(values)))


class QuietProgress(Progress):
    """Shows nothing: for Python callers who asked for no output."""


@dataclass
class LineProgress(Progress):
    """Plain lines: what a log, CI or ``ray job submit`` can keep."""

    out: IO[str] = field(default_factory=lambda: sys.stderr)
    heartbeat: float = HEARTBEAT_SECONDS
    _last_line: float = field(default_factory=time.monotonic)

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        self._last_line = time.monotonic()

    def show_message(self, text: str, event: dict[str, Any]) -> None:
        self._print(text)

    def show_trial_ended(self, end: TrialEnd, line: str) -> None:
        self._print(line)

    def show_epoch(self, number: int, epoch: int, val: float) -> None:
        if time.monotonic() - self._last_line < self.heartbeat or not self.running:
            return
        rows = ", ".join(f"trial {r.number} epoch {r.epoch}/{self.epochs}"
                         + (f" val {r.val:.2%}" if r.val is not None else "")
                         for r in sorted(self.running.values(), key=lambda r: r.number))
        self._print(f"running: {rows} | {self.header()}")


@dataclass
class JsonProgress(Progress):
    """One JSON object per event on ``out`` (stdout), for scripts; the fields in
    docs/search.md, "Progress"."""

    out: IO[str] = field(default_factory=lambda: sys.stdout)

    def _emit(self, event: dict[str, Any]) -> None:
        event = {**event, "time": round(time.time(), 3)}
        print(json.dumps(event, default=_plain), file=self.out, flush=True)

    def show_message(self, text: str, event: dict[str, Any]) -> None:
        self._emit(event)

    def show_trial_started(self, number: int, candidate: dict[str, Any]) -> None:
        self._emit({"event": "trial_started", "trial": number, "candidate": candidate})

    def show_epoch(self, number: int, epoch: int, val: float) -> None:
        self._emit({"event": "epoch", "trial": number, "epoch": epoch, "val_accuracy": val})

    def show_trial_ended(self, end: TrialEnd, line: str) -> None:
        event: dict[str, Any] = {"event": end.kind, "trial": end.number, "epochs": end.epochs}
        if _finite(end.val_accuracy):
            event["val_accuracy"] = end.val_accuracy
        event.update((key, end.details[key]) for key in END_DETAILS if key in end.details)
        self._emit(event)

    def show_finished(self, ran: int, interrupted: bool) -> None:
        self._emit({"event": "search_finished", "ran": ran, "interrupted": interrupted,
                    **self.counts})


def check_progress_kind(kind: str) -> None:
    if kind not in PROGRESS_CHOICES:
        raise NasError(f"{option('progress')}: got {kind!r}; allowed: "
                       f"{', '.join(PROGRESS_CHOICES)} or a nas.tuning.progress.Progress")


class _ToProgress(logging.Handler):
    def __init__(self, progress: Progress) -> None:
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.message(record.getMessage())


@contextlib.contextmanager
def forward_logs(progress: Progress) -> Iterator[None]:
    """resnas's own log records (``nas.*``, e.g. a storage outage and its end) go to the
    search's display while it runs: above a live table, into the log, as JSON messages,
    or nowhere for a quiet search; library code never writes to stderr itself."""
    logger = logging.getLogger("nas")
    handler = _ToProgress(progress)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` at least as good everywhere (accuracy up, costs down) and not equal."""
    return (a != b and a[0] >= b[0]
            and all(x <= y for x, y in zip(a[1:], b[1:], strict=True)))


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _plain(value: Any) -> Any:
    """JSON for what Tune results may hold beyond plain types (numpy numbers, tuples)."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
