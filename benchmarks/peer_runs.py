"""The peers that ``benchmarks/peers.py`` runs against ``nas search``, each as its own
documentation recommends, on the same space file, data, seeds and clock.

- ``optuna``: Optuna alone, as its guide to parallel optimization recommends for CPU-bound
  objectives: several processes (here 2, one per core, one torch thread each), each
  running ``study.optimize`` on one study in a shared storage (a ``JournalFileBackend``
  file: no database server). The space's own sampler and pruner, built by the same code as
  resnas's (``make_sampler``/``make_pruner``): every prior resnas's space file gives it,
  the peer gets; each process's sampler has a seed of its own (the same seed would draw the
  same random candidates twice), and TPE is a constant liar as resnas's is.
- ``tune-asha``: Ray Tune with Ray's ``OptunaSearch`` (the space's sampler) and
  ``ASHAScheduler``, its grace period and reduction factor those of the space's pruner (the
  same prior), one CPU per trial, two at a time, ``reuse_actors``.
- ``random``: the ``optuna`` set-up with random sampling and no pruning: the floor.
- ``one-epoch``: Egele et al. (2023), "Is one epoch all you need for multi-fidelity
  HPO?": random candidates trained one epoch each for the first 40% of the budget (two
  processes), then the top 3 by that epoch's val accuracy trained on to the end from their
  saved state.

Each function returns one row per trial (:func:`row`), times in seconds since the run's
process started (``t0``); nothing after ``deadline`` counts, and training stops there.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

PROCESSES = 2  # trials at once: resnas's default on the 2-core machine
ONE_EPOCH_TOP_K, ONE_EPOCH_EXPLORE = 3, 0.4


def row(end: float, epochs: int, val: float, test: float | None, full: bool) -> dict[str, Any]:
    """One trial as every method records it: its end (seconds since the process started),
    epochs trained, last val, test accuracy (trials that trained their full budget)."""
    return {"end": end, "epochs": epochs, "val": val, "test": test, "full": full}


def load_space(path: str, seed: int, pruner: str | None = None):
    """The space file with the run's seed (data split and sampler) and pruner."""
    from nas.space import load_space as read

    return read(path).with_overrides(seed=seed, pruner=pruner)


_SPLITS: dict[str, Any] = {}


def _splits(space):
    """The space's data, loaded once per process."""
    if "splits" not in _SPLITS:
        from nas import data

        _SPLITS["splits"] = data.load(space.dataset, seed=space.seed, options=space.data)
    return _SPLITS["splits"]


def _train(candidate, space, on_epoch, **extra) -> Any:
    """Train through nas.training on one thread; ``on_epoch(epoch, val)`` true stops."""
    from nas.training.loop import train

    return train(candidate, _splits(space), threads=1,
                 report=lambda epoch, metrics: on_epoch(epoch, metrics["val_accuracy"]),
                 **extra)


# --- Optuna alone: processes sharing one study --------------------------------------------


def run_optuna(space_file: str, seed: int, pruner: str | None, random: bool, t0: float,
               deadline: float) -> list[dict[str, Any]]:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    with tempfile.TemporaryDirectory(prefix="peers-optuna-") as folder:
        journal = str(Path(folder) / "study.log")
        storage = optuna.storages.JournalStorage(JournalFileBackend(journal))
        optuna.create_study(study_name="peer", storage=storage, direction="maximize")
        context = multiprocessing.get_context("spawn")
        outs = [Path(folder) / f"rows-{i}.json" for i in range(PROCESSES)]
        workers = [context.Process(target=_optuna_process, args=(
            space_file, seed, pruner, random, i, journal, t0, deadline, str(out)))
            for i, out in enumerate(outs)]
        for process in workers:
            process.start()
        for process in workers:
            process.join()
        if any(process.exitcode != 0 for process in workers):
            raise SystemExit(f"an Optuna process failed: exit {[p.exitcode for p in workers]}")
        return [r for out in outs for r in json.loads(out.read_text())]


def _optuna_process(space_file: str, seed: int, pruner: str | None, random: bool, index: int,
                    journal: str, t0: float, deadline: float, out: str) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    from nas.study.algorithms import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_file, seed, pruner)
    own_seed = seed * 1000 + index  # each process its own random draws
    if random:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=own_seed)
        stopper: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler = make_sampler(dataclasses.replace(
            space, sampler={**space.sampler, "seed": own_seed}), PROCESSES)
        stopper = make_pruner(space.pruner, space.epochs)
    study = optuna.load_study(study_name="peer", sampler=sampler, pruner=stopper,
                              storage=optuna.storages.JournalStorage(JournalFileBackend(journal)))
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        candidate = space.suggest(trial)

        def on_epoch(epoch: int, val: float) -> bool:
            trial.report(val, epoch)
            return trial.should_prune() or time.time() > deadline

        result = _train(candidate, space, on_epoch)
        full = result.epochs == space.epochs and not result.stopped_early
        rows.append(row(time.time() - t0, result.epochs, result.val_accuracy,
                        result.test_accuracy if full else None, full))
        if not full:
            raise optuna.TrialPruned()
        return result.val_accuracy

    _splits(space)  # the data load is part of the process's start, as for every method
    study.optimize(objective, timeout=max(0.0, deadline - time.time()), catch=(Exception,))
    Path(out).write_text(json.dumps(rows))


