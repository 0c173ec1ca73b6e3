"""The study, driven from Ray Tune's callbacks: searcher, scheduler and stopper.

Ray's own ``OptunaSearch`` gives Optuna a no-op pruner and tells a trial that
a Tune scheduler stopped as COMPLETE with its partial value, so the study
would lie. Here :class:`StudySearcher` drives the study through Optuna's
ask-and-tell API instead, and :class:`PrunerScheduler` asks the configured
Optuna pruner after every reported epoch: the pruner decides, Ray stops the
trial, and the study records it as PRUNED. Every Optuna write happens in the
driver, and each trial is told the moment it ends, so a crash loses no
finished trial. The searcher tells the study and emits one event per ended trial
(:class:`nas.tuning.progress.TrialEnd`); the display counts and words it, and the
dashboard's extras are written off Tune's thread (:mod:`nas.tuning.dashboard`). Only the
search driver imports this module (it imports Ray).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import signal
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import optuna
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.stopper import Stopper

from nas.depth.report import RESULT_KEYS as DEPTH_KEYS
from nas.disk import disk_full, full_error
from nas.errors import DiskFull, one_line
from nas.report import depth_note
from nas.report.info import candidate_label, deletion_bars, depth_point
from nas.study import _optuna
from nas.study.config import StorageError, mask, sqlite_file
from nas.study.costs import AS_TRAINING_STARTS
from nas.study.policy import SearchPolicy
from nas.study.queries import LeanStudy
from nas.study.recovery import (
    DISK_FULL,
    DRIVER_STOPPED,
    PROCESS_LOST,
    fail_and_retry,
    this_driver,
)
from nas.testing import faults
from nas.tuning.dashboard import DashboardWriter
from nas.tuning.options import TRIAL_ATTRS, SearchOptions
from nas.tuning.progress import QuietProgress, TrialEnd
from nas.tuning.stopping import STOP_SIGNALS


@contextlib.contextmanager
def _interrupt_deferred():
    """Let a Ctrl-C (or SIGTERM) that arrives inside the block act when the block ends.

    A callback of the searcher asks for a trial or records one in several storage
    writes; a KeyboardInterrupt between two of them would leave a trial RUNNING that
    no one fails (one asked for but not yet known, or half told). Signals reach only
    the main thread, where Tune calls the searcher; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: arrived.append(number))
                for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for number in dict.fromkeys(arrived):
            signal.raise_signal(number)  # now, to the handler that was there before


