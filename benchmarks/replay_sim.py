"""The replay's parts: recorded curves, a simulated clock with workers, and the methods.

``benchmarks/replay.py`` runs search strategies on a table written by
``benchmarks/record_curves.py``. A method only decides (which candidate next, stop or go
on after an epoch, which paused trial to resume); this module's :func:`simulate` plays
its decisions on ``workers`` simulated workers, each epoch taking the seconds it took
when recorded, plus the fixed costs the method pays in real runs (its start-up, a cost
per trial started, per trial resumed). resnas decides through
:class:`nas.study.policy.SearchPolicy`, the object ``nas search`` drives from Ray Tune.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Curve:
    """One candidate of the table: its per-epoch validation accuracy and seconds."""

    key: str
    values: dict[str, Any]
    val: tuple[float, ...]
    seconds: tuple[float, ...]
    other_seconds: float  # model build and the final test evaluation
    macs: int
    params: int

    @property
    def final(self) -> float:
        return self.val[-1]

    @property
    def blocks(self) -> int:
        """Residual blocks, for the lesion analysis's cost (3 stages, as the spaces have)."""
        return 3 * int(self.values.get("blocks_per_stage", 1))


class Table:
    """The recorded curves of one space's finite version (one training seed)."""

    def __init__(self, path: str | Path, seed: int = 0) -> None:
        rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if int(row["seed"]) == seed:
                    rows[row["key"]].append(row)
        self.curves: dict[str, Curve] = {}
        for key, group in rows.items():
            group.sort(key=lambda r: int(r["epoch"]))
            self.curves[key] = Curve(
                key, json.loads(key), tuple(float(r["val_accuracy"]) for r in group),
                tuple(float(r["seconds"]) for r in group), float(group[0]["other_seconds"]),
                int(group[0]["macs"]), int(group[0]["params"]))
        self.epochs = min(len(c.val) for c in self.curves.values())
        names = next(iter(self.curves.values())).values
        self.grid = {name: sorted({c.values[name] for c in self.curves.values()},
                                  key=_order) for name in names}

    def finals(self) -> np.ndarray:
        return np.array([c.final for c in self.curves.values()])

    def lookup(self, params: dict[str, Any]) -> Curve:
        """The curve of the grid point whose part of the space holds ``params``: floats go
        to the nearest grid value on the log scale (the grid is the parts' centres)."""
        snapped = {}
        for name, choices in self.grid.items():
            value = params[name]
            if isinstance(value, float) and all(isinstance(c, float) for c in choices):
                value = min(choices, key=lambda c: abs(math.log(c) - math.log(value)))
            snapped[name] = value
        return self.curves[json.dumps(snapped, sort_keys=True)]


def _order(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


@dataclass(frozen=True)
class Costs:
    """What a method pays besides training, in seconds, as measured in real runs."""

    start: float  # process start to the first epoch's start, besides training
    per_trial: float  # each trial started (worker hand-over, data, model)
    per_resume: float = 0.0  # each paused trial resumed from its checkpoint
    per_complete: float = 0.0  # each trial trained to the end (a checkpoint, recording)
    # resnas's lesion analysis of a complete trial: this times blocks² times the trial's
    # test evaluation (other_seconds; 10,000 images, five times the 2,000 val images the
    # analysis passes over); 0.018 fits 2.7 s for 6 blocks and 10.6 s for 9 (measured).
    analysis: float = 0.0


@dataclass(eq=False)  # a job is itself: methods key their bookkeeping by it
class Job:
    """A stretch of training: ``curve`` from ``first`` to ``last`` epoch (inclusive)."""

    handle: Any
    curve: Curve
    first: int
    last: int
    resumed: bool = False


@dataclass
class Run:
    """What one simulated search did: every full trial's end, and totals."""

    completions: list[tuple[float, float]] = field(default_factory=list)  # (time, final val)
    epochs: int = 0
    trials: int = 0
    end: float = 0.0

    def best_at(self, times: np.ndarray) -> np.ndarray:
        """Best final val of the trials complete by each time (nan before the first)."""
        out = np.full(len(times), np.nan)
        best = -np.inf
        events = sorted(self.completions)
        i = 0
        for k, t in enumerate(times):
            while i < len(events) and events[i][0] <= t:
                best = max(best, events[i][1])
                i += 1
            if best > -np.inf:
                out[k] = best
        return out

    def time_to(self, target: float) -> float:
        hits = [t for t, v in self.completions if v >= target - 1e-12]
        return min(hits) if hits else math.inf


class Method:
    """A search strategy: its decisions, and what it pays in real runs."""

    name = "method"
    costs = Costs(0.0, 0.0)

    def __init__(self, table: Table, space: Any, seed: int, workers: int,
                 budget: float) -> None:
        raise NotImplementedError

    def next_job(self, now: float) -> Job | None:
        """Work for a free worker; None: nothing now (asked again when a job ends)."""
        raise NotImplementedError

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        """True: stop this job after ``epoch``."""
        return False

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        """``job`` trained to ``epoch`` (its last, or where it was stopped)."""

    def done(self) -> bool:
        """True once the method has nothing more to run (a trial budget spent)."""
        return False


def simulate(method: Method, table: Table, workers: int, budget: float) -> Run:
    """Play ``method`` on ``workers`` simulated workers for ``budget`` seconds.

    Events in time order: an epoch's end (the method says stop or go on), and a full
    trial's end (its test evaluation and the method's per-trial work after training),
    when the worker is free again and the trial counts as found.
    """
    run = Run()
    clock = method.costs.start
    free = list(range(workers))
    events: list[tuple[float, int, int, Job, int]] = []  # (time, order, worker, job, epoch)
    order = 0

    def push(at: float, worker: int, job: Job, epoch: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (at, order, worker, job, epoch))

    while True:
        while free and not method.done():
            job = method.next_job(clock)
            if job is None:
                break
            run.trials += 0 if job.resumed else 1
            start = clock + (method.costs.per_resume if job.resumed else method.costs.per_trial)
            push(start + job.curve.seconds[job.first - 1], free.pop(), job, job.first)
        if not events:
            break
        clock, _, worker, job, epoch = heapq.heappop(events)
        if clock > budget:
            clock = budget
            break
        if epoch > table.epochs:  # the full trial's end: after its last epoch's extra work
            run.completions.append((clock, job.curve.final))
            method.job_ended(job, table.epochs, clock)
            free.append(worker)
            continue
        run.epochs += 1
        stop = method.after_epoch(job, epoch, job.curve.val[epoch - 1], clock)
        if epoch == table.epochs:
            extra = (job.curve.other_seconds + method.costs.per_complete
                     + method.costs.analysis * job.curve.blocks ** 2 * job.curve.other_seconds)
            push(clock + extra, worker, job, epoch + 1)
        elif epoch < job.last and not stop:
            push(clock + job.curve.seconds[epoch], worker, job, epoch + 1)
        else:
            method.job_ended(job, epoch, clock)
            free.append(worker)
    run.end = clock
    return run
