"""Search strategies replayed on recorded training curves, a hundred seeds each.

Every method of ``benchmarks/replay_methods.py`` (resnas through the same
``SearchPolicy`` object ``nas search`` drives from Ray, Optuna TPE + Hyperband, Ray
Tune + ASHA, ASHA with promotions, random, one-epoch top-k) searches the table that
``benchmarks/record_curves.py`` wrote, under a simulated clock with ``--workers``
workers and a ``--budget`` of seconds, once per seed. Each epoch costs what it cost
when recorded; each method also pays its real tool's fixed costs.

Per method: the interquartile mean (IQM) over seeds of the regret (the table's best
final val accuracy minus the best final val of the trials complete so far) against
time, with a bootstrap 95% interval over seeds; hits (seeds whose search completed a
trial at or above the target) and the median time-to-target (a miss counts as never).
The target is the 95th percentile of the table's final val accuracies. Last,
``ratio=`` resnas's median time-to-target over the best peer's.

    python benchmarks/replay.py [--table benchmarks/curves/fashion-mnist.csv]
        [--space search_spaces/fashion-mnist.yaml] [--seeds 100] [--workers 2]
        [--budget 900] [--methods resnas,optuna,...] [--html results/replay.html]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import multiprocessing
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.replay_methods import METHODS  # noqa: E402
from benchmarks.replay_sim import Run, Table, simulate  # noqa: E402
from benchmarks.replay_variants import VARIANTS  # noqa: E402 - adds the resnas-* methods

TIMES = 200  # points of the anytime curves
BOOTSTRAP = 1000


def _one(job: tuple[str, str, str, int, int, float, int, dict[str, float]]) -> dict[str, Any]:
    """Worker: one method, one seed; what the statistics need of the run."""
    table_path, space_path, method, seed, workers, budget, min_epoch, what_if = job
    import dataclasses

    from benchmarks.replay_methods import MIN_EPOCH
    from nas.space import load_space

    MIN_EPOCH["value"] = min_epoch
    if _is_resnas(method):  # a what-if changes resnas's costs, and its variants'
        METHODS[method].costs = dataclasses.replace(METHODS[method].costs, **what_if)
    table, space = Table(table_path), load_space(space_path)
    run = simulate(METHODS[method](table, space, seed, workers, budget), table, workers,
                   budget)
    return {"method": method, "seed": seed, "completions": run.completions,
            "epochs": run.epochs, "trials": run.trials}


def _is_resnas(method: str) -> bool:
    """resnas, or one of its variants (benchmarks/replay_variants.py): not a peer."""
    return method == "resnas" or method.startswith("resnas-")


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean of the middle half (Agarwal et al. 2021): robust to a few outlying seeds."""
    ordered = np.sort(values, axis=axis)
    n = ordered.shape[axis]
    low, high = n // 4, n - n // 4
    return np.take(ordered, range(low, high), axis=axis).mean(axis=axis)


