"""``nas search``: its flags, handed to :func:`nas.tuning.options.prepare`; the search of
:func:`nas.tuning.driver.run`; its summary, printed."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time

from nas.cli.args import (
    add_storage_argument,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from nas.errors import DISK_FULL_EXIT, TERMINATED_EXIT, DiskFull
from nas.files import shown_path
from nas.names import (
    DEFAULT_RESULTS,
    DEFAULT_SPACE,
    PROGRESS_CHOICES,
    PRUNERS,
    SAMPLERS,
)


def register(commands) -> None:
    search = commands.add_parser(
        "search", help="search a space: Ray Tune runs the trials, Optuna samples and prunes",
        description="Search the networks a space file describes. Ray Tune runs each "
                    "candidate's training as a trial; Optuna samples candidates and its pruner "
                    "stops weak trials after any epoch. Every trial lands in an Optuna study "
                    "(COMPLETE, PRUNED or FAIL, with its per-epoch values) that 'nas dashboard' "
                    "opens. Running it again on the same study resumes until the study holds "
                    "--trials finished trials. On a terminal a live table shows every running "
                    "trial's epoch; elsewhere stderr gets a line per finished trial and, at "
                    "most every 30 s, one saying what runs (--progress).",
        epilog="examples:\n  nas search\n"
               "  nas search --space search_spaces/resnet-digits.yaml --trials 40 "
               "--max-concurrent 2\n"
               "  nas search --storage postgresql://user:pw@db/nas --address auto",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    search.add_argument("--space", metavar="FILE",
                        help=f"space YAML (default: {DEFAULT_SPACE})")
    search.add_argument("--trials", type=positive_int, metavar="N",
                        help="finished trials the study should hold (default: the file's trials)")
    search.add_argument("--study", metavar="NAME", help="study name (default: the file's name)")
    add_storage_argument(search)
    search.add_argument("--results", metavar="DIR", default=DEFAULT_RESULTS,
                        help="where Ray Tune's logs and checkpoints go, under DIR/<study>/: a "
                             "folder (on a cluster, one every node reaches) or a URI Ray Tune "
                             "accepts, e.g. s3://bucket/nas (default: results)")
    search.add_argument("--dataset", metavar="NAME", help="override the file's dataset")
    search.add_argument("--data-dir", metavar="DIR", help="where on-disk datasets live")
    search.add_argument("--download", action="store_true",
                        help="fetch mnist/fashion-mnist/cifar data if missing")
    search.add_argument("--epochs", type=positive_int, metavar="N",
                        help="override the most epochs a trial trains")
    search.add_argument("--pruner", choices=PRUNERS, metavar="NAME",
                        help=f"override the file's pruner: {', '.join(PRUNERS)}")
    search.add_argument("--sampler", choices=SAMPLERS, metavar="NAME",
                        help=f"override the file's sampler: {', '.join(SAMPLERS)}")
    search.add_argument("--seed", type=non_negative_int, metavar="N",
                        help="seed for the sampler, the weights and the data split")
    search.add_argument("--cpus-per-trial", type=positive_float, metavar="X",
                        help="CPUs each trial holds; torch uses that many threads "
                             "(default: the file's trial_resources.cpu, else 1)")
    search.add_argument("--gpus-per-trial", type=non_negative_float, metavar="X",
                        help="GPUs each trial holds; 0.25 packs four trials on one GPU "
                             "(default: the file's trial_resources.gpu, else 0)")
    search.add_argument("--max-concurrent", type=positive_int, metavar="N",
                        help="most trials at once (default: as many as the resources fit)")
    search.add_argument("--max-failures", type=non_negative_int, default=2, metavar="N",
                        help="restarts of a trial whose worker or node dies, each from its "
                             "last epoch's checkpoint (default: 2; failures inside training "
                             "are recorded, not retried)")
    search.add_argument("--ignore-disk-space", action="store_true",
                        help="start even when the results folder's disk clearly lacks the "
                             "space the search would write (it says how much before it "
                             "starts)")
    search.add_argument("--address", metavar="ADDR",
                        help="join this Ray cluster ('auto': the one 'ray start' runs on this "
                             "machine; or host:port; also RAY_ADDRESS); default: start a "
                             "private Ray on 127.0.0.1, whatever else runs here")
    search.add_argument("--progress", choices=PROGRESS_CHOICES, default="auto",
                        help="what shows while it runs: live (a table redrawn on the "
                             "terminal), lines (a line per finished trial, and every 30 s what "
                             "runs), json (one JSON object per event on stdout: search_started, "
                             "trial_started, epoch, complete, pruned, failed, retried, message, "
                             "search_finished; the summary then goes to stderr), quiet; "
                             "default auto: live on a terminal, else lines", metavar="KIND")
    search.set_defaults(run=run_search)


def run_search(args: argparse.Namespace) -> int:
    """``nas search``: the flags handed to the one typed entry, the search run, its summary
    printed; every rule of the search lives in :func:`nas.tuning.options.prepare`."""
    from nas.tuning.options import prepare

    opts = prepare(
        args.space, trials=args.trials, study=args.study, storage=args.storage,
        results=args.results, seed=args.seed, epochs=args.epochs, dataset=args.dataset,
        data_dir=args.data_dir, download=args.download, sampler=args.sampler,
        pruner=args.pruner, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent,
        max_failures=args.max_failures, address=args.address, progress=args.progress,
        ignore_disk_space=args.ignore_disk_space)
    from nas.tuning.driver import run

    # Started from a script, SIGINT may arrive ignored; Ctrl-C must still stop the search.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # SIGTERM (SLURM, Kubernetes, 'ray job stop') stops it as Ctrl-C does; while trials
    # run, the driver defers either to a safe point (nas.tuning.stopping.DeferredCtrlC).
    signal.signal(signal.SIGTERM, _terminate)
    started = time.perf_counter()
    try:
        outcome = run(opts)
    except DiskFull as exc:
        print(f"nas: {exc}; finished trials are kept: free space, then run again: "
              f"{_resume_command(args, opts.study_name, opts.storage)}", file=sys.stderr)
        return DISK_FULL_EXIT
    except Terminated:
        print("nas: stopped by SIGTERM; finished trials are kept; resume with: "
              f"{_resume_command(args, opts.study_name, opts.storage)}", file=sys.stderr)
        return TERMINATED_EXIT
    # With JSON on stdout, everything meant for a person goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.progress == "json" \
            else contextlib.nullcontext():
        _print_search_summary(opts, outcome, time.perf_counter() - started, args)
        print(outcome.report, file=sys.stderr if outcome.report_failed else sys.stdout)
    if outcome.terminated:
        return TERMINATED_EXIT
    return 130 if outcome.interrupted else 0


class Terminated(KeyboardInterrupt):
    """SIGTERM outside the trials' run (starting Ray, writing the report)."""


