"""Time-to-accuracy: `nas search` against what a user would run instead, in real time.

Every method searches the same space file with the same data, seeds and wall-clock
budget (``--budget`` seconds from its process's start), one run after another, each run
its own process (so each pays its own start-up, as a user's would), and every candidate
trains through ``nas.training.train`` on one thread, two at a time: only the search
layer differs.

- ``resnas``: ``nas search --space F --seed S`` as a user runs it (Ray Tune runs the
  trials, Optuna samples and prunes, the study is in SQLite, each complete trial is
  lesioned for its useful depth), stopped by a Ctrl-C at the budget's end.
- ``optuna``, ``tune-asha``, ``random``, ``one-epoch``: see ``benchmarks/peer_runs.py``
  (Optuna alone as two processes sharing one study, Ray Tune + OptunaSearch + ASHA,
  random without pruning, Egele et al.'s one epoch then the top 3).

Per run: wall time, epochs trained, the best val and its test accuracy, and the anytime
curve (best val so far of trials that trained their full budget, against seconds since
the process started). Per method: mean wall, mean best val, the hit rate and the median
time-to-target (seconds until a trial that trained its full budget reached ``--target``;
a miss counts as never). Last, ``ratio=<resnas median time-to-target / the best
peer's>``. The anytime curves (median and range per method) go to ``--html``.

    python benchmarks/peers.py [--space search_spaces/resnet-digits.yaml] [--seeds 0,1,2]
        [--target 0.99] [--budget 120] [--methods resnas,optuna,...] [--pruner hyperband]
    python benchmarks/peers.py --space search_spaces/fashion-mnist.yaml --target 0.8255 \\
        --budget 400        # the Fashion-MNIST comparison: 5 methods x 3 seeds, ~100 min
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.peer_runs import row, run_one_epoch, run_optuna, run_tune_asha  # noqa: E402

METHODS = ("resnas", "optuna", "tune-asha", "random", "one-epoch")
# resnas runs until the budget's end stops it (as a user's Ctrl-C): never the trial count.
UNBOUNDED_TRIALS = 100_000


def run_resnas(space_file: str, seed: int, pruner: str | None, budget: float,
               work: Path) -> dict[str, Any]:
    """`nas search` as a user runs it, stopped by Ctrl-C at the budget's end (finished
    trials are kept); its trials are read back from its study."""
    import optuna

    storage = f"sqlite:///{work / 'nas.db'}"
    command = [sys.executable, "-m", "nas.cli", "search", "--space", space_file, "--seed",
               str(seed), "--storage", storage, "--results", str(work / "results"),
               "--study", "peers", "--trials", str(UNBOUNDED_TRIALS)]
    if pruner:
        command += ["--pruner", pruner]
    t0 = time.time()
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            _, err = proc.communicate(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate()
    wall = time.time() - t0
    if proc.returncode not in (0, 130):  # 130: stopped by the Ctrl-C, as documented
        raise SystemExit(f"nas search failed: {err[-2000:]}")
    study = optuna.load_study(study_name="peers", storage=storage)
    log = []
    for t in study.trials:
        if t.datetime_complete is None or not t.intermediate_values:
            continue
        full = t.state == optuna.trial.TrialState.COMPLETE
        val = t.value if full else t.intermediate_values[max(t.intermediate_values)]
        log.append(row(t.datetime_complete.timestamp() - t0, len(t.intermediate_values), val,
                       t.user_attrs.get("test_accuracy"), full))
    return {"wall": wall, "trials": log}


def one_run(method: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One method on one seed, in a process of its own; resnas's own CLI for resnas."""
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        if method == "resnas":
            return run_resnas(args.space, seed, args.pruner, args.budget, Path(tmp))
        out = Path(tmp) / "run.json"
        command = [sys.executable, __file__, "--worker", method, "--space", args.space,
                   "--seeds", str(seed), "--out", str(out), "--budget", str(args.budget)]
        if args.pruner:
            command += ["--pruner", args.pruner]
        t0 = time.time()
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "PEERS_T0": repr(t0)})
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{method} failed: {proc.stderr[-2000:]}")
        return {"wall": wall, "trials": json.loads(out.read_text())}


def worker(args: argparse.Namespace) -> None:
    t0 = float(os.environ.get("PEERS_T0", time.time()))
    deadline, seed = t0 + args.budget, int(args.seeds)
    if args.worker == "tune-asha":
        log = run_tune_asha(args.space, seed, args.pruner, t0, deadline)
    elif args.worker == "one-epoch":
        log = run_one_epoch(args.space, seed, t0, deadline)
    else:
        log = run_optuna(args.space, seed, args.pruner, args.worker == "random", t0, deadline)
    Path(args.out).write_text(json.dumps(log))


