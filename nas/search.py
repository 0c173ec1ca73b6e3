"""``nas search``: Ray Tune runs the trials; an Optuna study samples, prunes and records them.

All Ray code lives in this module, since Ray's API moves between releases.

Ray's own ``OptunaSearch`` gives Optuna a no-op pruner and tells a trial that
a Tune scheduler stopped as COMPLETE with its partial value, so the study
would lie. Here a small :class:`StudySearcher` drives the study through
Optuna's ask-and-tell API instead, and :class:`PrunerScheduler` asks the
configured Optuna pruner after every reported epoch: the pruner decides, Ray
stops the trial, and the study records it as PRUNED. Every Optuna write
happens in the driver, and each trial is told the moment it ends, so a crash
loses no finished trial.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import TrialState

import nas
from nas.algorithms import grid_size, make_pruner, make_sampler
from nas.candidate import Candidate
from nas.errors import NasError
from nas.report import DEPTH_FIGURE_ID, depth_info, depth_note, plot_depth
from nas.space import SearchSpace
from nas.storage import StorageError, is_url, mask, open_storage
from nas.studies import (
    DRIVER_STOPPED,
    PROCESS_LOST,
    count_finished,
    recover_stale_trials,
    requeue,
    this_driver,
)

# Results every trial reports with its last epoch and that the study keeps.
TRIAL_ATTRS = ("epochs", "layers", "blocks", "params", "seconds", "images_per_second", "node",
               "test_accuracy", "checkpoint", "device", "resumed_from", "restarted")
# The useful-depth analysis of a complete trial (nas.depth), kept beside them.
DEPTH_ATTRS = ("useful_blocks", "total_blocks", "useful_layers", "total_layers", "block_names",
               "block_importance", "essential", "removable", "lesion_curve", "gate_means",
               "alphas", "depth_seconds")


@dataclass
class SearchOptions:
    """Everything ``nas search`` needs beyond the space file."""

    space: SearchSpace
    study_name: str
    storage: str
    results_dir: str | Path  # a folder (shared by every node on a cluster) or a storage URI
    trials: int
    data_dir: str | None = None
    download: bool = False
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    address: str | None = None
    max_failures: int = 2
    out: Any = field(default=sys.stderr, repr=False)

    @property
    def ray_address(self) -> str | None:
        """The Ray cluster to join; None for a private local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def results(self, *parts: str) -> str:
        """A location under ``results_dir/<study>/``: an absolute path, or a URI."""
        if is_url(str(self.results_dir)):
            return "/".join([str(self.results_dir).rstrip("/"), self.study_name, *parts])
        return str(Path(self.results_dir).resolve().joinpath(self.study_name, *parts))


@dataclass
class SearchOutcome:
    study: optuna.Study
    ran: int
    interrupted: bool
    checkpoints: str
    tune_dir: str


