"""The dropped variants of resnas's search still run as described, on the shipped table:
a paused trial resumes from its rung and trains only its last epochs."""

from __future__ import annotations

from pathlib import Path

from benchmarks.replay_sim import Job, Table, simulate
from benchmarks.replay_variants import Promotion
from nas.space import load_space

ROOT = Path(__file__).resolve().parents[3]


def test_promotion_resumes_paused_trials_for_their_last_epochs_only() -> None:
    table = Table(ROOT / "benchmarks" / "curves" / "fashion-mnist.csv")
    space = load_space(ROOT / "search_spaces" / "fashion-mnist.yaml")
    method = Promotion(table, space, seed=0, workers=2, budget=900)
    resumed: list[Job] = []
    next_job = method.next_job

    def recording(now: float) -> Job:
        job = next_job(now)
        if job.resumed:
            resumed.append(job)
        return job

    method.next_job = recording  # type: ignore[method-assign]
    run = simulate(method, table, workers=2, budget=900)
    assert resumed, "no paused trial was ever promoted in 900 simulated seconds"
    assert all((job.first, job.last) == (method.rung + 1, table.epochs) for job in resumed)
    finals = {job.curve.final for job in resumed}
    # a promoted trial counts as found once it completes, like any other
    assert finals & {value for _, value in run.completions}