def summarise(run: dict[str, Any], target: float, budget: float) -> dict[str, Any]:
    """Best val (and its test accuracy), epochs, time-to-target and the anytime curve, of
    the trials that ended within the budget."""
    full = sorted((t for t in run["trials"] if t["full"] and math.isfinite(t["val"])
                   and t["end"] <= budget), key=lambda t: t["end"])
    best = max(full, key=lambda t: t["val"], default=None)
    curve, so_far = [], -1.0
    for t in full:
        if t["val"] > so_far:
            so_far = t["val"]
            curve.append((t["end"], so_far))
    hit = next((t["end"] for t in full if t["val"] >= target), math.inf)
    return {"wall": run["wall"], "best": best["val"] if best else math.nan,
            "test": best["test"] if best else math.nan,
            "epochs": sum(t["epochs"] for t in run["trials"]), "ttt": hit, "curve": curve}


def write_html(results: dict[str, list[dict[str, Any]]], path: Path, target: float) -> None:
    """Median and range across seeds of each method's best-so-far, on a shared time grid."""
    import plotly.graph_objects as go

    horizon = max(r["wall"] for runs in results.values() for r in runs)
    grid = [horizon * i / 200 for i in range(201)]
    figure = go.Figure()
    for method, runs in results.items():
        def at(curve, x):
            return max((v for t, v in curve if t <= x), default=math.nan)

        rows = [[at(r["curve"], x) for r in runs] for x in grid]
        lows = [min(row) if not all(map(math.isnan, row)) else None for row in rows]
        highs = [max(row) if not all(map(math.isnan, row)) else None for row in rows]
        medians = [statistics.median(row) if not any(map(math.isnan, row)) else None
                   for row in rows]
        figure.add_scatter(x=grid + grid[::-1], y=highs + lows[::-1], fill="toself",
                           opacity=0.15, line={"width": 0}, name=f"{method} range",
                           legendgroup=method, showlegend=False)
        figure.add_scatter(x=grid, y=medians, name=method, legendgroup=method)
    figure.add_hline(y=target, line_dash="dot", annotation_text=f"target {target:.1%}")
    figure.update_layout(title="Best val accuracy so far (trials that trained their full "
                               "budget): median and range over seeds",
                         xaxis_title="seconds since the process started",
                         yaxis_title="best val accuracy",
                         yaxis_range=[target - 0.1, min(1.0, target + 0.05)])
    figure.write_html(path, include_plotlyjs="cdn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="search_spaces/resnet-digits.yaml")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--budget", type=float, default=120.0,
                        help="seconds per run, from its process's start (default 120)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--pruner", help="the pruner of resnas and the Optuna peers instead "
                        "of the space's (one that needs no options, e.g. hyperband)")
    parser.add_argument("--html", default=str(ROOT / "benchmarks" / "peers.html"))
    parser.add_argument("--worker", choices=METHODS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    methods = [m.strip() for m in args.methods.split(",")]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or "resnas" not in methods:
        parser.error(f"--methods: {', '.join(unknown) or 'resnas is missing'}; "
                     f"allowed: {', '.join(METHODS)} (resnas among them)")
    seeds = [int(s) for s in args.seeds.split(",")]
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for seed in seeds:  # seed by seed, every method in turn, so drift hits all alike
        for method in methods:
            summary = summarise(one_run(method, args, seed), args.target, args.budget)
            results[method].append(summary)
            ttt = f"{summary['ttt']:.0f} s" if math.isfinite(summary["ttt"]) else "miss"
            print(f"seed {seed} {method:<9} wall {summary['wall']:6.1f} s  best val "
                  f"{summary['best']:.2%}  test {summary['test']:.2%}  epochs "
                  f"{summary['epochs']:3d}  time-to-target {ttt}", flush=True)
    print(f"\n{'method':<10} {'mean wall':>10} {'mean best':>10} {'hits':>6} "
          f"{'median ttt':>11} {'epochs':>7}")
    medians = {}
    for method, runs in results.items():
        medians[method] = statistics.median(r["ttt"] for r in runs)
        hits = sum(math.isfinite(r["ttt"]) for r in runs)
        shown = f"{medians[method]:.0f} s" if math.isfinite(medians[method]) else "miss"
        print(f"{method:<10} {statistics.mean(r['wall'] for r in runs):>8.1f} s "
              f"{statistics.mean(r['best'] for r in runs):>10.2%} {hits:>3}/{len(runs)} "
              f"{shown:>11} {statistics.mean(r['epochs'] for r in runs):>7.0f}")
    write_html(results, Path(args.html), args.target)
    print(f"anytime curves: {args.html}")
    peers = [medians[m] for m in methods if m != "resnas"]
    best_peer = min(peers) if peers else math.nan
    print(f"ratio={medians['resnas'] / best_peer:.3f}" if peers else "ratio=nan")


if __name__ == "__main__":
    main()
