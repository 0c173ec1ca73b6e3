"""Where a short `nas search` spends its time, against `nas train` of the same network.

A one-trial search of a small candidate (ResNet-8, width 8, 2 epochs on digits) is
run as a user runs it, in a new process, with its phases timed from inside that
process: Python imports and input checks, `ray.init`, Ray Tune until it asks for
the first trial, the trial's first epoch (the worker's start, imports and data
load included), the rest of the trial, recording it in the study, `ray.shutdown`,
the report, and the process's exit. `nas train` of the same candidate, also a new
process, is the baseline: what the same work costs without a search around it.
Each side runs ``--repeats`` times in turn; medians are printed.
``ratio = search wall / train wall`` (the fixed cost a search adds to a trial).

    python benchmarks/search_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# This checkout's resnas, unless PYTHONPATH names another (a before/after comparison).
ENV = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH") or str(ROOT)}

SPACE = """\
name: startup
dataset: digits
epochs: 2
trials: 1
space:
  blocks_per_stage: 1
  width: 8
sampler: {name: random, seed: 0}
pruner: {name: none}
usefulness: {enabled: false}
"""

# Runs inside the timed `nas search` process: wraps the driver's phase boundaries.
PROBE = r"""
import importlib.abc, importlib.machinery, json, sys, time
T0 = time.time()
marks = {}
def mark(name):
    marks.setdefault(name, time.time() - T0)
import ray
import nas.cli
import nas.tuning.driver as driver
import nas.tuning.cluster as cluster
start_ray = cluster._start
def timed_start(*args):
    mark("imports and checks")
    started = start_ray(*args)
    mark("ray.init")
    return started
cluster._start = timed_start
shutdown = ray.shutdown
def timed_shutdown(*a, **k):
    mark("trial recorded")
    shutdown(*a, **k)
    mark("ray.shutdown")
ray.shutdown = timed_shutdown
def wrap_searcher(tune_side):
    suggest = tune_side.StudySearcher.suggest
    def timed_suggest(self, *a, **k):
        mark("Tune until the first trial")
        return suggest(self, *a, **k)
    tune_side.StudySearcher.suggest = timed_suggest
    observe = tune_side.StudySearcher.observe
    def timed_observe(self, trial_id, result):
        mark("first epoch (worker start, imports, data)")
        if "checkpoint" in result:
            mark("rest of the trial")
        return observe(self, trial_id, result)
    tune_side.StudySearcher.observe = timed_observe
class WrapOnImport(importlib.abc.MetaPathFinder):
    # The searcher's module imports Ray Tune: wrapped when the search imports it, so the
    # probe moves no import earlier than the search itself makes it.
    def find_spec(self, name, path, target=None):
        if name != "nas.tuning.searcher":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            wrap_searcher(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, WrapOnImport())
report = driver._write_report
def timed_report(*a):
    written = report(*a)
    mark("report")
    return written
driver._write_report = timed_report
import atexit
atexit.register(lambda: print("PHASES " + json.dumps(marks), file=sys.stderr, flush=True))
sys.argv = ["nas"] + sys.argv[1:]
if hasattr(nas.cli, "run"):
    nas.cli.run()
sys.exit(nas.cli.main())  # resnas before nas.cli.run, for a before/after comparison
"""


def search_once(folder: Path) -> tuple[float, dict[str, float]]:
    space = folder / "startup.yaml"
    space.write_text(SPACE)
    started = time.time()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, "search", "--space", str(space), "--storage",
         f"sqlite:///{folder / 'nas.db'}", "--results", str(folder / "results")],
        cwd=folder, env=ENV, capture_output=True, text=True)
    wall = time.time() - started
    if proc.returncode != 0:
        raise SystemExit(f"nas search failed: {proc.stderr[-2000:]}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("PHASES "))
    marks = json.loads(line.removeprefix("PHASES "))
    phases, previous = {}, 0.0
    for name, at in sorted(marks.items(), key=lambda kv: kv[1]):  # cumulative -> durations
        phases[name] = at - previous
        previous = at
    phases["exit"] = wall - previous
    return wall, phases


def train_once(folder: Path) -> float:
    candidate = folder / "candidate.yaml"
    candidate.write_text("name: startup\ndataset: digits\nepochs: 2\nseed: 0\n"
                         "space:\n  blocks_per_stage: 1\n  width: 8\n")
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "train", "--config", str(candidate),
                           "--threads", "1"], cwd=folder, env=ENV, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nas train failed: {proc.stderr[-2000:]}")
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    walls, trains, phases = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
            wall, phase = search_once(Path(tmp))
        walls.append(wall)
        phases.append(phase)
        with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
            trains.append(train_once(Path(tmp)))
    for name in phases[0]:
        values = [p.get(name, 0.0) for p in phases]
        print(f"{name:<45} {statistics.median(values):6.2f} s")
    search, train = statistics.median(walls), statistics.median(trains)
    print(f"{'nas search, whole process':<45} {search:6.2f} s")
    print(f"{'nas train, same candidate, whole process':<45} {train:6.2f} s")
    print(f"ratio={search / train:.3f}")


if __name__ == "__main__":
    main()
