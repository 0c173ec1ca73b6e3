"""Two-objective search with and without the pareto pruner, replayed 100 times and once
for real: how soon each reaches the unpruned search's final hypervolume.

Replay (the default): every method of ``benchmarks/mo_methods.py`` (resnas with the
pareto pruner, the same sampler and seed without it, Syne Tune's MOASHA where it is
installed) searches the recorded Fashion-MNIST curves (``benchmarks/record_curves.py``)
under the simulated clock of ``benchmarks/replay_sim.py``: ``--workers`` workers, a
``--budget`` of seconds, each epoch costing what it cost when recorded and each tool its
fixed costs. The objectives are the space file's: val accuracy up, MACs per image down.

Hypervolume: of the complete trials' (val accuracy, log MACs), both scaled to [0, 1] over
the table (the reference point is its worst final accuracy and its largest network),
divided by the hypervolume of the whole table's front, so 1.0 is every candidate known.
Per seed, the unpruned search's final hypervolume is the target; each method's time to
reach it (never: inf) is compared with the time the unpruned search took. Printed: the
median over seeds of each, the share of seeds within 1% of the target at the end, and
last ``ratio=`` (pruned / unpruned median time to the target).

    python benchmarks/mo_pruning.py [--seeds 100] [--budget 1800] [--workers 2]
        [--space search_spaces/fashion-mnist-macs.yaml] [--methods resnas-pareto,...]
    python benchmarks/mo_pruning.py --real [--real-space ...] [--real-seconds 300]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.mo_methods import MO_METHODS  # noqa: E402
from benchmarks.replay_sim import Table, simulate  # noqa: E402


class Scale:
    """Objective space scaled by a table: accuracy from its worst final to its best, log
    MACs from its smallest network to its largest."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        accs, costs = zip(*points, strict=True)
        self.acc_low, self.acc_high = min(accs), max(accs)
        self.cost_low, self.cost_high = math.log(min(costs)), math.log(max(costs))
        self.full = 1.0
        self.full = self.hypervolume(points)

    def hypervolume(self, points: list[tuple[float, float]]) -> float:
        """Area dominated by ``points`` (accuracy, MACs) above the reference point, over the
        whole table's (2-D: sweep by cost, keep the best accuracy so far)."""
        scaled = sorted(((math.log(c) - self.cost_low) / (self.cost_high - self.cost_low),
                         (a - self.acc_low) / (self.acc_high - self.acc_low))
                        for a, c in points)
        area, best = 0.0, 0.0
        for (cost, acc), following in zip(scaled, [*scaled[1:], (1.0, 0.0)], strict=True):
            best = max(best, acc)
            area += (following[0] - cost) * best
        return area / self.full


def hypervolume_times(points: list[tuple[float, float, float]], scale: Scale
                      ) -> list[tuple[float, float]]:
    """(time, hypervolume) after each complete trial, in time order."""
    out, seen = [], []
    for time, acc, macs in sorted(points):
        seen.append((acc, macs))
        out.append((time, scale.hypervolume(seen)))
    return out


def time_to(curve: list[tuple[float, float]], target: float) -> float:
    return next((t for t, hv in curve if hv >= target - 1e-12), math.inf)


def _one(job: tuple[str, str, str, int, int, float, str]) -> dict[str, Any]:
    """Worker: one method, one seed: its complete trials and counts."""
    table_path, space_path, method, seed, workers, budget, sampler = job
    import dataclasses

    from nas.space import load_space

    table, space = Table(table_path), load_space(space_path)
    if sampler:  # the file's sampler replaced, with Optuna's defaults
        space = dataclasses.replace(space, sampler={"name": sampler, "seed": space.seed})
    searcher = MO_METHODS[method](table, space, seed, workers, budget)
    run = simulate(searcher, table, workers, budget)
    return {"method": method, "seed": seed, "points": searcher.points, "trials": run.trials,
            "epochs": run.epochs}