# --- the trial, as it runs on a Ray worker -------------------------------------------


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train one candidate, report every epoch.

    The last epoch is reported after training returns, together with the test
    accuracy and the checkpoint path, so Ray's reported epochs and Optuna's
    intermediate values stay one-to-one. Failures are reported, not raised:
    the study records their reason, and the search goes on.
    """
    import ray
    from ray import tune

    from nas.errors import Diverged
    from nas.train import train

    started = time.perf_counter()
    candidate = Candidate.from_dict(config["candidate"])
    node = ray.get_runtime_context().get_node_id()
    fault = injected_fault(config["trial_number"])
    resume, unreadable = _restored_state()  # a state when Tune restarts a trial lost with its node
    static = {"node": node, "device": config["device"]}
    if resume is not None:
        static["resumed_from"] = int(resume["epoch"])
    if unreadable:
        static["restarted"] = unreadable
    last: dict[str, Any] = {}
    state_dir = Path(tempfile.mkdtemp(prefix="resnas-state-"))

    def save_state(state: dict[str, Any]) -> None:
        restarted = resume is not None or bool(unreadable)
        if fault in CHECKPOINT_FAULTS and not restarted and state["epoch"] == 2:
            os._exit(1)  # the worker dies, as with its node; Tune restores the trial
        write_state(state_dir, state)
        if fault in CHECKPOINT_FAULTS and not restarted and state["epoch"] == 1:
            damage_state(state_dir, fault)

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        last.clear()
        last.update(metrics, epoch=epoch, **static)
        if epoch < candidate.epochs:
            # Each epoch's state goes with its result into Tune's storage; a trial whose
            # node dies is restarted there from it (FailureConfig.max_failures).
            tune.report(dict(last), checkpoint=tune.Checkpoint.from_directory(str(state_dir)))
        return False

    try:
        if fault == "raise":
            raise RuntimeError(f"injected fault in trial {config['trial_number']}")
        if fault == "oom":  # what a CUDA or host allocation failure raises
            raise MemoryError(f"injected out-of-memory in trial {config['trial_number']}")
        splits = _cached_splits(candidate, config)
        result = train(candidate, splits, report=report, device=config["device"],
                       threads=config["threads"], resume=resume, on_state=save_state)
        path = save_trial_checkpoint(config, result, splits)
        final = {**last, "test_accuracy": result.test_accuracy, "epochs": result.epochs,
                 "layers": result.layers, "blocks": result.blocks, "params": result.params,
                 "seconds": time.perf_counter() - started,
                 "images_per_second": result.images_per_second, "checkpoint": str(path)}
        if config["usefulness"]["enabled"]:
            final.update(depth_figures(result.model, splits, config["usefulness"]["tolerance"]))
        tune.report(final)
    except Diverged as exc:
        tune.report({**static, "epoch": exc.epoch, "val_accuracy": math.nan,
                     "error": str(exc), "fail_reason": "diverged"})
    except Exception as exc:  # noqa: BLE001 - any trial failure is recorded, not raised
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
        # val_accuracy is there because Tune insists every result carries the metric.
        tune.report({**static, "val_accuracy": math.nan, "error": message,
                     "fail_reason": failure_reason(exc)})
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


STATE_FILE = "training-state.pt"
DIGEST_FILE = "training-state.sha256"


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """The training state and its SHA-256, so a damaged copy is never loaded as good."""
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    (folder / STATE_FILE).write_bytes(data)
    (folder / DIGEST_FILE).write_text(hashlib.sha256(data).hexdigest())


def read_state(folder: Path) -> dict[str, Any]:
    """A state :func:`write_state` wrote; raises ValueError when it is not intact."""
    import torch

    from nas.train import load_failure

    state_file, digest_file = folder / STATE_FILE, folder / DIGEST_FILE
    if not state_file.is_file() or not digest_file.is_file():
        raise ValueError(f"{STATE_FILE} or its digest is missing")
    data = state_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest_file.read_text().strip():
        raise ValueError(f"{STATE_FILE} does not match its SHA-256 ({len(data)} bytes)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - intact bytes torch still cannot read
        raise ValueError(load_failure(exc)) from None


def _restored_state() -> tuple[dict[str, Any] | None, str]:
    """The training state of the trial's last checkpoint when Tune restored the trial,
    or why it cannot be used (then the trial trains again from scratch)."""
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, ""
    try:
        with checkpoint.as_directory() as folder:
            return read_state(Path(folder)), ""
    except Exception as exc:  # noqa: BLE001 - a damaged state is never loaded half-way
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return None, f"its last checkpoint is unreadable ({reason})"


# Faults the tests inject into a trial's own checkpoints: its worker dies in epoch 2,
# after the state of epoch 1 was checkpointed intact, truncated, bit-flipped or deleted.
CHECKPOINT_FAULTS = ("crash", "truncate-checkpoint", "corrupt-checkpoint",
                     "delete-checkpoint")


def damage_state(folder: Path, fault: str) -> None:
    state = folder / STATE_FILE
    data = state.read_bytes()
    if fault == "truncate-checkpoint":
        state.write_bytes(data[: len(data) // 2])
    elif fault == "corrupt-checkpoint":  # same size, a few bytes flipped mid-file
        middle = len(data) // 2
        state.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 8])
                          + data[middle + 8:])
    elif fault == "delete-checkpoint":
        state.unlink()


def save_trial_checkpoint(config: dict[str, Any], result, splits) -> str:
    """The trained network, as ``nas train --save`` writes it, where ``--results`` says.

    A local or shared folder is written directly; a URI (``s3://``, ``gs://`` …)
    through pyarrow's filesystems, as Ray Tune writes its own storage.
    """
    from nas.train import save_checkpoint

    name = f"trial-{config['trial_number']}.pt"
    target = config["checkpoint_dir"]
    if not is_url(target):
        path = save_checkpoint(Path(target) / name, result.model, splits,
                               extra={"result": result.to_dict()})
        return str(path)
    import pyarrow.fs

    with tempfile.TemporaryDirectory(prefix="resnas-ckpt-") as folder:
        local = save_checkpoint(Path(folder) / name, result.model, splits,
                                extra={"result": result.to_dict()})
        uri = f"{target.rstrip('/')}/{name}"
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pyarrow.fs.copy_files(str(local), path, destination_filesystem=filesystem)
    return uri




def depth_figures(model, splits, tolerance: float) -> dict[str, Any]:
    """Useful depth on the validation split, as flat values a Tune result can carry."""
    from nas.depth import analyze

    report = analyze(model, splits.val_x, splits.val_y, tolerance=tolerance)
    return {
        "useful_blocks": report.useful_blocks, "total_blocks": report.total_blocks,
        "useful_layers": report.useful_layers, "total_layers": report.total_layers,
        "block_names": list(report.block_names),
        "block_importance": [round(v, 6) for v in report.block_importance],
        "essential": list(report.essential), "removable": list(report.removable),
        "lesion_curve": [[name, round(acc, 6)] for name, acc in report.lesion_curve],
        # pairs, not dicts: Tune would flatten a dict into one key per block
        "gate_means": [[k, round(v, 6)] for k, v in report.gate_means.items()],
        "alphas": [[k, round(v, 6)] for k, v in report.alphas.items()],
        "depth_seconds": report.seconds,
    }


_SPLITS: dict[tuple, Any] = {}


def _cached_splits(candidate: Candidate, config: dict[str, Any]):
    """Load the data once per worker: with reused actors, later trials skip the load."""
    from nas import data

    key = (candidate.dataset, config["data_dir"], candidate.seed, config["device"],
           tuple(sorted(candidate.data.items())))
    if key not in _SPLITS:
        _SPLITS.clear()  # one dataset at a time is all a worker needs
        _SPLITS[key] = data.load(candidate.dataset, data_dir=config["data_dir"],
                                 download=config["download"], seed=candidate.seed,
                                 device=config["device"], options=candidate.data)
    return _SPLITS[key]


def failure_reason(exc: Exception) -> str:
    """The short reason a study records for a trial that raised."""
    import torch

    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return "out of memory"
    return "error"


def injected_fault(trial_number: int) -> str | None:
    """A fault to inject into this trial, for the reliability tests.

    ``RESNAS_INJECT_FAULTS="3:raise,5:oom"`` makes trial 3 raise and trial 5
    fail as if out of memory, so tests exercise the real failure path of a
    real Ray trial; ``4:kill-driver`` kills the driver (SIGKILL) halfway through
    recording trial 4's end in the study; the :data:`CHECKPOINT_FAULTS` kill
    the trial's worker after damaging its last checkpoint. Unset in normal use.
    """
    for item in os.environ.get("RESNAS_INJECT_FAULTS", "").split(","):
        number, _, kind = item.partition(":")
        if number.strip().isdigit() and int(number) == trial_number:
            return kind.strip()
    return None


# --- the study, driven from Ray Tune's callbacks ---------------------------------------


def _ray_classes():
    """Defined on first use, so that importing nas.search does not import Ray."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler
    from ray.tune.search import Searcher
    from ray.tune.stopper import Stopper

    class StudySearcher(Searcher):
        """Ask-and-tell bridge: Tune asks for configs, Optuna supplies and records them."""

        def __init__(self, study: optuna.Study, space: SearchSpace, opts: SearchOptions,
                     budget: int, threads: int, device: str) -> None:
            super().__init__(metric="val_accuracy", mode="max")
            self.study, self.space, self.opts = study, space, opts
            self.budget = budget
            self.threads, self.device = threads, device
            self.prune = not isinstance(study.pruner, optuna.pruners.NopPruner)
            # Optuna keeps per-epoch values only for single-objective studies.
            self.single = len(space.objectives) == 1
            self.history: dict[str, dict[int, float]] = {}  # per trial, epoch -> val
            self.live: dict[str, optuna.Trial] = {}
            self.pruned: set[str] = set()
            self.restarted: set[str] = set()  # trials whose restart from scratch was said
            self.errors: dict[str, str] = {}
            self.counts: Counter[str] = Counter()
            self.driver = this_driver()
            # Set when the storage stayed unreachable: the search then stops, writing nothing
            self.storage_error: StorageError | None = None

        def __getstate__(self) -> dict:
            # Ray Tune pickles the searcher into tune/run-*/tuner.pkl: no password there.
            state = self.__dict__.copy()
            state["opts"] = replace(self.opts, storage=mask(self.opts.storage))
            return state

        @_until_storage_fails(Searcher.FINISHED)
        def suggest(self, trial_id: str) -> dict | None:
            if self.budget <= 0:
                return Searcher.FINISHED
            trial = self.study.ask()
            trial.set_user_attr("driver", self.driver)  # whose it is, before anything else
            beat(self.study, trial)  # from now on a silent driver makes the trial stale
            candidate = self.space.suggest(trial)
            trial.set_user_attr("candidate", candidate.to_dict())
            # CPU results depend on the thread count: kept so a retrain can match it.
            trial.set_user_attr("threads", self.threads)
            self.live[trial_id] = trial
            self.budget -= 1
            return {
                "candidate": candidate.to_dict(), "trial_number": trial.number,
                "threads": self.threads, "device": self.device,
                "data_dir": self.opts.data_dir, "download": self.opts.download,
                "usefulness": self.space.usefulness,
                "checkpoint_dir": self.opts.results("checkpoints"),
            }

        @_until_storage_fails(True)  # and stop the trial
        def observe(self, trial_id: str, result: dict) -> bool:
            """Record one epoch in the study; true when the trial must stop."""
            trial = self.live.get(trial_id)
            if trial is None:
                return False
            if "restarted" in result and trial_id not in self.restarted:
                self.restarted.add(trial_id)
                print(f"trial {trial.number:>3} restarted from scratch: {result['restarted']}",
                      file=self.opts.out, flush=True)
            if "epoch" in result and "val_accuracy" in result:
                epoch, value = int(result["epoch"]), float(result["val_accuracy"])
                seen = self.history.setdefault(trial_id, {})
                if epoch not in seen:  # a trial restarted from scratch repeats its epochs
                    seen[epoch] = value
                    if self.single:
                        trial.report(value, epoch)
            if "error" in result:
                return True
            if "checkpoint" in result:  # the final report: training is over, nothing to prune
                return False
            if self.prune and trial.should_prune():
                self.pruned.add(trial_id)
                return True
            return False

        @_until_storage_fails(None)
        def on_trial_complete(self, trial_id: str, result: dict | None = None,
                              error: bool = False) -> None:
            trial = self.live.pop(trial_id, None)
            if trial is None:
                return
            result = result or {}
            for key in TRIAL_ATTRS:
                if key in result:
                    trial.set_user_attr(key, result[key])
            epochs = int(result.get("epoch", 0))
            trial.set_user_attr("epochs", epochs)
            if injected_fault(trial.number) == "kill-driver":  # half recorded, for the tests
                os.kill(os.getpid(), signal.SIGKILL)
            history = self.history.pop(trial_id, {})
            if not self.single and history:  # Optuna keeps no per-epoch values for these
                trial.set_user_attr("val_history", [history[e] for e in sorted(history)])
            if error and "error" not in result:
                # Not the candidate's fault: its worker died. Record why, run it again.
                trial.set_user_attr("error", self.errors.get(trial_id, "the worker died"))
                fail_and_retry(self.study, trial, PROCESS_LOST)
                state = "lost its worker; will be retried"
                self.counts["stopped"] += 1
            elif "error" in result:
                reason = result["fail_reason"]
                trial.set_user_attr("fail_reason", reason)
                trial.set_user_attr("error", result["error"])
                self.study.tell(trial, state=TrialState.FAIL)
                state = f"failed ({reason})"
                self.counts["failed"] += 1
            elif trial_id in self.pruned:
                self.study.tell(trial, state=TrialState.PRUNED)
                state = f"pruned at epoch {epochs}"
                self.counts["pruned"] += 1
            elif epochs >= self.space.epochs and "val_accuracy" in result:
                self.record_depth(trial, result)
                self.study.tell(trial, [float(result[o]) for o in self.space.objectives])
                if "useful_layers" in result:  # it reads every trial: only when it changes
                    self.update_depth_figure()
                state = "complete"
                if "useful_layers" in result:
                    state += (f" ({result['useful_layers']} of {result['total_layers']} layers "
                              "useful)")
                self.counts["complete"] += 1
            else:  # stopped by something other than the pruner: run it again later
                fail_and_retry(self.study, trial, DRIVER_STOPPED)
                state = "stopped; will be retried"
                self.counts["stopped"] += 1
            self.progress(trial.number, state, result)

        def record_depth(self, trial: optuna.Trial, result: dict) -> None:
            """Depth figures as user attributes, and the per-block table as a dashboard note."""
            if "useful_layers" not in result:
                return
            from optuna_dashboard import save_note

            attrs = {key: result[key] for key in DEPTH_ATTRS if key in result}
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            save_note(trial, depth_note(trial.number, attrs))

        def update_depth_figure(self) -> None:
            """Keep the study's nominal-against-useful-depth figure current for the dashboard."""
            info = depth_info(self.study)
            if info["trial"]:
                from optuna_dashboard import save_plotly_graph_object

                save_plotly_graph_object(self.study, plot_depth(info),
                                         graph_object_id=DEPTH_FIGURE_ID)

        def note_error(self, trial_id: str, message: str) -> None:
            self.errors[trial_id] = message

        def progress(self, number: int, state: str, result: dict) -> None:
            value = result.get("val_accuracy")
            shown = f" val {value:.2%}" if isinstance(value, float) and math.isfinite(value) else ""
            best = _best_text(self.study)
            c = self.counts
            print(f"trial {number:>3} {state}{shown} | running {len(self.live)}, complete "
                  f"{c['complete']}, pruned {c['pruned']}, failed {c['failed']}{best}",
                  file=self.opts.out, flush=True)

        def abandon_running(self) -> int:
            """Trials still open when the search stops: FAIL them, queue their candidates."""
            for trial in self.live.values():
                fail_and_retry(self.study, trial, DRIVER_STOPPED)
            count = len(self.live)
            self.live.clear()
            return count

    class StorageStopper(Stopper):
        """Ends the whole run once the searcher could not reach the storage."""

        def __init__(self, searcher: StudySearcher) -> None:
            self.searcher = searcher

        def __call__(self, trial_id: str, result: dict) -> bool:
            return False

        def stop_all(self) -> bool:
            return self.searcher.storage_error is not None

    class PrunerScheduler(FIFOScheduler):
        """Stops a trial when the study's Optuna pruner says so, after every epoch."""

        def __init__(self, searcher: StudySearcher) -> None:
            super().__init__()
            self.searcher = searcher

        def on_trial_result(self, tune_controller, trial, result: dict) -> str:
            if self.searcher.observe(trial.trial_id, result):
                return TrialScheduler.STOP
            return TrialScheduler.CONTINUE

        def on_trial_error(self, tune_controller, trial) -> None:
            error = trial.get_error()
            if error is not None:
                self.searcher.note_error(trial.trial_id, " ".join(str(error).split())[:500])
            super().on_trial_error(tune_controller, trial)

    return StudySearcher, PrunerScheduler, StorageStopper


def _until_storage_fails(fallback: Any):
    """Run a Tune callback of the searcher unless the storage has failed; return
    ``fallback`` instead of raising into Tune (which would print its traceback)."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            if self.storage_error is None:
                try:
                    return method(self, *args, **kwargs)
                except StorageError as exc:
                    self.storage_error = exc
            return fallback

        return guarded

    return wrap


def beat(study: optuna.Study, trial: optuna.Trial) -> None:
    """Record the trial's heartbeat where the storage keeps them (RDB with heartbeats on)."""
    storage = study._storage
    if is_heartbeat_enabled(storage):
        storage.record_heartbeat(trial._trial_id)


@contextlib.contextmanager
def heartbeats(study: optuna.Study, live: Callable[[], list[optuna.Trial]]):
    """Keep beating for every running trial while the search runs.

    Another driver on the same study (on any host) then tells a dead driver's
    trials by their stale heartbeat and fails them (nas.studies.recover_stale_trials),
    when it starts and, while it runs, after every beat.
    """
    storage = study._storage
    if not is_heartbeat_enabled(storage):
        yield
        return
    stop = threading.Event()
    interval = storage.get_heartbeat_interval() or 60

    def run() -> None:
        while not stop.wait(interval):
            for trial in live():
                with contextlib.suppress(Exception):  # a missed beat is retried next round
                    beat(study, trial)
            with contextlib.suppress(Exception):  # likewise a missed check
                recover_stale_trials(study)

    thread = threading.Thread(target=run, name="resnas-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def fail_and_retry(study: optuna.Study, trial: optuna.Trial, reason: str) -> None:
    trial.set_user_attr("fail_reason", reason)
    study.tell(trial, state=TrialState.FAIL)
    requeue(study, trial)


def _best_text(study: optuna.Study) -> str:
    if len(study.directions) > 1:
        front = study.best_trials
        return f" | Pareto front {len(front)} trial(s)" if front else ""
    try:
        best = study.best_trial
    except ValueError:
        return ""
    return f" | best {best.value:.2%} (trial {best.number})"


# --- the search ---------------------------------------------------------------------


def open_study(opts: SearchOptions, concurrent: int) -> optuna.Study:
    space = opts.space
    storage = open_storage(opts.storage)
    sampler = make_sampler(space, concurrent)
    pruner = make_pruner(space.pruner, space.epochs)
    multi = len(space.objectives) > 1
    if (multi or space.sampler["name"] == "nsga2") and space.pruner["name"] != "none":
        why = "this search has two objectives" if multi else "nsga2 is a multi-objective sampler"
        print(f"warning: {why} and Optuna cannot prune multi-objective trials; pruning is off "
              "for this search", file=opts.out)
        pruner = optuna.pruners.NopPruner()
    directions = ["maximize"] + ["minimize"] * (len(space.objectives) - 1)
    try:
        study = optuna.create_study(study_name=opts.study_name, storage=storage, sampler=sampler,
                                    pruner=pruner, directions=directions, load_if_exists=True)
    except ValueError as exc:  # e.g. an existing multi-objective study of that name
        raise NasError(f"study '{opts.study_name}' in {mask(opts.storage)}: {exc}") from None
    if study.user_attrs.get("space_text") not in (None, space.text):
        print(f"note: study '{opts.study_name}' was started with a different space file; "
              "new trials use this one", file=opts.out)
    study.set_user_attr("space_text", space.text)
    study.set_user_attr("space_path", space.path)
    study.set_user_attr("dataset", space.dataset)
    study.set_user_attr("epochs", space.epochs)
    study.set_user_attr("resnas_version", nas.__version__)
    study.set_user_attr("objectives", list(space.objectives))
    if list(study.directions) != [optuna.study.StudyDirection[d.upper()] for d in directions]:
        raise NasError(f"study '{opts.study_name}' in {mask(opts.storage)} was created with other "
                       f"objectives; allowed: the same objectives, or a new --study name")
    return study


def run_search(opts: SearchOptions) -> SearchOutcome:
    """Run trials until the study holds ``opts.trials`` finished ones."""
    if not opts.ray_address:
        _loopback_only()
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    space = opts.space
    started_ray = _start_ray(opts)
    if opts.ray_address:
        _warn_about_local_paths(opts)
    try:
        cluster = ray.cluster_resources()
        concurrent = _concurrency(opts, cluster)
        study = open_study(opts, concurrent)
        recovered = recover_stale_trials(study)
        if recovered:
            print(f"{recovered} trial(s) left running by a stopped search were marked FAIL; "
                  "their candidates run again", file=opts.out)
        finished = count_finished(study)
        budget = opts.trials - finished
        if space.sampler["name"] == "grid":
            budget = min(budget, grid_size(space) - finished)
        checkpoints, tune_dir = opts.results("checkpoints"), opts.results("tune")
        if budget <= 0:
            print(f"study '{opts.study_name}' already holds {finished} finished "
                  f"trials (asked for {opts.trials}); nothing to run", file=opts.out)
            return SearchOutcome(study, 0, False, checkpoints, tune_dir)

        threads = max(1, int(opts.cpus_per_trial))
        device = "cuda" if opts.gpus_per_trial > 0 else "cpu"
        StudySearcher, PrunerScheduler, StorageStopper = _ray_classes()
        searcher = StudySearcher(study, space, opts, budget, threads, device)
        per_trial = f"{opts.cpus_per_trial:g} CPU"
        if device == "cuda":
            per_trial += f" + {opts.gpus_per_trial:g} GPU"
        print(f"searching {budget} trial(s) of '{opts.study_name}' ({space.dataset}, up to "
              f"{space.epochs} epochs each, {concurrent} at a time, {per_trial} per trial; "
              f"pruner {space.pruner['name']}, sampler {space.sampler['name']})",
              file=opts.out, flush=True)
        resources = {"cpu": opts.cpus_per_trial, "gpu": opts.gpus_per_trial}
        tuner = tune.Tuner(
            tune.with_resources(run_trial, resources),
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrent),
                scheduler=PrunerScheduler(searcher),
                num_samples=budget,
                # One worker process serves trial after trial: no new Python, torch
                # import and data load per trial.
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=time.strftime("run-%Y%m%d-%H%M%S"),
                storage_path=tune_dir,
                verbose=0,
                log_to_file=True,
                stop=StorageStopper(searcher),
                # A trial whose worker or node dies restarts from its last epoch's state;
                # failures inside training are reported as results, never retried.
                failure_config=tune.FailureConfig(max_failures=opts.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        interrupted = False
        try:
            with heartbeats(study, lambda: list(searcher.live.values())):
                tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            # With the storage gone, its running trials stay RUNNING there: the next
            # search, finding this driver dead, fails them and runs their candidates again.
            abandoned = 0 if searcher.storage_error else searcher.abandon_running()
        if searcher.storage_error is not None:
            raise searcher.storage_error
        interrupted = interrupted or abandoned > 0
        return SearchOutcome(study, budget - searcher.budget, interrupted, checkpoints, tune_dir)
    finally:
        if started_ray:
            ray.shutdown()


def _warn_about_local_paths(opts: SearchOptions) -> None:
    """On a cluster, relative paths name a folder of one node (under `ray job submit`, of
    the job's temporary copy of --working-dir): say so before hours of trials land there."""
    results = str(opts.results_dir)
    if not is_url(results) and not Path(results).is_absolute():
        print(f"warning: --results {results} is a relative folder; on a cluster pass one "
              "every node reaches (an absolute shared path) or a URI such as s3://bucket/nas",
              file=opts.out)
    if opts.storage.startswith("sqlite:///") and not opts.storage.startswith("sqlite:////"):
        print(f"warning: --storage {opts.storage} is a relative SQLite file; under 'ray job "
              "submit' it lands in the job's temporary folder: use an absolute path or "
              "PostgreSQL", file=opts.out)


def _loopback_only() -> None:
    """Keep a private local Ray on 127.0.0.1.

    On Linux, Ray resolves even ``_node_ip_address="127.0.0.1"`` to the machine's
    network address and its daemons (GCS, raylet, agents, workers) then listen on
    every interface. With its cluster mode off (the Windows/macOS default, set here
    before Ray is imported, and inherited by its daemons) the node address stays
    the loopback one, and so does every server. A user's own setting wins.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def _start_ray(opts: SearchOptions) -> bool:
    """Join a cluster (``--address``/RAY_ADDRESS) or start a private local Ray on 127.0.0.1.

    Returns whether this call started Ray (and so must shut it down).
    """
    import ray

    # Our progress lines replace Ray Tune's tables and log flood.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")  # Ctrl-C reaches us directly
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "1000")
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if ray.is_initialized():  # a caller's own Ray session: use it, leave it running
        return False
    address = opts.ray_address
    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise NasError(f"--address {address}: cannot join the Ray cluster ({reason})") from None
        return True
    from nas.train import available_cpus

    ray.init(num_cpus=available_cpus(), include_dashboard=False,
             _node_ip_address="127.0.0.1", **common)
    return True


def _concurrency(opts: SearchOptions, cluster: dict[str, float]) -> int:
    if opts.gpus_per_trial > 0 and cluster.get("GPU", 0) < opts.gpus_per_trial:
        raise NasError(f"--gpus-per-trial {opts.gpus_per_trial:g}: the Ray cluster has "
                       f"{cluster.get('GPU', 0):g} GPU(s); allowed: 0 on a machine without one")
    if cluster.get("CPU", 0) < opts.cpus_per_trial:
        raise NasError(f"--cpus-per-trial {opts.cpus_per_trial:g}: the Ray cluster has "
                       f"{cluster.get('CPU', 0):g} CPU(s)")
    fits = int(cluster.get("CPU", 1) // opts.cpus_per_trial)
    if opts.gpus_per_trial > 0:
        fits = min(fits, int(cluster.get("GPU", 0) // opts.gpus_per_trial))
    if opts.max_concurrent:
        return max(1, min(opts.max_concurrent, opts.trials))
    return max(1, min(fits, opts.trials))

