"""What Optuna's pruning saves in `nas search`: epochs trained, with and without, same run.

24 trials of a small digits space run with the `hyperband` pruner and with
`none`, with the same TPE sampler seed, for 3 seeds. The figure is the
epochs actually trained (Optuna's intermediate values, one per epoch Ray ran)
with pruning over without, and the best validation accuracy of each. Goal:
ratio <= 0.5 with the best accuracy within 0.5 percentage points.
All six searches share one local Ray session. Prints `ratio=<x>` last.

    python benchmarks/pruning.py
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.space import parse_space  # noqa: E402
from nas.training.device import available_cpus  # noqa: E402
from nas.tuning.driver import run as run_search  # noqa: E402
from nas.tuning.options import SearchOptions  # noqa: E402

SPACE = """\
name: pruning
dataset: digits
epochs: 8
trials: 24
space:
  blocks_per_stage: {type: int, low: 1, high: 2}
  block: {type: categorical, choices: [basic, bottleneck, preact, highway]}
  shortcut: {type: categorical, choices: [identity, projection, none]}
  width: 8
  lr: {type: float, low: 0.02, high: 0.5, log: true}
  weight_decay: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}
  batch_size: 64
sampler: {name: tpe}
pruner: {name: hyperband, min_resource: 1, reduction_factor: 3}
"""
SEEDS = (0, 1, 2)


def run(space, pruner: dict, seed: int, tmp: str) -> tuple[int, float, float, int]:
    space = dataclasses.replace(space, pruner=pruner, sampler={"name": "tpe", "seed": seed})
    opts = SearchOptions(space=space, study_name=f"{pruner['name']}-{seed}",
                         storage=f"sqlite:///{tmp}/nas.db", results_dir=Path(tmp),
                         trials=space.trials, max_concurrent=2)
    start = time.perf_counter()
    study = run_search(opts).study
    seconds = time.perf_counter() - start
    trials = study.get_trials()
    epochs = sum(len(t.intermediate_values) for t in trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    return epochs, study.best_value, seconds, pruned


def main() -> None:
    import ray

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = parse_space(yaml.safe_load(SPACE), "pruning.yaml", SPACE)
    ray.init(num_cpus=available_cpus(), include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.ERROR)
    ratios, gaps = [], []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in SEEDS:
                p_epochs, p_best, p_s, n_pruned = run(space, space.pruner, seed, tmp)
                n_epochs, n_best, n_s, _ = run(space, {"name": "none"}, seed, tmp)
                ratios.append(p_epochs / n_epochs)
                gaps.append((n_best - p_best) * 100)
                print(f"seed {seed}: hyperband {p_epochs} epochs ({n_pruned} pruned, {p_s:.0f}s),"
                      f" best {p_best:.2%} | none {n_epochs} epochs ({n_s:.0f}s), best "
                      f"{n_best:.2%} | epochs ratio {ratios[-1]:.3f}, best-accuracy gap "
                      f"{gaps[-1]:+.2f} pp", flush=True)
    finally:
        ray.shutdown()
    print(f"mean best-accuracy gap (none - hyperband): {statistics.mean(gaps):+.2f} pp")
    print(f"ratio={statistics.mean(ratios):.3f}")


if __name__ == "__main__":
    main()