def bootstrap_iqm(values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """The IQM over seeds (rows) at each time (columns) and its 95% percentile interval."""
    picks = rng.integers(0, len(values), size=(BOOTSTRAP, len(values)))
    samples = np.stack([iqm(values[p]) for p in picks])
    return iqm(values), np.percentile(samples, 2.5, axis=0), np.percentile(samples, 97.5,
                                                                           axis=0)


def regret_curves(runs: list[Run], times: np.ndarray, best: float, worst: float) -> np.ndarray:
    """Regret per seed (rows) and time (columns); before any complete trial, the worst."""
    found = np.array([run.best_at(times) for run in runs])
    return np.where(np.isnan(found), best - worst, best - found)


def summarise(runs_by_method: dict[str, list[dict[str, Any]]], table: Table, budget: float,
              target: float) -> dict[str, dict[str, Any]]:
    finals = table.finals()
    times = np.linspace(0, budget, TIMES)
    rng = np.random.default_rng(0)
    summary = {}
    for method, results in runs_by_method.items():
        runs = [Run(completions=result["completions"]) for result in results]
        regret = regret_curves(runs, times, float(finals.max()), float(finals.min()))
        mean, low, high = bootstrap_iqm(regret, rng)
        ttt = [run.time_to(target) for run in runs]
        best = [max((v for _, v in run.completions), default=math.nan) for run in runs]
        summary[method] = {
            "times": times, "iqm": mean, "low": low, "high": high,
            "hits": sum(math.isfinite(t) for t in ttt), "seeds": len(runs),
            "median_ttt": statistics.median(ttt), "mean_best": float(np.nanmean(best)),
            "trials": statistics.mean(r["trials"] for r in results),
            "epochs": statistics.mean(r["epochs"] for r in results)}
    return summary


def write_html(summary: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    import plotly.graph_objects as go

    figure = go.Figure()
    for method, s in summary.items():
        x = s["times"]
        figure.add_trace(go.Scatter(x=np.concatenate([x, x[::-1]]),
                                    y=np.concatenate([s["high"], s["low"][::-1]]) * 100,
                                    fill="toself", opacity=0.2, line={"width": 0},
                                    name=f"{method} 95% interval", showlegend=False,
                                    legendgroup=method))
        figure.add_trace(go.Scatter(x=x, y=s["iqm"] * 100, name=method, legendgroup=method))
    figure.update_layout(title=title, xaxis_title="seconds (simulated)",
                         yaxis_title="regret, pp of val accuracy (IQM over seeds)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.write_html(path, include_plotlyjs="cdn")


def _what_if(parser: argparse.ArgumentParser, text: str) -> dict[str, float]:
    from benchmarks.replay_sim import Costs

    fields = {f.name for f in dataclasses.fields(Costs)}
    changes = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        try:
            changes[name.strip()] = float(value)
        except ValueError:
            parser.error(f"--resnas-costs: {item!r} is not FIELD=SECONDS")
        if name.strip() not in fields:
            parser.error(f"--resnas-costs: unknown field {name!r}; allowed: "
                         f"{', '.join(sorted(fields))}")
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="benchmarks/curves/fashion-mnist.csv")
    parser.add_argument("--space", default="search_spaces/fashion-mnist.yaml")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=900.0, help="simulated seconds")
    parser.add_argument("--methods", default=",".join(m for m in METHODS
                                                      if m == "resnas" or not _is_resnas(m)),
                        help="default: resnas and every peer; also the dropped variants "
                             f"{', '.join(cls.name for cls in VARIANTS)}")
    parser.add_argument("--jobs", type=int, default=2, help="processes running replays")
    parser.add_argument("--min-epoch", type=int, default=1,
                        help="the first epoch every peer's early stopping may act at")
    parser.add_argument("--resnas-costs", default="", metavar="FIELD=SECONDS,...",
                        help="what-if: resnas's fixed costs changed (start, per_trial, "
                             "per_resume, per_complete, analysis), e.g. analysis=0")
    parser.add_argument("--html", default="results/replay.html")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "resnas" not in methods:
        parser.error(f"--methods: got {args.methods}; allowed: resnas and any of "
                     f"{', '.join(METHODS)}")
    what_if = _what_if(parser, args.resnas_costs)
    table = Table(args.table)
    target = float(np.percentile(table.finals(), 95))
    print(f"replay: {len(table.curves)} candidates, {table.epochs} epochs; target "
          f"{target:.4f} val (95th percentile of the finals; best {table.finals().max():.4f}); "
          f"{args.seeds} seeds x {len(methods)} methods, {args.workers} workers, "
          f"{args.budget:.0f} s budget; peers stop trials from epoch {args.min_epoch}",
          flush=True)
    jobs = [(args.table, args.space, m, seed, args.workers, args.budget, args.min_epoch,
             what_if)
            for m in methods for seed in range(args.seeds)]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_one, jobs, chunksize=1)
    runs = {m: [r for r in results if r["method"] == m] for m in methods}
    summary = summarise(runs, table, args.budget, target)
    print("| method | hits | median time-to-target | mean best val | trials | epochs |")
    print("|---|---|---|---|---|---|")
    for method, s in summary.items():
        ttt = "miss" if math.isinf(s["median_ttt"]) else f"{s['median_ttt']:.0f} s"
        print(f"| {method} | {s['hits']}/{s['seeds']} | {ttt} | {100 * s['mean_best']:.2f}% | "
              f"{s['trials']:.1f} | {s['epochs']:.0f} |")
    peers = {m: s for m, s in summary.items() if not _is_resnas(m)}
    ours = summary["resnas"]
    tenth = ours["times"] >= args.budget / 10
    for method, s in peers.items():
        worse = np.flatnonzero(tenth & (ours["iqm"] > s["iqm"] + 1e-12))
        where = (f"above at {len(worse)} of {tenth.sum()} times after the first tenth "
                 f"(first at {ours['times'][worse[0]]:.0f} s)" if len(worse)
                 else "at or below at every time after the first tenth")
        print(f"resnas IQM regret against {method}: {where}")
    write_html(summary, Path(args.html), f"Regret against time, {args.workers} workers, "
               f"{args.seeds} seeds ({Path(args.table).name})")
    print(f"curves: {args.html}")
    best_peer = min(s["median_ttt"] for s in peers.values()) if peers else math.inf
    ratio = ours["median_ttt"] / best_peer if math.isfinite(best_peer) else math.inf
    print(f"ratio={ratio:.3f}")


if __name__ == "__main__":
    main()
