"""Record every candidate of a space's finite version trained to its full budget.

The search strategies of ``benchmarks/replay.py`` are compared on this table
instead of on live training: each candidate's per-epoch validation accuracy,
validation loss and seconds are measured once here, then any strategy can be
replayed on them hundreds of times under a simulated clock.

The finite version crosses the space's categorical choices and every value of
its integer ranges; each float range becomes ``--grid`` points, the centres of
equal parts of the range (on the log scale for a log range), so a sampler's
proposal maps to the grid point of its part.  Candidates train as ``nas
search`` trains trials on 2 cores: ``--workers`` processes side by side, one
torch thread each, with the real ``nas.training.loop.train`` and the space's
data subset.  Rows are appended as each candidate finishes, so an interrupted
run resumes where it stopped (rerun the same command).

    python benchmarks/record_curves.py --space search_spaces/fashion-mnist.yaml \\
        [--seeds 0] [--workers 2] [--grid 3] [--out benchmarks/curves/fashion-mnist.csv]

Columns: ``key`` (the candidate's grid values as JSON), one column per searched
parameter, ``seed``, ``macs`` (one image of the dataset's shape), ``params``,
``epoch``, ``val_accuracy``, ``val_loss``, ``train_loss``, ``seconds`` (that
epoch, evaluation included), ``other_seconds`` (model build and the final test evaluation),
``test_accuracy`` (after the last epoch; never used for selection).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIELDS = ("key", "seed", "macs", "params", "epoch", "val_accuracy", "val_loss", "train_loss",
          "seconds", "other_seconds", "test_accuracy")


def grid_values(param: Any, points: int) -> list[Any]:
    """The values of one searched parameter in the finite version of its space."""
    from nas.space import Choice, FloatRange, IntRange

    if isinstance(param, Choice):
        return list(param.choices)
    if isinstance(param, IntRange):
        return list(range(param.low, param.high + 1, param.step))
    if isinstance(param, FloatRange):
        low, high = (math.log(param.low), math.log(param.high)) if param.log else (param.low,
                                                                                   param.high)
        centres = [low + (high - low) * (i + 0.5) / points for i in range(points)]
        return [float(f"{(math.exp(c) if param.log else c):.3g}") for c in centres]
    raise TypeError(f"cannot grid {param!r}")


def finite_space(space: Any, points: int) -> list[dict[str, Any]]:
    """Every grid point of the space's searched parameters, in a fixed order."""
    names = list(space.searched)
    values = [grid_values(space.searched[name], points) for name in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def load_space(path: str) -> Any:
    from nas.space import load_space as load

    return load(path)


_WORKER: dict[str, Any] = {}


def _init_worker(space_file: str) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER["space"] = load_space(space_file)


def train_one(values: dict[str, Any], seed: int) -> list[dict[str, Any]]:
    """Worker: train one grid point to the full budget; its rows, one per epoch."""
    import dataclasses

    from nas import data
    from nas.study.startup import forward_macs
    from nas.training.loop import train

    space = _WORKER["space"]
    key = ("splits", seed)
    if key not in _WORKER:
        _WORKER[key] = data.load(space.dataset, seed=seed, options=space.data)
    splits = _WORKER[key]
    candidate = dataclasses.replace(space.candidate(values), seed=seed)
    started = time.perf_counter()
    result = train(candidate, splits, threads=1)
    total = time.perf_counter() - started
    macs = forward_macs(candidate, (splits.in_channels, splits.image_size, splits.num_classes))
    setup = total - sum(epoch["seconds"] for epoch in result.history)
    rows = []
    for epoch in result.history:
        rows.append({
            "key": json.dumps(values, sort_keys=True), **values, "seed": seed, "macs": macs,
            "params": result.params, "epoch": epoch["epoch"],
            "val_accuracy": round(epoch["val_accuracy"], 5),
            "val_loss": round(epoch["val_loss"], 5), "train_loss": round(epoch["train_loss"], 5),
            "seconds": round(epoch["seconds"], 3), "other_seconds": round(setup, 3),
            "test_accuracy": round(result.test_accuracy, 5)
            if epoch["epoch"] == candidate.epochs else "",
        })
    return rows


def done_keys(path: Path) -> set[tuple[str, int]]:
    if not path.is_file():
        return set()
    with path.open() as handle:
        return {(row["key"], int(row["seed"])) for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="search_spaces/fashion-mnist.yaml")
    parser.add_argument("--out", default=None, help="default: benchmarks/curves/<space>.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--grid", type=int, default=3, help="points per float range")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many")
    args = parser.parse_args()

    space = load_space(args.space)
    out = Path(args.out or ROOT / "benchmarks" / "curves" / f"{space.name}.csv")
    grid = finite_space(space, args.grid)
    todo = [(values, seed) for seed in args.seeds for values in grid]
    random.Random(0).shuffle(todo)  # an early look at the table is a random sample
    done = done_keys(out)
    todo = [(v, s) for v, s in todo if (json.dumps(v, sort_keys=True), s) not in done]
    total = len(grid) * len(args.seeds)
    recorded = total - len(todo)
    if args.limit is not None:
        todo = todo[:args.limit]
    shown = os.path.relpath(out)
    print(f"record_curves: {len(grid)} grid points x {len(args.seeds)} seed(s) = {total}; "
          f"{recorded} recorded in {shown}, {len(todo)} to train on {args.workers} workers",
          flush=True)
    columns = ["key", *space.searched, *FIELDS[1:]]
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not out.is_file()
    started = time.perf_counter()
    with out.open("a", newline="") as handle, ProcessPoolExecutor(
            args.workers, initializer=_init_worker, initargs=(args.space,)) as pool:
        writer = csv.DictWriter(handle, columns)
        if fresh:
            writer.writeheader()
        futures = [pool.submit(train_one, values, seed) for values, seed in todo]
        for count, future in enumerate(as_completed(futures), 1):
            rows = future.result()
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
            last = rows[-1]
            elapsed = time.perf_counter() - started
            left = elapsed / count * (len(todo) - count)
            print(f"[{count}/{len(todo)}] {last['key']} seed {last['seed']}: "
                  f"val {last['val_accuracy']:.4f} in "
                  f"{sum(r['seconds'] for r in rows) + last['other_seconds']:.0f} s "
                  f"(about {left / 60:.0f} min left)", flush=True)


if __name__ == "__main__":
    main()