def _until_halted(fallback: Any):
    """Run a Tune callback of the searcher whole (a Ctrl-C acts when it returns) unless the
    search has halted (its storage unreachable, a disk full); return ``fallback`` instead of
    raising into Tune (which would print its traceback and go on)."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def guarded(self, *args, **kwargs):
            if self.halt is None:
                try:
                    with _interrupt_deferred():
                        return method(self, *args, **kwargs)
                except (StorageError, DiskFull) as exc:
                    self.halt = exc
                except Exception as exc:
                    if not disk_full(exc):
                        raise
                    self.halt = full_error(exc, [("the study", self.sqlite_file)],
                                           shown=mask(self.opts.storage))
            return fallback

        return guarded

    return wrap


class StudySearcher(Searcher):
    """Ask-and-tell bridge: Tune asks for configs, Optuna supplies and records them."""

    def __init__(self, policy: SearchPolicy, opts: SearchOptions, budget: int, threads: int,
                 device: str, dashboard: DashboardWriter | None = None) -> None:
        super().__init__(metric="val_accuracy", mode="max")
        self.policy, self.opts = policy, opts
        self.study, self.space = policy.study, policy.space
        self.budget = budget
        self.threads, self.device = threads, device
        self.history: dict[str, dict[int, float]] = {}  # per trial, epoch -> val
        self.live: dict[str, optuna.Trial] = {}
        self.pruned: set[str] = set()
        self.restarted: set[str] = set()  # trials whose restart from scratch was said
        self.errors: dict[str, str] = {}
        self.dashboard = dashboard  # None: no notes, no figure (tests that drive it by hand)
        # Random deletions are drawn by the report for the best plain and the best residual
        # trial only: a trial records them when it may beat the bar of its kind.
        # (read lean: a study of 10,000 trials read whole takes 20 s and 1.1 GB)
        self.deletion_bars = deletion_bars(LeanStudy(
            self.study, ("candidate", "random_deletions"), (), steps=False))
        self.labels: dict[int, str] = {}  # per running trial number: its block/shortcut
        self.driver = this_driver()
        # Set when the search must stop: its storage stayed unreachable (then it writes
        # nothing more) or a disk is full (then running trials are queued again if it can).
        self.halt: StorageError | DiskFull | None = None
        self.sqlite_file = _sqlite_path(opts.storage)  # where fill-disk-study strikes

    def __getstate__(self) -> dict:
        # Ray Tune pickles the searcher into tune/run-*/tuner.pkl, for a restore resnas never
        # does (a search resumes from its study). So: no password there, and neither the
        # study nor its live trials, whose sampler need not pickle (Optuna 5's GA samplers
        # hold a thread lock).
        state = self.__dict__.copy()
        state["opts"] = replace(self.opts, storage=mask(self.opts.storage), _opened=None,
                                progress=QuietProgress())  # a live view holds a thread
        state["study"], state["policy"], state["live"], state["dashboard"] = None, None, {}, None
        return state

    @_until_halted(Searcher.FINISHED)
    def suggest(self, trial_id: str) -> dict | None:
        if self.budget <= 0:
            return Searcher.FINISHED
        # Whose it is goes in with the trial: a driver that dies or loses its storage right
        # after asking leaves a trial that a later search recovers, never one RUNNING for good.
        trial, candidate = self.policy.ask({"driver": self.driver})
        # Live from its first moment: a Ctrl-C from here on still fails it and requeues it.
        self.live[trial_id] = trial
        _optuna.record_heartbeat(self.study, trial)  # from now on a silent driver makes it stale
        # CPU results depend on the thread count: kept so a retrain can match it.
        trial.set_user_attr("threads", self.threads)
        self.budget -= 1
        self.opts.progress.trial_started(trial.number, candidate.to_dict())
        plain = candidate.shortcut == "none"
        self.labels[trial.number] = candidate_label(candidate.to_dict())
        return {
            "candidate": candidate.to_dict(), "trial_number": trial.number,
            "threads": self.threads, "device": self.device,
            "data_dir": self.opts.data_dir, "download": self.opts.download,
            "usefulness": self.space.usefulness,
            "deletions_from": self.deletion_bars.get(plain),
            "checkpoint_dir": self.opts.results("checkpoints"),
            # a cost timed on the trial's device (latency): the trial times it as it starts
            "latency_batch": (self.space.latency["batch"]
                              if self.policy.cost_objective in AS_TRAINING_STARTS else None),
        }

    @_until_halted(True)  # and stop the trial
    def observe(self, trial_id: str, result: dict) -> bool:
        """Record one epoch in the study; true when the trial must stop."""
        trial = self.live.get(trial_id)
        if trial is None:
            return False
        if "restarted" in result and trial_id not in self.restarted:
            self.restarted.add(trial_id)
            self.opts.progress.message(f"trial {trial.number:>3} restarted from scratch: "
                                       f"{result['restarted']}")
        if "epoch" in result and "val_accuracy" in result:
            epoch, value = int(result["epoch"]), float(result["val_accuracy"])
            seen = self.history.setdefault(trial_id, {})
            if epoch not in seen:  # a trial restarted from scratch repeats its epochs
                seen[epoch] = value
                stop = self.policy.after_epoch(trial, epoch, value, result)
                self.opts.progress.epoch(trial.number, epoch, value)
                # the final report (with the checkpoint) ends training: nothing to prune
                if stop and "checkpoint" not in result and "error" not in result:
                    self.pruned.add(trial_id)
                    return True
        return "error" in result

    @_until_halted(None)
    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        # The trial stays live until the study has been told its end: a Ctrl-C halfway
        # through recording it leaves it to abandon_running, never RUNNING for good.
        trial = self.live.get(trial_id)
        if trial is None:
            return
        result = result or {}
        faults.before_recording(trial.number, self.sqlite_file)
        epochs = int(result.get("epoch", 0))
        # in one transaction: a commit each made the driver's cost grow with the study
        _optuna.set_user_attrs(self.study, trial, {
            **{key: result[key] for key in TRIAL_ATTRS if key in result}, "epochs": epochs})
        faults.while_recording(trial.number)  # half recorded, for the tests
        history = self.history.pop(trial_id, {})
        if not self.policy.single and history:  # Optuna keeps no per-epoch values for these
            trial.set_user_attr("val_history", [history[e] for e in sorted(history)])
        values = None
        if error and "error" not in result:
            # Not the candidate's fault: its worker died. Record why, run it again.
            trial.set_user_attr("error", self.errors.get(trial_id, "the worker died"))
            fail_and_retry(self.study, trial, PROCESS_LOST)
            kind, reason = "retried", "lost its worker"
        elif result.get("fail_reason") == DISK_FULL:
            # No space for its files: it runs again once space is freed; the search stops.
            trial.set_user_attr("error", result["error"])
            fail_and_retry(self.study, trial, DISK_FULL)
            kind, reason = "retried", DISK_FULL
            free = int(result.get("disk_full_free", -1))
            self.halt = self.halt or DiskFull(result["disk_full_what"], result["disk_full_where"],
                                              None if free < 0 else free)
        elif "error" in result:
            reason = result["fail_reason"]
            trial.set_user_attr("fail_reason", reason)
            trial.set_user_attr("error", result["error"])
            self.policy.fail(trial)
            kind = "failed"
        elif trial_id in self.pruned:
            self.policy.prune(trial)
            kind, reason = "pruned", ""
        elif epochs >= self.space.epochs and "val_accuracy" in result:
            self.record_depth(trial, result)
            values = self.policy.objective_values(trial, result)
            self.policy.complete(trial, values)
            kind, reason = "complete", ""
        else:  # stopped by something other than the pruner: run it again later
            fail_and_retry(self.study, trial, DRIVER_STOPPED)
            kind, reason = "retried", "stopped"
        del self.live[trial_id]
        self.policy.forget(trial)  # (a retried trial never reached the policy's tell)
        plain = self.labels.pop(trial.number, "").endswith("/none")
        value = result.get("val_accuracy")
        if kind == "complete" and result.get("random_deletions") and isinstance(value, float):
            self.deletion_bars[plain] = max(self.deletion_bars.get(plain, value), value)
        self.opts.progress.trial_ended(TrialEnd(
            trial.number, kind, epochs, val_accuracy=value if isinstance(value, float) else None,
            values=values, reason=reason, details=result))

    def record_depth(self, trial: optuna.Trial, result: dict) -> None:
        """The useful depth as user attributes; its per-block table as a dashboard note and
        the study's depth figure, both written off this thread."""
        if "useful_layers" not in result:
            return
        attrs = {key: result[key] for key in DEPTH_KEYS if key in result}
        _optuna.set_user_attrs(self.study, trial, attrs)
        if self.dashboard is not None:
            self.dashboard.note(trial, depth_note(trial.number, attrs))
            point = depth_point(trial.number, attrs, float(result["val_accuracy"]),
                                self.labels.get(trial.number, "?/?"))
            if point is not None:
                self.dashboard.depth_changed(point)

    def note_error(self, trial_id: str, message: str) -> None:
        self.errors[trial_id] = message

    def abandon_running(self) -> int:
        """Trials still open when the search stops: FAIL them, queue their candidates."""
        count = 0
        for trial in self.live.values():
            try:
                fail_and_retry(self.study, trial, DRIVER_STOPPED)
                count += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # the stop came just after the study was told this trial's end
        self.live.clear()
        return count


