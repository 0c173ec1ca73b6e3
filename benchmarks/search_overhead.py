"""What running trials through `nas search` costs against a plain loop, same run.

The same 8 fixed candidates (a grid: basic/preact x identity/projection x
width 8/16, ResNet-20 depth) train for 10 epochs on digits twice:
- through `nas search` as a user runs it (a new process: Ray start-up, 2
  concurrent trials of 1 CPU each, no pruning, the SQLite study, checkpoints);
- as a sequential loop in this process calling nas.training with every CPU.
ratio = search wall time / loop wall time (goal <= 1.0 on 2 cores: running
trials side by side should pay for Ray's start-up). Prints `ratio=<x>` last.

    python benchmarks/search_overhead.py
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas import data  # noqa: E402
from nas.space import parse_space  # noqa: E402
from nas.study.algorithms import grid_of  # noqa: E402
from nas.training.device import available_cpus  # noqa: E402
from nas.training.loop import train  # noqa: E402

SPACE = """\
name: overhead
dataset: digits
epochs: 10
trials: 8
space:
  blocks_per_stage: 3
  block: {type: categorical, choices: [basic, preact]}
  shortcut: {type: categorical, choices: [identity, projection]}
  width: {type: categorical, choices: [8, 16]}
  batch_size: 64
  lr: 0.2
sampler: {name: grid, seed: 0}
pruner: {name: none}
"""


def main() -> None:
    space = parse_space(yaml.safe_load(SPACE), "overhead.yaml", SPACE)
    grid = grid_of(space)
    candidates = [space.candidate(dict(zip(grid, values, strict=True)))
                  for values in itertools.product(*grid.values())]
    cpus = available_cpus()
    print(f"{len(candidates)} candidates x {space.epochs} epochs on digits, {cpus} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overhead.yaml"
        path.write_text(SPACE)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "nas.cli", "search", "--space", str(path), "--storage",
             f"sqlite:///{tmp}/nas.db", "--results", f"{tmp}/results", "--max-concurrent", "2",
             "--cpus-per-trial", "1"], cwd=ROOT, capture_output=True, text=True)
        search_seconds = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"nas search failed:\n{proc.stderr[-2000:]}")
        print(proc.stdout.splitlines()[0])

    start = time.perf_counter()
    splits = data.load("digits", seed=space.seed)
    accuracies = [train(c, splits, threads=cpus).val_accuracy for c in candidates]
    loop_seconds = time.perf_counter() - start
    print(f"loop: best val {max(accuracies):.2%}")
    print(f"nas search (2 concurrent trials, 1 CPU each, Ray start-up included): "
          f"{search_seconds:.1f} s")
    print(f"sequential nas.training loop ({cpus} threads): {loop_seconds:.1f} s")
    print(f"ratio={search_seconds / loop_seconds:.3f}")


if __name__ == "__main__":
    main()
