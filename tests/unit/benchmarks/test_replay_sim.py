"""The replay's clock: each epoch costs its recorded seconds, each method its fixed costs,
a stopped trial frees its worker, and only trials trained to the end count as found."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.replay_sim import Costs, Job, Method, Table, simulate

CURVES = {  # lr -> (val per epoch, seconds per epoch)
    0.01: ((0.5, 0.6, 0.7), (10.0, 10.0, 10.0)),
    0.1: ((0.7, 0.8, 0.9), (5.0, 5.0, 5.0)),
}


@pytest.fixture
def table(tmp_path: Path) -> Table:
    path = tmp_path / "curves.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["key", "lr", "seed", "macs", "params", "epoch",
                                         "val_accuracy", "seconds", "other_seconds"])
        writer.writeheader()
        for lr, (vals, secs) in CURVES.items():
            for epoch, (val, sec) in enumerate(zip(vals, secs, strict=True), 1):
                writer.writerow({"key": json.dumps({"lr": lr}), "lr": lr, "seed": 0,
                                 "macs": 1, "params": 1, "epoch": epoch, "val_accuracy": val,
                                 "seconds": sec, "other_seconds": 1.0})
    return Table(path)


class InOrder(Method):
    """Trains the given learning rates in order; stops any trial whose val is below
    ``stop_below``."""

    costs = Costs(start=2.0, per_trial=0.5, per_complete=0.25)

    def __init__(self, table: Table, lrs: list[float], stop_below: float = 0.0) -> None:
        self.table, self.lrs, self.stop_below = table, list(lrs), stop_below
        self.ended: list[tuple[float, int]] = []

    def next_job(self, now: float) -> Job | None:
        if not self.lrs:
            return None
        return Job(None, self.table.lookup({"lr": self.lrs.pop(0)}), 1, self.table.epochs)

    def after_epoch(self, job: Job, epoch: int, value: float, now: float) -> bool:
        return value < self.stop_below

    def job_ended(self, job: Job, epoch: int, now: float) -> None:
        self.ended.append((now, epoch))


def test_one_worker_trains_one_trial_after_another(table: Table) -> None:
    run = simulate(InOrder(table, [0.01, 0.1]), table, workers=1, budget=1000)
    first = 2.0 + 0.5 + 30.0 + 1.0 + 0.25
    assert run.completions == [(first, 0.7), (first + 0.5 + 15.0 + 1.25, 0.9)]
    assert (run.trials, run.epochs) == (2, 6)
    assert run.time_to(0.85) == first + 16.75
    assert run.best_at([0.0, first, 100.0]).tolist()[1:] == [0.7, 0.9]


def test_a_stopped_trial_frees_its_worker_and_is_not_found(table: Table) -> None:
    method = InOrder(table, [0.01, 0.1], stop_below=0.55)
    run = simulate(method, table, workers=1, budget=1000)
    assert method.ended[0] == (12.5, 1)  # stopped after its first epoch
    assert run.completions == [(12.5 + 0.5 + 15.0 + 1.25, 0.9)]


def test_the_budget_cuts_the_search_and_workers_run_side_by_side(table: Table) -> None:
    run = simulate(InOrder(table, [0.01, 0.1]), table, workers=2, budget=20.0)
    assert run.completions == [(2.5 + 15.0 + 1.25, 0.9)]  # the slow one is still training
    assert run.time_to(0.95) == float("inf")


def test_floats_snap_to_the_grid_point_of_their_part(table: Table) -> None:
    assert table.lookup({"lr": 0.02}).final == 0.7  # nearer 0.01 on the log scale
    assert table.lookup({"lr": 0.05}).final == 0.9
