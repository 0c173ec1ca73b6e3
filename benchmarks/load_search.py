"""Load: one `nas search` of many very short trials, every trial accounted for, memory bounded,
and the driver's cost per trial flat from the first trials to the last (issue 28).

A tiny digits space (1 block per stage, width 4 or 8, lr searched, 1 epoch,
random sampler, no pruning, no useful-depth analysis) runs twice through
`nas search` as a user runs it (a new process in a session of its own, 2
concurrent trials of 1 CPU on 2 cores, its own SQLite study):
- baseline: --baseline trials (default 20);
- load: --trials trials (default 2,000).
Every 0.2 s the driver's resident memory and CPU time (the `nas search` process
alone: Ray Tune's controller, the searcher, the study's writes) are sampled, and
the total memory of its process tree (Ray's GCS, raylet, workers) every second.
Afterwards the study must hold exactly the asked number of finished trials
(COMPLETE, PRUNED, or FAIL for the candidate's own reason), none RUNNING or
WAITING, numbered 0..n-1, and no process of the search's session may outlive it.
The driver's cost per trial is its CPU time between trial ends, over the first
--window (200) trials and over the last. Also printed: driver peak RSS of the
load run / of the baseline run (close to 1: its memory does not grow with the
number of trials).
ratio = the driver's CPU time per trial over the last 200 trials / over the
first 200 (issue 28's goal: <= 1.2). Prints `ratio=<x>` last.

    python benchmarks/load_search.py [--trials 2000] [--baseline 20] [--window 200]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.study.queries import is_finished  # noqa: E402

SPACE = """\
name: load
dataset: digits
epochs: 1
trials: {trials}
space:
  blocks_per_stage: 1
  width: {{type: categorical, choices: [4, 8]}}
  batch_size: 64
  schedule: constant
  lr: {{type: float, low: 0.05, high: 0.2, log: true}}
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
usefulness: {{enabled: false}}
"""

# The progress line `nas search` prints on stderr as each trial ends.
TRIAL_LINE = re.compile(r"^trial\s+\d+ (complete|pruned|failed)")
MB = 1024 * 1024
# A process that exits while it is being looked at.
GONE = contextlib.suppress(psutil.Error, ProcessLookupError)


@dataclass
class Run:
    trials: int
    wall: float = 0.0
    returncode: int | None = None
    stderr: list[str] = field(default_factory=list)
    # (seconds since start, trials ended so far, driver RSS, tree RSS or None, driver CPU s)
    samples: list[tuple[float, int, int, int | None, float]] = field(default_factory=list)
    ended_at: list[float] = field(default_factory=list)  # when each trial line appeared
    leftovers: list[str] = field(default_factory=list)
    linger: float = 0.0  # seconds its last process outlived the driver
    study: dict[str, int] = field(default_factory=dict)
    odd_trials: list[str] = field(default_factory=list)  # every trial not COMPLETE
    problems: list[str] = field(default_factory=list)

    def driver_at(self, ended: int) -> int | None:
        """Driver RSS at the first sample taken once `ended` trials had ended."""
        return next((rss for _, n, rss, _, _ in self.samples if n >= ended), None)

    def cpu_per_trial(self, first: int, last: int) -> float | None:
        """The driver's CPU seconds per trial from trial end `first` to trial end `last`
        (at the first samples taken once that many trials had ended)."""
        at = [next((cpu for _, n, _, _, cpu in self.samples if n >= k), None)
              for k in (first, last)]
        if None in at or last <= first:
            return None
        return (at[1] - at[0]) / (last - first)

    @property
    def peak(self) -> int:
        return max(rss for _, _, rss, _, _ in self.samples)

    @property
    def tree_peak(self) -> int:
        return max(tree for _, _, _, tree, _ in self.samples if tree is not None)


def session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == sid:
                found.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return found


def search(trials: int, folder: Path) -> Run:
    space = folder / "load.yaml"
    space.write_text(SPACE.format(trials=trials))
    args = [sys.executable, "-m", "nas.cli", "search", "--space", str(space),
            "--storage", f"sqlite:///{folder / 'nas.db'}", "--results", str(folder / "results")]
    run = Run(trials)
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=folder, text=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    ended = 0

    def read_stderr() -> None:
        nonlocal ended
        for line in proc.stderr:
            run.stderr.append(line)
            if TRIAL_LINE.match(line):
                run.ended_at.append(time.perf_counter() - start)
                ended += 1

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    driver = psutil.Process(proc.pid)
    last_tree = 0.0
    try:
        while proc.poll() is None:
            try:
                rss = driver.memory_info().rss
                if rss == 0:  # exited, not yet reaped
                    break
                tree = None
                now = time.perf_counter()
                if now - last_tree >= 1.0:
                    last_tree = now
                    tree = rss
                    for child in driver.children(recursive=True):
                        with GONE:
                            tree += child.memory_info().rss
                times = driver.cpu_times()
                run.samples.append((now - start, ended, rss, tree, times.user + times.system))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
        proc.wait()
        run.wall = time.perf_counter() - start
        run.returncode = proc.returncode
        reader.join(timeout=10)
        run.leftovers = leftovers(run, proc.pid)
    finally:
        with GONE:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    check_study(run, f"sqlite:///{folder / 'nas.db'}")
    return run


def leftovers(run: Run, sid: int, grace: float = 10.0) -> list[str]:
    """Processes of the search's session still there `grace` seconds after it exited.

    Also records in `run.linger` how long the last of its processes outlived it.
    """
    start = time.monotonic()
    while True:
        found = session_processes(sid)
        run.linger = time.monotonic() - start
        if not found or run.linger > grace:
            return [_name(p) for p in found]
        time.sleep(0.2)


def _name(proc: psutil.Process) -> str:
    """pid, state and command line (or name) of a process, as far as they can be read."""
    text = f"pid {proc.pid}"
    for what in (proc.status, proc.name, lambda: " ".join(proc.cmdline())[:100]):
        with GONE:
            text += f" {what()}"
    return text


def _clock(when) -> str:
    return "-" if when is None else when.strftime("%H:%M:%S.%f")[:-3]


def check_study(run: Run, storage: str) -> None:
    trials = optuna.load_study(study_name="load", storage=storage).get_trials(deepcopy=False)
    counts = {s.name: 0 for s in TrialState}
    for t in trials:
        counts[t.state.name] += 1
    reasons: dict[str, int] = {}
    for t in trials:
        if t.state == TrialState.FAIL:
            reason = str(t.user_attrs.get("fail_reason"))
            reasons[reason] = reasons.get(reason, 0) + 1
    finished = sum(is_finished(t) for t in trials)
    run.odd_trials = [f"#{t.number} {t.state.name} {t.user_attrs.get('fail_reason', '-')} "
                      f"{_clock(t.datetime_start)} to {_clock(t.datetime_complete)}"
                      for t in trials if t.state != TrialState.COMPLETE]
    run.study = {"trials": len(trials), "finished": finished, **counts,
                 **{f"FAIL {k}": v for k, v in reasons.items()}}
    if finished != run.trials:
        run.problems.append(f"{finished} finished trials, asked for {run.trials}")
    if counts["RUNNING"] or counts["WAITING"]:
        run.problems.append(f"{counts['RUNNING']} RUNNING, {counts['WAITING']} WAITING")
    if sorted(t.number for t in trials) != list(range(len(trials))):
        run.problems.append("trial numbers are not 0..n-1, each once")
    if run.returncode != 0:
        run.problems.append(f"nas search exited with {run.returncode}")
    if any("Traceback" in line for line in run.stderr):
        run.problems.append("a Traceback on stderr")
    if run.leftovers:
        run.problems.append(f"processes left after the search: {run.leftovers}")


def rate(times: list[float]) -> float:
    """Trials per second between the first and the last of these trial ends."""
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")


def mb(rss: int | None) -> str:
    return "n/a" if rss is None else f"{rss / MB:.0f} MB"


def window_cost(run: Run, window: int) -> tuple[float | None, float | None, int]:
    """The driver's CPU seconds per trial over the first and the last `window` trials
    (the first from trial 1's end: before it, Ray starts and the search sets up), and the
    window (half the trials at most)."""
    n = len(run.ended_at)
    window = min(window, max(1, n // 2))
    return run.cpu_per_trial(1, 1 + window), run.cpu_per_trial(n - window, n), window


def describe(run: Run, early: int, window: int) -> None:
    n = run.trials
    print(f"--- {n} trials: exit {run.returncode}, wall {run.wall:.1f} s, "
          f"{n / run.wall:.2f} trials/s overall")
    half = len(run.ended_at) // 2
    print(f"  trials/s between trial ends: first half {rate(run.ended_at[:half + 1]):.2f}, "
          f"second half {rate(run.ended_at[half:]):.2f}")
    print(f"  study: {run.study}")
    print(f"  driver RSS: after trial 1 {mb(run.driver_at(1))}, after trial {early} "
          f"{mb(run.driver_at(min(early, n)))}, after trial {n} {mb(run.driver_at(n))}, "
          f"at exit {mb(run.samples[-1][2])}, peak {mb(run.peak)}")
    marks = sorted({max(1, n * k // 4) for k in range(1, 5)})
    print("  driver RSS by trials ended: " + ", ".join(
        f"{k}: {mb(run.driver_at(k))}" for k in marks))
    first, last, window = window_cost(run, window)
    if first is not None and last is not None:
        print(f"  driver CPU per trial: first {window} trials {first * 1000:.1f} ms, last "
              f"{window} {last * 1000:.1f} ms")
    print(f"  process tree RSS (driver + Ray daemons and workers, shared pages counted in "
          f"each): peak {run.tree_peak / MB:.0f} MB")
    print(f"  the search's last process outlived the driver by {run.linger:.1f} s")
    noisy = [line.rstrip() for line in run.stderr
             if not TRIAL_LINE.match(line) and not line.startswith("searching ")]
    if noisy:
        print(f"  other stderr lines ({len(noisy)}): " + " / ".join(noisy[:5])[:600])
    for problem in run.problems:
        print(f"  PROBLEM: {problem}")
    if run.problems:
        print("  trials not COMPLETE: " + "; ".join(run.odd_trials[:10]))
        print("  stderr ends:\n    " + "    ".join(
            line for line in run.stderr[-12:] if not TRIAL_LINE.match(line)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--baseline", type=int, default=20)
    parser.add_argument("--window", type=int, default=200,
                        help="trials at the start and at the end whose driver cost is compared")
    parser.add_argument("--keep", action="store_true",
                        help="keep each search's folder (study, results, Ray Tune logs)")
    args = parser.parse_args()
    early = min(args.baseline, args.trials)
    print(f"1-epoch trials on digits (1 block per stage, width 4/8), {psutil.cpu_count()} CPUs; "
          f"baseline {args.baseline} trials, load {args.trials} trials")
    runs = []
    for trials in (args.baseline, args.trials):
        folder = tempfile.mkdtemp(prefix="resnas-load-")
        try:
            runs.append(search(trials, Path(folder)))
        finally:
            if args.keep:
                print(f"kept {folder}")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        describe(runs[-1], early, args.window)
    base, load = runs
    reached = len(load.ended_at)
    if reached > early:
        growth = (load.driver_at(reached) - load.driver_at(early)) / MB
        print(f"driver RSS growth from trial {early} to trial {reached}: {growth:+.1f} MB "
              f"({growth / (reached - early) * 100:+.1f} MB per 100 trials)")
    print(f"driver peak RSS, load over baseline: {load.peak / base.peak:.3f}")
    first, last, _ = window_cost(load, args.window)
    if base.problems or load.problems:
        print("FAILED: see PROBLEM lines above")
    print(f"ratio={last / first:.3f}" if first and last else "ratio=nan")
    if base.problems or load.problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