# --- Ray Tune + OptunaSearch + ASHA -------------------------------------------------------


def _tune_trainable(config: dict[str, Any], space: Any, deadline: float) -> None:
    from ray import tune

    candidate = space.candidate({k: v for k, v in config.items() if k in space.searched})

    def on_epoch(epoch: int, val: float) -> bool:
        if epoch < space.epochs:  # the last epoch is reported below, with its test accuracy
            tune.report({"val_accuracy": val, "epoch": epoch, "now": time.time()})
        return time.time() > deadline  # ASHA stops a trial inside tune.report

    result = _train(candidate, space, on_epoch)
    tune.report({"val_accuracy": result.val_accuracy, "epoch": result.epochs,
                 "test_accuracy": result.test_accuracy, "now": time.time()})


class _DefineByRun:
    """The space as OptunaSearch's define-by-run function (Tune pickles its searcher)."""

    def __init__(self, space: Any) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        self.space.suggest(trial)


def run_tune_asha(space_file: str, seed: int, pruner: str | None, t0: float,
                  deadline: float) -> list[dict[str, Any]]:
    import logging

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from nas.study.algorithms import make_sampler

    space = load_space(space_file, seed, pruner)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    ray.init(num_cpus=PROCESSES, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level=logging.ERROR)
    rungs = space.pruner
    try:
        searcher = OptunaSearch(space=_DefineByRun(space), metric="val_accuracy", mode="max",
                                sampler=make_sampler(space, PROCESSES))
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=space.epochs,
                                  grace_period=int(rungs.get("min_resource", 1)),
                                  reduction_factor=float(rungs.get("reduction_factor", 4)))
        storage = tempfile.mkdtemp(prefix="peers-tune-")
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(_tune_trainable, space=space,
                                                     deadline=deadline), {"cpu": 1}),
            tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", search_alg=searcher,
                                        scheduler=scheduler, num_samples=-1,
                                        time_budget_s=max(1.0, deadline - time.time()),
                                        max_concurrent_trials=PROCESSES, reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, verbose=0))
        grid = tuner.fit()
    finally:
        ray.shutdown()
    rows = []
    for result in grid:
        metrics = result.metrics or {}
        if "val_accuracy" in metrics:
            rows.append(row(metrics["now"] - t0, int(metrics["epoch"]), metrics["val_accuracy"],
                            metrics.get("test_accuracy"), metrics["epoch"] == space.epochs))
    return rows


# --- one epoch, then the top k ------------------------------------------------------------


def run_one_epoch(space_file: str, seed: int, t0: float, deadline: float
                  ) -> list[dict[str, Any]]:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(space_file, seed)
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    explore_until = t0 + ONE_EPOCH_EXPLORE * (deadline - t0)
    rows: list[dict[str, Any]] = []
    scored: list[tuple[float, dict[str, Any], str]] = []
    with tempfile.TemporaryDirectory(prefix="peers-one-epoch-") as folder, \
            ProcessPoolExecutor(PROCESSES, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_one_epoch_init, initargs=(space_file, seed)) as pool:
        running: dict[Any, tuple[dict[str, Any], str]] = {}
        count = 0
        while time.time() < explore_until or running:
            while len(running) < PROCESSES and time.time() < explore_until:
                params = space.suggest(draws.ask()).to_dict()
                state = str(Path(folder) / f"state-{count}.pt")
                count += 1
                running[pool.submit(_first_epoch, params, state)] = (params, state)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                params, state = running.pop(future)
                val, end = future.result()
                rows.append(row(end - t0, 1, val, None, False))
                scored.append((val, params, state))
        top = sorted(scored, key=lambda s: s[0], reverse=True)[:ONE_EPOCH_TOP_K]
        for future in [pool.submit(_rest, params, state, deadline) for _, params, state in top]:
            val, test, epochs, end = future.result()
            rows.append(row(end - t0, epochs - 1, val, test, epochs == space.epochs))
    return rows


_ONE_EPOCH: dict[str, Any] = {}


def _one_epoch_init(space_file: str, seed: int) -> None:
    _ONE_EPOCH["space"] = load_space(space_file, seed)
    _splits(_ONE_EPOCH["space"])


def _first_epoch(params: dict[str, Any], state_file: str) -> tuple[float, float]:
    """One epoch; the training state saved so the rest can follow without retraining."""
    import torch

    from nas.candidate import Candidate

    space = _ONE_EPOCH["space"]
    result = _train(Candidate.from_dict(params), space, lambda epoch, val: True,
                    on_state=lambda state: torch.save(state, state_file))
    return result.val_accuracy, time.time()


def _rest(params: dict[str, Any], state_file: str, deadline: float
          ) -> tuple[float, float | None, int, float]:
    import torch

    from nas.candidate import Candidate

    space = _ONE_EPOCH["space"]
    state = torch.load(state_file, weights_only=True)
    result = _train(Candidate.from_dict(params), space, lambda e, v: time.time() > deadline,
                    resume=state)
    full = result.epochs == space.epochs and not result.stopped_early
    return result.val_accuracy, result.test_accuracy if full else None, result.epochs, time.time()
