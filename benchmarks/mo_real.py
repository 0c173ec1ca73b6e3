"""``mo_pruning.py --real``: the same comparison in real time, two real searches.

``nas search`` of a two-objective space file, once as the file says (the pareto pruner)
and once with ``--pruner none``, each from a new study in a storage of its own, on the
same machine one after the other, same seed, and the same wall clock: each is stopped
with SIGTERM (a clean stop: finished trials kept) ``seconds`` after it started. Each
complete trial's
(val accuracy, MACs) and its completion time from the search's first trial start give
the hypervolume against time, scaled over the union of both searches' trials.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _search(space: str, seconds: float, folder: Path, pruner: str | None) -> list[tuple]:
    import optuna

    storage = f"sqlite:///{folder / 'nas.db'}"
    command = [sys.executable, "-m", "nas.cli", "search", "--space", space, "--trials",
               "1000", "--storage", storage, "--results", str(folder / "results"),
               "--progress", "lines"]
    if pruner:
        command += ["--pruner", pruner]
    folder.mkdir(parents=True)
    with open(folder / "search.log", "w") as log:
        search = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            search.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            search.send_signal(signal.SIGTERM)  # a clean stop: the study keeps every trial
            search.wait(timeout=120)
    if search.returncode not in (0, 143):
        raise SystemExit(f"nas search exited {search.returncode}: "
                         f"{(folder / 'search.log').read_text()[-2000:]}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    [name] = optuna.get_all_study_names(storage)
    trials_ = optuna.load_study(study_name=name, storage=storage).get_trials()
    start = min(t.datetime_start for t in trials_ if t.datetime_start)
    states = [t.state.name for t in trials_]
    print(f"  {'pruned' if not pruner else 'unpruned'}: {states.count('COMPLETE')} complete, "
          f"{states.count('PRUNED')} pruned; last trial ended "
          f"{max(t.datetime_complete for t in trials_ if t.datetime_complete) - start}")
    return [((t.datetime_complete - start).total_seconds(), t.values[0], t.values[1])
            for t in trials_ if t.state.name == "COMPLETE"]


def real_runs(space: str, seconds: float, scale_of: Callable[..., Any],
              hypervolume_times: Callable[..., list], time_to: Callable[..., float]) -> None:
    print(f"real: {space}, {seconds:.0f} s each, with the file's pruner and with none",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="mo-real-") as folder:
        pruned = _search(space, seconds, Path(folder) / "pruned", None)
        unpruned = _search(space, seconds, Path(folder) / "unpruned", "none")
    scale = scale_of([(a, c) for _, a, c in pruned + unpruned])
    curves = {"pruned": hypervolume_times(pruned, scale),
              "unpruned": hypervolume_times(unpruned, scale)}
    target = curves["unpruned"][-1][1]
    times = {name: time_to(curve, target) for name, curve in curves.items()}
    for name, curve in curves.items():
        print(f"  {name}: final hypervolume {curve[-1][1]:.4f} (of both searches' front), "
              f"unpruned final reached at {times[name]:.0f} s")
    print(f"ratio={times['pruned'] / times['unpruned']:.3f}")