def summarise(results: list[dict[str, Any]], methods: list[str], scale: Scale,
              seeds: range) -> dict[str, dict[str, Any]]:
    by = {(r["method"], r["seed"]): r for r in results}
    summary: dict[str, dict[str, Any]] = {m: {"ttt": [], "final": [], "within": 0,
                                              "trials": [], "epochs": []} for m in methods}
    base = []
    for seed in seeds:
        unpruned = hypervolume_times(by["resnas-unpruned", seed]["points"], scale)
        target = unpruned[-1][1] if unpruned else math.inf
        base.append(time_to(unpruned, target))
        for method in methods:
            run = by[method, seed]
            curve = hypervolume_times(run["points"], scale)
            final = curve[-1][1] if curve else 0.0
            s = summary[method]
            s["ttt"].append(time_to(curve, target))
            s["final"].append(final / target if target else math.nan)
            s["within"] += final >= 0.99 * target
            s["trials"].append(run["trials"])
            s["epochs"].append(run["epochs"])
    for s in summary.values():
        s["median_ttt"] = statistics.median(s["ttt"])
        s["reached"] = sum(math.isfinite(t) for t in s["ttt"])
    summary["resnas-unpruned"]["median_ttt"] = statistics.median(base)
    return summary


def replay(args: argparse.Namespace) -> None:
    methods = args.methods.split(",")
    if "moasha" in methods and not _has_syne_tune():
        print("moasha: Syne Tune is not installed here (pip install syne-tune); left out")
        methods.remove("moasha")
    table = Table(args.table)
    scale = Scale([(c.final, c.macs) for c in table.curves.values()])
    print(f"replay: {len(table.curves)} candidates, {table.epochs} epochs; {args.seeds} seeds x "
          f"{len(methods)} methods, {args.workers} workers, {args.budget:.0f} s budget; space "
          f"{args.space}{f', sampler {args.sampler}' if args.sampler else ''}", flush=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(args.table, args.space, m, seed, args.workers, args.budget, args.sampler)
            for m in methods for seed in seeds]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_one, jobs, chunksize=1)
    summary = summarise(results, methods, scale, seeds)
    print("| method | median time to the unpruned final HV | reached | final HV / target "
          "(median) | within 1% at the end | trials | epochs |")
    print("|---|---|---|---|---|---|---|")
    for method, s in summary.items():
        ttt = "never" if math.isinf(s["median_ttt"]) else f"{s['median_ttt']:.0f} s"
        print(f"| {method} | {ttt} | {s['reached']}/{args.seeds} | "
              f"{statistics.median(s['final']):.4f} | {s['within']}/{args.seeds} | "
              f"{statistics.mean(s['trials']):.1f} | {statistics.mean(s['epochs']):.0f} |")
    pruned, unpruned = summary["resnas-pareto"], summary["resnas-unpruned"]
    if "moasha" in summary:
        print(f"pruned against MOASHA, median time to the target: {pruned['median_ttt']:.0f} s "
              f"against {summary['moasha']['median_ttt']:.0f} s")
    print(f"ratio={pruned['median_ttt'] / unpruned['median_ttt']:.3f}")


def _has_syne_tune() -> bool:
    try:
        import syne_tune  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="benchmarks/curves/fashion-mnist.csv")
    parser.add_argument("--space", default="search_spaces/fashion-mnist-macs.yaml")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed, first-seed + 1, ...: settings chosen on some "
                             "seeds are confirmed on others")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1800.0, help="simulated seconds")
    parser.add_argument("--methods", default=",".join(MO_METHODS))
    parser.add_argument("--sampler", choices=("tpe", "nsga2", "random"),
                        help="replace the space file's sampler (Optuna's defaults)")
    parser.add_argument("--jobs", type=int, default=2, help="processes running replays")
    parser.add_argument("--real", action="store_true",
                        help="instead: two real searches (pruned, unpruned) on --real-space")
    parser.add_argument("--real-space", default="search_spaces/resnet-digits-macs.yaml")
    parser.add_argument("--real-seconds", type=float, default=300.0,
                        help="wall clock of each real search (stopped by SIGTERM)")
    args = parser.parse_args()
    unknown = [m for m in args.methods.split(",") if m not in MO_METHODS]
    if unknown or not {"resnas-pareto", "resnas-unpruned"} <= set(args.methods.split(",")):
        parser.error(f"--methods: got {args.methods}; allowed: resnas-pareto, resnas-unpruned "
                     f"and optionally moasha")
    if args.real:
        from benchmarks.mo_real import real_runs

        real_runs(args.real_space, args.real_seconds, Scale, hypervolume_times, time_to)
    else:
        replay(args)


if __name__ == "__main__":
    main()
