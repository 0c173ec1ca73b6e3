"""Time-to-accuracy: `nas search` against what a user would run instead, side by side.

Every method searches the same space file with the same trial budget, data and
seeds, one run after another, each run its own process (so each pays its own
start-up, as a user's would), and every candidate trains through
``nas.training.train``: only the search layer differs.

- ``resnas``: ``nas search --space F --seed S`` as a user runs it (Ray Tune runs
  the trials, Optuna samples and prunes, the study is in SQLite, and each
  complete trial is lesioned for its useful depth).
- ``optuna-1`` / ``optuna-2``: Optuna alone, ``study.optimize`` in one process,
  ``n_jobs`` 1 (torch on every core) and 2 (one core each), with the space's own
  sampler and pruner built by the same code as resnas's (``make_sampler``,
  ``make_pruner``), pruning as Optuna's docs show (``trial.report``, then
  ``should_prune``); an in-memory study.
- ``tune-asha``: Ray Tune with Ray's own ``OptunaSearch`` (the same sampler, the
  space as a define-by-run function) and ``ASHAScheduler`` (``max_t`` the
  space's epochs, ``grace_period`` 1, ``reduction_factor`` 3 like the default
  space's hyperband), one CPU per trial, as many trials at once as resnas runs,
  ``reuse_actors``.
- ``random``: random sampling, no pruning (Optuna alone, ``n_jobs`` 2): the floor.

Per run: wall time (process start to end), epochs trained, the best val and its
test accuracy, and the anytime curve (best val so far of trials that trained their
full budget, against seconds since the process started). Per method: mean wall,
mean best val, the hit rate and the median time-to-target (seconds until a trial
that trained its full budget reached ``--target``; a miss counts as never). Last,
``ratio=<resnas median time-to-target / the best peer's>``. The anytime curves
(median and range per method) go to ``--html``.

    python benchmarks/peers.py [--space search_spaces/resnet-digits.yaml]
        [--seeds 0,1,2,3,4] [--target 0.99] [--trials 8] [--methods resnas,optuna-1,...]
        [--pruner hyperband]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("resnas", "optuna-1", "optuna-2", "tune-asha", "random")
CONCURRENT = 2  # trials at once for the parallel methods: resnas's default on 2 cores
# Half the default space's 16: five methods on five seeds then fit in about 25 minutes on
# 2 cores; the first trial at the target comes well inside it on every seed measured.
DEFAULT_TRIALS = 8


def _load_space(path: str, seed: int, trials: int | None, pruner: str | None = None):
    import yaml

    from nas.space import parse_space

    text = Path(path).read_text()
    space = parse_space(yaml.safe_load(text), path, text).with_overrides(seed=seed,
                                                                         pruner=pruner)
    if trials:
        import dataclasses

        space = dataclasses.replace(space, trials=trials)
    return space


def _splits(space):
    from nas import data

    return data.load(space.dataset, seed=space.seed, options=space.data)


def _row(end: float, epochs: int, val: float, test: float | None, full: bool) -> dict[str, Any]:
    """One trial as every method records it: its end (seconds since the process started),
    epochs trained, last val, test accuracy (trials that trained their full budget)."""
    return {"end": end, "epochs": epochs, "val": val, "test": test, "full": full}


def _train(candidate, splits, threads: int, on_epoch) -> Any:
    """Train through nas.training; ``on_epoch(epoch, val)`` returns true to stop early."""
    from nas.training.loop import train

    return train(candidate, splits, threads=threads,
                 report=lambda epoch, metrics: on_epoch(epoch, metrics["val_accuracy"]))


def run_optuna(space, n_jobs: int, random: bool, t0: float) -> list[dict[str, Any]]:
    """Optuna alone: study.optimize with the space's sampler and pruner (or random, none)."""
    import optuna

    from nas.study.algorithms import make_pruner, make_sampler
    from nas.training.device import available_cpus

    if random:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=space.seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler, pruner = make_sampler(space, n_jobs), make_pruner(space.pruner, space.epochs)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    splits = _splits(space)
    threads = max(1, available_cpus() // n_jobs)
    log: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        candidate = space.suggest(trial)

        def on_epoch(epoch: int, val: float) -> bool:
            trial.report(val, epoch)
            return trial.should_prune()

        result = _train(candidate, splits, threads, on_epoch)
        full = result.epochs == space.epochs and not result.stopped_early
        log.append(_row(time.time() - t0, result.epochs, result.val_accuracy,
                        result.test_accuracy if full else None, full))
        if not full:
            raise optuna.TrialPruned()
        return result.val_accuracy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=space.trials, n_jobs=n_jobs, catch=(Exception,))
    return log


_TUNE_SPLITS: dict[str, Any] = {}