def _terminate(number, frame) -> None:
    raise Terminated


def _resume_command(args: argparse.Namespace, study: str, storage: str) -> str:
    """The command that goes on where this search stopped (the same one, for a full disk)."""
    from nas.study.config import mask

    resume = ["nas search"]
    if args.space:
        resume.append(f"--space {args.space}")
    resume += [f"--study {study}", f"--storage {mask(storage)}"]
    if args.results != DEFAULT_RESULTS:
        resume.append(f"--results {args.results}")
    if args.trials:
        resume.append(f"--trials {args.trials}")
    return " ".join(resume)


def _print_search_summary(opts, outcome, seconds: float, args: argparse.Namespace) -> None:
    from nas.study.config import mask
    from nas.study.queries import (
        LeanStudy,
        is_retried,
        pareto_front,
        state_counts,
        trial_candidate,
    )

    study = outcome.study
    lean = LeanStudy(study, ("fail_reason",), (), steps=False)  # read whole: 20 s at 10,000
    trials = lean.get_trials()
    counts = state_counts(trials)
    where = mask(opts.storage)
    stopped = sum(is_retried(t) for t in trials)
    print(f"search {'interrupted' if outcome.interrupted else 'finished'}: ran {outcome.ran} "
          f"trial(s) in {seconds:.0f}s; study '{study.study_name}' holds "
          f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
          f"{counts['FAIL'] - stopped} failed"
          + (f", {stopped} stopped by the search (their candidates rerun)" if stopped else ""))
    front = pareto_front(lean)
    best = front[0] if front else None
    if len(front) > 1:
        print(f"Pareto front ({' up, '.join(study.user_attrs.get('objectives', []))} down): "
              f"{len(front)} trials; 'nas best' lists them")
    if best is not None:
        candidate = trial_candidate(best)
        attrs = best.user_attrs
        print(f"best: trial {best.number}, val {best.values[0]:.2%}"
              + (f" (test {attrs['test_accuracy']:.2%})" if "test_accuracy" in attrs else "")
              + f": {candidate.describe()}"
              + (f"; {attrs['layers']} layers, {attrs['params']:,} parameters"
                 if "layers" in attrs else ""))
        if "checkpoint" in attrs:
            print(f"checkpoint: {shown_path(attrs['checkpoint'])}")
    print(f"study: {study.study_name} in {where} (nas dashboard --storage {where})")
    print(f"checkpoints: {shown_path(outcome.checkpoints)}/   Ray Tune logs: "
          f"{shown_path(outcome.tune_dir)}/")
    if best is not None:
        print(f"next: nas best --study {study.study_name} --storage {where} --export best.yaml "
              "(it prints the command that retrains it)")
    if outcome.interrupted:
        how = "stopped by SIGTERM" if outcome.terminated else "interrupted"
        print(f"{how}: finished trials are kept; resume with: "
              f"{_resume_command(args, study.study_name, opts.storage)}", file=sys.stderr)
