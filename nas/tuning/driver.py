"""``nas search``'s driver: open the study, run the trials on Ray Tune, write the report.

:func:`run` is the search of :func:`nas.tuning.options.prepare`'s options, for the command
line and ``nas.search()`` alike. It starts or joins Ray (:mod:`nas.tuning.cluster`),
opens the study with its sampler and pruner, and lets Ray Tune run each candidate's
training as a trial (:mod:`nas.tuning.trial`) while the searcher
(:mod:`nas.tuning.searcher`) asks and tells the study and hands each event to the
display (:mod:`nas.tuning.progress`). Ray is imported inside :func:`run`, after every
input was checked and after a private Ray has been told to stay on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna

import nas
from nas.disk import disk_full, full_error, ray_temp_folder
from nas.errors import NasError, option
from nas.study import _optuna
from nas.study.algorithms import grid_size
from nas.study.config import StorageError, is_url, mask
from nas.study.policy import SearchPolicy, create_search_study, search_directions
from nas.study.queries import count_finished
from nas.study.recovery import heartbeats, recover_stale_trials
from nas.tuning.options import SearchOptions, SearchOutcome, concurrency
from nas.tuning.progress import SearchStart, forward_logs


def open_study(opts: SearchOptions, concurrent: int) -> optuna.Study:
    """The study, created or resumed, with its sampler (built once) and pruner."""
    space = opts.space
    storage = opts.open_storage()
    try:
        study = create_search_study(space, storage, opts.study_name, budget=opts.trials,
                                    concurrent=concurrent,
                                    held=_trials_held(storage, opts.study_name),
                                    warn=opts.progress.message)
    except ValueError as exc:  # e.g. an existing multi-objective study of that name
        raise NasError(f"study '{opts.study_name}' in {mask(opts.storage)}: {exc}") from None
    if study.user_attrs.get("space_text") not in (None, space.text):
        opts.progress.message(f"note: study '{opts.study_name}' was started with a different "
                              "space file; new trials use this one")
    study.set_user_attr("space_text", space.text)
    study.set_user_attr("space_path", space.path)
    study.set_user_attr("dataset", space.dataset)
    study.set_user_attr("epochs", space.epochs)
    study.set_user_attr("resnas_version", nas.__version__)
    study.set_user_attr("objectives", list(space.objectives))
    if list(study.directions) != [optuna.study.StudyDirection[d.upper()]
                                  for d in search_directions(space)]:
        raise NasError(f"study '{opts.study_name}' in {mask(opts.storage)} was created with other "
                       f"objectives; allowed: the same objectives, or a new {option('study')} "
                       "name")
    name_metrics(study, space.objectives)
    return study


def _trials_held(storage: optuna.storages.BaseStorage, name: str) -> int:
    """Trials of study ``name`` in ``storage`` (queued and running ones too); 0 if new."""
    try:
        return _optuna.count_trials(storage, storage.get_study_id_from_name(name))
    except KeyError:
        return 0


def name_metrics(study: optuna.Study, objectives: tuple[str, ...]) -> None:
    """Name the study's objectives (``val_accuracy``, ``params``/``useful_layers``), so that
    optuna-dashboard, Optuna's plots and its CLI show them instead of "Objective 0"; a
    study made before, or by other code, is named when a search resumes it."""
    if study.metric_names == list(objectives):
        return
    with warnings.catch_warnings():  # experimental in Optuna 3.x-4.x; we chose it
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(objectives))


# What _run_on_ray imports first: imported while Ray starts (nas.tuning.cluster._prefetch).
_PREFETCH = ("ray.tune", "ray.tune.search", "nas.tuning.searcher", "nas.tuning.trial",
             "nas.tuning.dashboard", "nas.tuning.stopping")


def run(opts: SearchOptions) -> SearchOutcome:
    """Run trials until the study holds ``opts.trials`` finished ones, then write the report.

    A Ctrl-C (KeyboardInterrupt) stops it cleanly: finished trials are kept, running ones
    fail and are queued again, and the outcome says ``interrupted``.
    """
    from nas.training.device import available_cpus
    from nas.tuning.cluster import ray_session

    try:
        with _optuna_quiet(), forward_logs(opts.progress), \
                ray_session(opts.ray_address, available_cpus(), opts.progress.message,
                            prefetch=_PREFETCH):
            outcome = _run_on_ray(opts)
            if outcome.terminated:  # the scheduler's grace is short: the rerun writes it
                outcome.report = (f"report: not written (stopped by SIGTERM); nas report "
                                  f"--study {opts.study_name} --storage {mask(opts.storage)} "
                                  "writes it")
            else:
                outcome.report, outcome.report_failed = _write_report(opts, outcome.study)
            return outcome
    finally:
        opts.progress.close()


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's per-trial INFO lines off for the search (the display says enough), the
    caller's level back after."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _write_report(opts: SearchOptions, study: optuna.Study) -> tuple[str, bool]:
    from nas.report import write_search_report

    # The report is for the person at this machine: beside the results, or here for a URI.
    folder = "results" if is_url(str(opts.results_dir)) else opts.results_dir
    return write_search_report(study, folder, opts.study_name, opts.storage)


def _run_on_ray(opts: SearchOptions) -> SearchOutcome:
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    from nas.tuning.dashboard import DashboardWriter
    from nas.tuning.searcher import PrunerScheduler, StorageStopper, StudySearcher
    from nas.tuning.stopping import (
        DeferredCtrlC,
        DiskFullLogs,
        DropTrainingStates,
        drop_run_training_states,
    )
    from nas.tuning.trial import run_trial

    space = opts.space
    if opts.ray_address:
        warn_about_local_paths(opts)
    cluster = ray.cluster_resources()
    concurrent = concurrency(opts, cluster)
    study = open_study(opts, concurrent)
    recovered = recover_stale_trials(study)
    if recovered:
        opts.progress.message(f"{recovered} trial(s) left running by a stopped search were "
                              "marked FAIL; their candidates run again")
    finished = count_finished(study)
    budget = opts.trials - finished
    if space.sampler["name"] == "grid":
        budget = min(budget, grid_size(space) - finished)
    checkpoints, tune_dir = opts.results("checkpoints"), opts.results("tune")
    if budget <= 0:
        opts.progress.message(f"study '{opts.study_name}' already holds {finished} "
                              f"finished trials (asked for {opts.trials}); nothing to run")
        return SearchOutcome(study, 0, False, checkpoints, tune_dir)

    policy = SearchPolicy(study, space)
    queued = policy.start(budget)
    if queued:
        opts.progress.message(f"start-up: the first {queued} trials are random candidates, "
                              "cheapest first (sampler option shortest_first: false trains "
                              "them as drawn)")
    threads = max(1, int(opts.cpus_per_trial))
    device = "cuda" if opts.gpus_per_trial > 0 else "cpu"
    dashboard = DashboardWriter(study)
    searcher = StudySearcher(policy, opts, budget, threads, device, dashboard)
    per_trial = f"{opts.cpus_per_trial:g} CPU"
    if device == "cuda":
        per_trial += f" + {opts.gpus_per_trial:g} GPU"
    opts.progress.search_started(SearchStart(
        opts.study_name, budget, space.epochs, space.dataset, concurrent, per_trial,
        space.pruner["name"], space.sampler["name"], len(space.objectives),
        front=_front(study)))
    resources = {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
    ctrl_c = DeferredCtrlC()

    def tuner_for(trials: int, run_name: str):
        return tune.Tuner(
            tune.with_resources(run_trial, resources),
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                scheduler=PrunerScheduler(searcher),
                num_samples=trials,
                # TensorBoard lists trials by folder: name them by the study's trial number.
                trial_dirname_creator=trial_folder,
                # One worker process serves trial after trial: no new Python, torch
                # import and data load per trial.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=run_name,
                storage_path=tune_dir,
                verbose=0,
                log_to_file=True,
                stop=StorageStopper(searcher),
                # A trial whose worker or node dies restarts from its last epoch's state;
                # failures inside training are reported as results, never retried.
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                callbacks=[ctrl_c, DropTrainingStates()],
            ),
        )

    # Where a full disk can stop the run from inside Tune: its logs, Ray's session folder.
    driver_writes = [("the search's results", None if is_url(tune_dir) else tune_dir),
                     ("Ray's temporary folder", str(ray_temp_folder()))]
    interrupted = False
    started = time.strftime("run-%Y%m%d-%H%M%S")
    run_names: list[str] = []
    try:
        with heartbeats(study, lambda: list(searcher.live.values())), ctrl_c.armed(), \
                DiskFullLogs(searcher, driver_writes, tune_dir).installed():
            # Tune's controller keeps, and walks at every step, every trial of its run:
            # over 2,000 trials its cost per trial grew by a third. A long search is
            # therefore consecutive Tune runs of at most run_trials() trials each, on the
            # same Ray, searcher and study (issue 28).
            while searcher.budget > 0 and searcher.halt is None:
                run_names.append(started + (f"-{len(run_names) + 1}" if run_names else ""))
                tuner_for(min(searcher.budget, run_trials()), run_names[-1]).fit()
    except KeyboardInterrupt:
        interrupted = True
    except Exception as exc:  # Tune's own writes (logs, experiment state) on a full disk
        if not disk_full(exc):
            raise
        searcher.halt = searcher.halt or full_error(exc, driver_writes, tune_dir)
    finally:
        abandoned = _abandon_running(searcher)
        dashboard.close()  # the notes and the figure of every told trial, written
        for run_name in run_names:  # every trial ended
            drop_run_training_states(f"{tune_dir.rstrip('/')}/{run_name}")
    if searcher.halt is not None:
        raise searcher.halt
    interrupted = interrupted or abandoned > 0
    opts.progress.search_finished(budget - searcher.budget, interrupted)
    return SearchOutcome(study, budget - searcher.budget, interrupted, checkpoints, tune_dir,
                         terminated=ctrl_c.terminated)


RUN_TRIALS = 500
RUN_TRIALS_ENV = "RESNAS_TUNE_RUN_TRIALS"  # smaller in the tests, to see runs follow runs


def run_trials() -> int:
    """The most trials one Tune run of a search holds."""
    return max(1, int(os.environ.get(RUN_TRIALS_ENV) or RUN_TRIALS))


def _abandon_running(searcher) -> int:
    """Fail the trials still running and queue their candidates again, where the storage
    still takes writes. With the storage gone (or its disk full), they stay RUNNING
    there: the next search, finding this driver dead, fails them and reruns them."""
    if isinstance(searcher.halt, StorageError):
        return 0
    try:
        return searcher.abandon_running()
    except Exception as exc:
        if not disk_full(exc):
            raise
        return 0


def _front(study: optuna.Study) -> tuple[tuple[int, tuple[float, ...]], ...]:
    """The study's best trial, or its Pareto front, before this run: what the display
    counts from when a search resumes."""
    from nas.study.queries import LeanStudy, pareto_front

    # read lean: best_trials would read every trial whole (20 s at 10,000)
    front = pareto_front(LeanStudy(study, (), (), steps=False))
    return tuple((t.number, tuple(t.values)) for t in front)


def trial_folder(trial) -> str:
    """``trial-<study trial number>_<Tune's id>``: the folder of a trial's Ray Tune logs
    (results, checkpoints, TensorBoard events), readable where Tune's own name would list
    every parameter."""
    return f"trial-{trial.config.get('trial_number', 'x')}_{trial.trial_id}"


def warn_about_local_paths(opts: SearchOptions) -> None:
    """On a cluster, relative paths name a folder of one node (under `ray job submit`, of
    the job's temporary copy of --working-dir): say so before hours of trials land there."""
    results = str(opts.results_dir)
    if not is_url(results) and not Path(results).is_absolute():
        opts.progress.message(f"warning: {option('results')} {results} is a relative folder; on a "
                              "cluster pass one every node reaches (an absolute shared path) "
                              "or a URI such as s3://bucket/nas")
    if opts.storage.startswith("sqlite:///") and not opts.storage.startswith("sqlite:////"):
        opts.progress.message(f"warning: {option('storage')} {opts.storage} is a relative "
                              "SQLite file; under 'ray job submit' it lands in the job's "
                              "temporary folder: use an absolute path or PostgreSQL")