def _tune_trainable(config: dict[str, Any], space: Any) -> None:
    from ray import tune

    if "splits" not in _TUNE_SPLITS:  # once per reused actor
        _TUNE_SPLITS["splits"] = _splits(space)
    candidate = space.candidate({k: v for k, v in config.items() if k in space.searched})

    def on_epoch(epoch: int, val: float) -> bool:
        if epoch < space.epochs:  # the last epoch is reported below, with its test accuracy
            tune.report({"val_accuracy": val, "epoch": epoch, "now": time.time()})
        return False  # ASHA stops a trial inside tune.report

    result = _train(candidate, _TUNE_SPLITS["splits"], 1, on_epoch)
    tune.report({"val_accuracy": result.val_accuracy, "epoch": result.epochs,
                 "test_accuracy": result.test_accuracy, "now": time.time()})


class _DefineByRun:
    """The space as OptunaSearch's define-by-run function (Tune pickles its searcher)."""

    def __init__(self, space: Any) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        self.space.suggest(trial)


def run_tune_asha(space, t0: float) -> list[dict[str, Any]]:
    """Ray Tune with Ray's OptunaSearch and ASHAScheduler, as Ray's docs show them."""
    import logging

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from nas.study.algorithms import make_sampler
    from nas.training.device import available_cpus

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=available_cpus(), include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.ERROR)
    try:
        searcher = OptunaSearch(space=_DefineByRun(space), metric="val_accuracy", mode="max",
                                sampler=make_sampler(space, CONCURRENT))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=space.epochs,
                                  grace_period=1, reduction_factor=3)
        storage = tempfile.mkdtemp(prefix="peers-tune-")
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_tune_trainable, space=space), {"cpu": 1}),
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", search_alg=searcher,
                                        scheduler=scheduler, num_samples=space.trials,
                                        max_concurrent_trials=CONCURRENT, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, verbose=0))
        grid = tuner.fit()
    finally:
        ray.shutdown()
    log: list[dict[str, Any]] = []
    for result in grid:
        metrics = result.metrics or {}
        if "val_accuracy" not in metrics:
            continue
        log.append(_row(metrics["now"] - t0, int(metrics["epoch"]), metrics["val_accuracy"],
                        metrics.get("test_accuracy"), metrics["epoch"] == space.epochs))
    return log


def run_resnas(space_file: str, seed: int, trials: int | None, pruner: str | None,
               work: Path) -> dict[str, Any]:
    """`nas search` as a user runs it; trials are read back from its study."""
    import optuna

    storage = f"sqlite:///{work / 'nas.db'}"
    command = [sys.executable, "-m", "nas.cli", "search", "--space", space_file, "--seed",
               str(seed), "--storage", storage, "--results", str(work / "results"),
               "--study", "peers"]
    if trials:
        command += ["--trials", str(trials)]
    if pruner:
        command += ["--pruner", pruner]
    t0 = time.time()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"nas search failed: {proc.stderr[-2000:]}")
    study = optuna.load_study(study_name="peers", storage=storage)
    log = []
    for t in study.trials:
        if t.datetime_complete is None or not t.intermediate_values:
            continue
        full = t.state == optuna.trial.TrialState.COMPLETE
        val = t.value if full else t.intermediate_values[max(t.intermediate_values)]
        log.append(_row(t.datetime_complete.timestamp() - t0, len(t.intermediate_values), val,
                        t.user_attrs.get("test_accuracy"), full))
    return {"wall": wall, "trials": log}


def one_run(method: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One method on one seed, in a process of its own; resnas's own CLI for resnas."""
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        if method == "resnas":
            return run_resnas(args.space, seed, args.trials, args.pruner, Path(tmp))
        out = Path(tmp) / "run.json"
        command = [sys.executable, __file__, "--worker", method, "--space", args.space,
                   "--seeds", str(seed), "--out", str(out)]
        command += ["--trials", str(args.trials)]  # 0 included: the space's own budget
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
    space = _load_space(args.space, int(args.seeds), args.trials, args.pruner)
    if args.worker == "tune-asha":
        log = run_tune_asha(space, t0)
    else:
        n_jobs = 1 if args.worker == "optuna-1" else CONCURRENT
        log = run_optuna(space, n_jobs, args.worker == "random", t0)
    Path(args.out).write_text(json.dumps(log))


def summarise(run: dict[str, Any], target: float) -> dict[str, Any]:
    """Best val (and its test accuracy), epochs, time-to-target and the anytime curve."""
    full = sorted((t for t in run["trials"] if t["full"] and math.isfinite(t["val"])),
                  key=lambda t: t["end"])
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
                         yaxis_title="best val accuracy", yaxis_range=[0.9, 1.0])
    figure.write_html(path, include_plotlyjs="cdn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="search_spaces/resnet-digits.yaml")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                        help=f"trials per run (default {DEFAULT_TRIALS}; 0: the space's own)")
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
            summary = summarise(one_run(method, args, seed), args.target)
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
