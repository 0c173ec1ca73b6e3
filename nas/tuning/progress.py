"""What a running search shows: a live table on a terminal, lines in a log, JSON for scripts.

The searcher (:mod:`nas.tuning.tune`) sees every trial start, every epoch and every end
in the driver; it hands each to a :class:`Progress`, which only displays. Four kinds:

- :class:`LiveProgress` on a terminal: a table redrawn in place (``rich``), one row
  per running trial with its epoch bar and last validation accuracy, a header with the
  counts, the best so far, the elapsed time and an estimate of the time left; finished
  trials scroll above it as the lines a log gets.
- :class:`LineProgress` elsewhere (a log, CI, ``ray job submit``): a line per finished
  trial, and at most every ``HEARTBEAT_SECONDS`` a line saying what runs at which epoch,
  so a long trial shows life.
- :class:`JsonProgress` (``--progress json``): one JSON object per event on stdout.
- :class:`QuietProgress`: nothing (the Python API's default).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

HEARTBEAT_SECONDS = 30.0


@dataclass
class _Running:
    number: int
    candidate: str
    started: float
    epoch: int = 0
    val: float | None = None


@dataclass
class Progress:
    """Keeps the search's state; subclasses decide how it is shown."""

    epochs: int = 0
    budget: int = 0
    started: float = field(default_factory=time.monotonic)
    running: dict[int, _Running] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"complete": 0, "pruned": 0,
                                                           "failed": 0})
    best: str = ""

    # --- events (the searcher calls these) -------------------------------------------
    def search_started(self, study: str, budget: int, epochs: int, text: str) -> None:
        self.budget, self.epochs = budget, epochs
        self.started = time.monotonic()
        self.show_message(text, event={"event": "search_started", "study": study,
                                       "trials": budget, "epochs": epochs})

    def trial_started(self, number: int, candidate: dict[str, Any]) -> None:
        self.running[number] = _Running(number, short_candidate(candidate), time.monotonic())
        self.show_trial_started(number, candidate)

    def epoch(self, number: int, epoch: int, val: float) -> None:
        row = self.running.get(number)
        if row is not None:
            row.epoch, row.val = epoch, val
        self.show_epoch(number, epoch, val)

    def trial_ended(self, number: int, kind: str, line: str, result: dict[str, Any],
                    best: str) -> None:
        """``kind``: complete, pruned, failed or retried; ``line`` is the log line."""
        self.running.pop(number, None)
        if kind in self.counts:
            self.counts[kind] += 1
        self.best = best
        self.show_trial_ended(number, kind, line, result)

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
    def show_trial_ended(self, number: int, kind: str, line: str,
                         result: dict[str, Any]) -> None: ...
    def show_finished(self, ran: int, interrupted: bool) -> None: ...

    # --- shared text -----------------------------------------------------------------
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
                f"{c['pruned']}, failed {c['failed']}{self.best} | {_clock(elapsed)}{eta}")


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

    def show_trial_ended(self, number, kind, line, result) -> None:
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
    """One JSON object per event on ``out`` (stdout), for scripts; fields in the README."""

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

    def show_trial_ended(self, number, kind, line, result) -> None:
        event: dict[str, Any] = {"event": kind, "trial": number,
                                 "epochs": int(result.get("epoch", 0))}
        value = result.get("val_accuracy")
        if isinstance(value, float) and math.isfinite(value):
            event["val_accuracy"] = value
        for key in ("useful_layers", "total_layers", "useful_layers_interval", "useful_blocks",
                    "total_blocks", "fail_reason", "error", "test_accuracy", "params"):
            if key in result:
                event[key] = result[key]
        self._emit(event)

    def show_finished(self, ran: int, interrupted: bool) -> None:
        self._emit({"event": "search_finished", "ran": ran, "interrupted": interrupted,
                    **self.counts})


def short_candidate(candidate: dict[str, Any]) -> str:
    """block/shortcut, stage depths and width: enough to tell running trials apart."""
    depth = candidate.get("blocks_per_stage", "?")
    if isinstance(depth, list | tuple):
        depth = "x".join(map(str, depth))
    else:
        depth = "x".join([str(depth)] * int(candidate.get("stages", 3)))
    return (f"{candidate.get('block', '?')}/{candidate.get('shortcut', '?')} {depth} "
            f"w{candidate.get('width', '?')}")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _plain(value: Any) -> Any:
    """JSON for what Tune results may hold beyond plain types (numpy numbers, tuples)."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