class StorageStopper(Stopper):
    """Ends the whole run once the searcher halted (storage unreachable, a disk full)."""

    def __init__(self, searcher: StudySearcher) -> None:
        self.searcher = searcher

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.searcher.halt is not None


class PrunerScheduler(FIFOScheduler):
    """Stops a trial when the study's Optuna pruner says so, after every epoch.

    It chooses the next trial to run as FIFO does (the first pending one), from the
    pending trials alone: FIFO scans every trial of the run twice at each step of Tune's
    loop, which made the driver's cost per trial grow by half over 2,000 trials (issue 28).
    """

    def __init__(self, searcher: StudySearcher) -> None:
        super().__init__()
        self.searcher = searcher
        self._order: dict[Any, int] = {}  # Tune's trials still open, by when they came
        self._added = itertools.count()

    def on_trial_add(self, tune_controller, trial) -> None:
        self._order[trial] = next(self._added)
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if self.searcher.observe(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller, trial) -> None:
        error = trial.get_error()
        if error is not None:
            self.searcher.note_error(trial.trial_id, one_line(error, 500))
        self._order.pop(trial, None)
        super().on_trial_error(tune_controller, trial)

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        self._order.pop(trial, None)
        super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._order.pop(trial, None)
        super().on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller) -> Any:
        controller = getattr(tune_controller, "_tune_controller", None)  # Tune's own, inside
        pending = getattr(controller, "_pending_trials", None)
        if pending is None or getattr(controller, "_paused_trials", True):
            return super().choose_trial_to_run(tune_controller)  # (resnas never pauses)
        ready = [trial for trial in pending if trial.status == trial.PENDING]
        return min(ready, key=lambda t: self._order.get(t, -1), default=None)


def _sqlite_path(storage: str) -> str | None:
    try:
        return str(sqlite_file(storage)) if storage.startswith("sqlite:") else None
    except StorageError:  # in memory: no file
        return None
