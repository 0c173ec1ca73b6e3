"""Load: one real `nas search` of many one-epoch trials; every trial is accounted for and
the driver's memory does not grow with them (benchmarks/load_search.py runs 2,000)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import psutil
import pytest
from helpers import stop_group
from optuna.trial import TrialState

from nas.study.queries import is_finished
from nas.tuning.driver import RUN_TRIALS_ENV

pytestmark = pytest.mark.slow

TRIALS = 120
MARGIN_MB = 150

SPACE = f"""\
name: load
dataset: digits
epochs: 1
trials: {TRIALS}
space:
  blocks_per_stage: 1
  width: {{type: categorical, choices: [4, 8]}}
  batch_size: 64
  schedule: constant
  lr: {{type: float, low: 0.05, high: 0.2, log: true}}
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
usefulness: {{enabled: false}}
"""

ENDED = re.compile(r"^trial\s+\d+ (complete|pruned|failed)")


def test_many_short_trials_all_recorded_with_bounded_driver_memory(tmp_path: Path) -> None:
    space = tmp_path / "load.yaml"
    space.write_text(SPACE)
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage", storage,
         "--results", str(tmp_path / "results")],
        cwd=tmp_path, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        # a heartbeat, and its check for abandoned trials, every second, among the trials;
        # and the search as three Tune runs of at most 50 trials, one after the other
        env={**os.environ, "RESNAS_HEARTBEAT_S": "1", RUN_TRIALS_ENV: "50"},
        start_new_session=True)
    lines: list[str] = []
    ended = [0]  # trials whose progress line has appeared

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            ended[0] += bool(ENDED.match(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[int, int]] = []  # (trials ended so far, driver RSS)
    driver = psutil.Process(proc.pid)
    try:
        # the search's end, however long a loaded machine takes (the deadline is only for
        # one that never ends)
        deadline = time.monotonic() + 1800
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                rss = driver.memory_info().rss
            except psutil.NoSuchProcess:
                break
            if rss:  # 0 once it has exited but is not yet reaped
                samples.append((ended[0], rss))
            time.sleep(0.2)
        proc.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        stop_group(proc, signal.SIGKILL)
    err = "".join(lines)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert ended[0] >= TRIALS

    trials = optuna.load_study(study_name="load", storage=storage).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert sum(is_finished(t) for t in trials) == TRIALS
    assert all(t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL)
    runs = sorted(p.name for p in (tmp_path / "results" / "load" / "tune").glob("run-*"))
    assert len(runs) == 3 and runs[1] == f"{runs[0]}-2", runs

    quarter = next(rss for ended, rss in samples if ended >= TRIALS // 4)
    second_half = max(rss for ended, rss in samples if ended >= TRIALS // 2)
    mb = 1024 * 1024
    assert second_half <= quarter + MARGIN_MB * mb, (
        f"driver RSS {quarter / mb:.0f} MB after {TRIALS // 4} trials, "
        f"up to {second_half / mb:.0f} MB after {TRIALS // 2}")
