"""Shortest-first start-up against drawn order, and what early epochs say, from real curves.

Trains ``--candidates`` random candidates of a space for its full epochs (two
processes side by side, one torch thread each, as `nas search` runs trials on 2
cores) and records every epoch's validation accuracy and the time each took.
Then it replays those measured runs many times: each replay draws a start-up of
``--startup`` candidates (TPE's 10 by default) from them and schedules it on two
slots, once in drawn order and once cheapest first by resnas's own estimate
(``nas.study.startup.forward_macs``), and notes when the first candidate that
ends at ``--target`` or better finishes. The same candidates, the same measured
times: only the order differs. It also prints, per epoch, the rank correlation
of accuracy at that epoch with the final accuracy (what an early pruning
decision can know), and what median pruning from a given epoch would cost.

``ratio = median time-to-target shortest-first / median in drawn order`` (of
training time; Ray's start-up adds the same to both).

    python benchmarks/startup_order.py [--space search_spaces/resnet-digits.yaml]
        [--candidates 48] [--curves curves.jsonl (reuse a run's curves)]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SLOTS = 2
REPLAYS = 300


def collect(space_file: str, first: int, count: int, out: Path) -> None:
    """Worker: train ``count`` random candidates (seeded by ``first``), one JSON line each."""
    import optuna
    import yaml

    from nas import data
    from nas.space import parse_space
    from nas.training.loop import train

    text = Path(space_file).read_text()
    space = parse_space(yaml.safe_load(text), space_file, text)
    splits = data.load(space.dataset, seed=space.seed, options=space.data)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1000 + first))
    with out.open("a") as lines:
        for _ in range(count):
            trial = draws.ask()
            candidate = space.suggest(trial)
            started = time.perf_counter()
            result = train(candidate, splits, threads=1)
            lines.write(json.dumps({
                "candidate": candidate.to_dict(), "seconds": time.perf_counter() - started,
                "val": [h["val_accuracy"] for h in result.history]}) + "\n")
            lines.flush()
            draws.tell(trial, result.val_accuracy)


def replay(runs: list[dict[str, Any]], target: float, prune_from: int | None = None
           ) -> tuple[float, float]:
    """Schedule the runs in this order on SLOTS slots: (time the first run at the target
    ends, best final val). ``prune_from``: stop a run at that epoch when its best so far is
    below the median of runs already finished at that epoch (Optuna's MedianPruner)."""
    slots = [0.0] * SLOTS
    finished: list[tuple[float, list[float]]] = []
    hit, best = float("inf"), 0.0
    for run in runs:
        start = min(slots)
        slot = slots.index(start)
        epochs = len(run["val"])
        per_epoch = run["seconds"] / epochs
        stop = epochs
        for epoch in range(prune_from or epochs, epochs):
            now = start + per_epoch * epoch
            seen = [vals[epoch - 1] for end, vals in finished if end <= now]
            if seen and max(run["val"][:epoch]) < statistics.median(seen):
                stop = epoch
                break
        slots[slot] = start + per_epoch * stop
        if stop == epochs:
            finished.append((slots[slot], run["val"]))
            best = max(best, run["val"][-1])
            if run["val"][-1] >= target:
                hit = min(hit, slots[slot])
    return hit, best


def spearman(xs: list[float], ys: list[float]) -> float:
    from scipy.stats import spearmanr  # installed with scikit-learn

    return float(spearmanr(xs, ys).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="search_spaces/resnet-digits.yaml")
    parser.add_argument("--candidates", type=int, default=48)
    parser.add_argument("--startup", type=int, default=10)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--curves", help="a curves file from an earlier run, instead of training")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return collect(args.space, int(args.worker[0]), int(args.worker[1]), Path(args.worker[2]))

    from nas.candidate import Candidate
    from nas.study.startup import forward_macs

    if args.curves:
        curves = Path(args.curves)
    else:
        curves = Path(tempfile.mkdtemp(prefix="startup-order-")) / "curves.jsonl"
        share = [args.candidates // SLOTS + (i < args.candidates % SLOTS) for i in range(SLOTS)]
        workers = [subprocess.Popen([sys.executable, __file__, "--space", args.space,
                                     "--worker", str(i), str(n), str(curves)], cwd=ROOT,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
                   for i, n in enumerate(share)]
        if any(w.wait() for w in workers):
            raise SystemExit("a training worker failed")
        print(f"curves: {curves}")
    runs = [json.loads(line) for line in curves.read_text().splitlines()]
    for run in runs:
        run["macs"] = forward_macs(Candidate.from_dict(run["candidate"]))
    finals = [run["val"][-1] for run in runs]
    seconds = sorted(run["seconds"] for run in runs)
    print(f"{len(runs)} candidates: {sum(v >= args.target for v in finals)} end at "
          f">= {args.target:.1%}; seconds a run {seconds[0]:.1f}-{seconds[-1]:.1f} "
          f"(median {statistics.median(seconds):.1f}); rank correlation of the MAC estimate "
          f"with seconds {spearman([r['macs'] for r in runs], [r['seconds'] for r in runs]):.2f}")
    for epoch in range(1, len(runs[0]["val"])):
        at = [run["val"][epoch - 1] for run in runs]
        print(f"epoch {epoch}: median val {statistics.median(at):.2f}, rank correlation with "
              f"the final val {spearman(at, finals):.2f}")

    results: dict[str, list[tuple[float, float]]] = {}
    for replay_seed in range(REPLAYS):
        drawn = random.Random(replay_seed).sample(runs, min(args.startup, len(runs)))
        cheapest = sorted(drawn, key=lambda run: run["macs"])
        for name, order, prune in (("drawn order", drawn, None),
                                   ("shortest first", cheapest, None),
                                   ("shortest first, median pruning from epoch 4", cheapest, 4),
                                   ("shortest first, median pruning from epoch 6", cheapest, 6)):
            results.setdefault(name, []).append(replay(order, args.target, prune))
    print(f"\n{REPLAYS} replays of a {args.startup}-candidate start-up on {SLOTS} slots:")
    medians = {}
    for name, rows in results.items():
        hits = [hit for hit, _ in rows]
        medians[name] = statistics.median(hits)
        print(f"{name:<46} reaches the target in {sum(h < float('inf') for h in hits)}/"
              f"{len(rows)}; median time-to-target {medians[name]:.1f} s of training; "
              f"mean best val {statistics.mean(best for _, best in rows):.2%}")
    print(f"ratio={medians['shortest first'] / medians['drawn order']:.3f}")


if __name__ == "__main__":
    main()
