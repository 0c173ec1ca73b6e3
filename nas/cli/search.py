"""``nas search``: check every input, run the search, print its summary and write its report."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from nas.cli.args import (
    add_storage_argument,
    check_data_args,
    check_writable,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from nas.errors import NasError, one_line
from nas.files import shown_path
from nas.names import (
    DEFAULT_RESULTS,
    DEFAULT_SPACE,
    PROGRESS_CHOICES,
    PRUNERS,
    SAMPLERS,
    STUDY_NAME,
    STUDY_NAME_ALLOWED,
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


def _default_space() -> Path:
    """The shipped default space, found from the working folder or beside the package."""
    here = Path(DEFAULT_SPACE)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / DEFAULT_SPACE


def _check_local_resources(args: argparse.Namespace, space, cpus: float, gpus: float) -> None:
    """What a trial asks for against this machine, before a private Ray is started for it
    (Ray gets exactly these CPUs; its GPUs are the ones torch sees)."""
    import torch

    from nas.training.device import available_cpus
    from nas.tuning.options import check_resources

    check_resources(cpus, gpus, available_cpus(), torch.cuda.device_count(),
                    holder="this machine",
                    cpu_option=("--cpus-per-trial" if args.cpus_per_trial else
                                f"{space.path}: trial_resources.cpu"),
                    gpu_option=("--gpus-per-trial" if args.gpus_per_trial is not None else
                                f"{space.path}: trial_resources.gpu"))


def prepare_search(args: argparse.Namespace, space=None):
    """Every input checked, the data prepared, an existing storage opened: the
    ``SearchOptions`` a search runs with (``nas search`` and ``nas.search()`` alike).

    ``space``: a loaded ``SearchSpace`` instead of ``args.space``'s file.
    """
    from nas.space import load_space

    # Every input is checked before Ray starts.
    if space is None:
        space = load_space(args.space or _default_space())
    check_data_args(args)
    space = space.with_overrides(dataset=args.dataset, epochs=args.epochs, seed=args.seed,
                                 sampler=args.sampler, pruner=args.pruner)
    if args.study is not None and not STUDY_NAME.fullmatch(args.study):
        raise NasError(f"--study {args.study}: not a usable study name; allowed: "
                       f"{STUDY_NAME_ALLOWED} (it names a folder under --results)")
    from nas.study.storage import check_storage, is_url, storage_for_search
    from nas.tuning.options import SearchOptions

    if not is_url(args.results):  # a URI (s3://, gs://, ...) is checked by Ray Tune itself
        check_writable(Path(args.results) / ".probe", flag="--results")
    storage = storage_for_search(args.storage, args.results)

    # Nothing is written before every input is checked: the storage's form first (a new
    # SQLite or journal file is created by the search itself, after Ray has started and
    # found the resources), then the data and the resources, then the storage is opened.
    storage_exists = check_storage(storage)
    resources = space.trial_resources
    cpus = args.cpus_per_trial or resources["cpu"]
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else resources["gpu"]
    opts = SearchOptions(
        space=space, study_name=args.study or space.name, storage=storage,
        results_dir=args.results if is_url(args.results) else Path(args.results),
        trials=args.trials or space.trials, data_dir=args.data_dir, download=args.download,
        cpus_per_trial=cpus, gpus_per_trial=gpus, max_concurrent=args.max_concurrent,
        address=args.address, max_failures=args.max_failures,
    )
    from nas.tuning.cluster import callers_ray, check_address

    if opts.ray_address and not callers_ray():
        check_address(opts.ray_address)  # a cluster that answers, before anything is written
    if not opts.ray_address:
        from nas import data

        # The data, once, here: not a failed trial per worker (a cluster's workers may
        # see other folders than the driver, so there each trial finds its own).
        data.prepare(space.dataset, data_dir=args.data_dir, download=args.download)
        _check_local_resources(args, space, cpus, gpus)
    if storage_exists:
        opts.open_storage()  # a server or an existing file: a bad one fails before Ray starts
    return opts


def run_search(args: argparse.Namespace) -> int:
    opts = prepare_search(args)
    import optuna

    from nas.tuning.driver import run_search as search

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say enough
    # Started from a script, SIGINT may arrive ignored; Ctrl-C must still stop the search.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    opts.progress = make_progress(args.progress)
    outcome = search(opts)
    # With JSON on stdout, everything meant for a person goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.progress == "json" \
            else contextlib.nullcontext():
        _print_search_summary(opts, outcome, time.perf_counter() - started, args)
        _write_search_report(opts, outcome)
    return 130 if outcome.interrupted else 0


def make_progress(kind: str):
    """The display a search gets: ``auto`` is live on a terminal that can redraw, else lines."""
    from nas.tuning import progress

    if kind == "auto":
        terminal = sys.stderr.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
        kind = "live" if terminal else "lines"
    if kind == "live":
        from nas.tuning.live import LiveProgress

        return LiveProgress(out=sys.stderr)
    return {"lines": progress.LineProgress, "json": progress.JsonProgress,
            "quiet": progress.QuietProgress}[kind]()


def _print_search_summary(opts, outcome, seconds: float, args: argparse.Namespace) -> None:
    from nas.study.config import mask
    from nas.study.queries import describe, is_retried, pareto_front, state_counts, trial_candidate

    study = outcome.study
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    where = mask(opts.storage)
    stopped = sum(is_retried(t) for t in trials)
    print(f"search {'interrupted' if outcome.interrupted else 'finished'}: ran {outcome.ran} "
          f"trial(s) in {seconds:.0f}s; study '{study.study_name}' holds "
          f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
          f"{counts['FAIL'] - stopped} failed"
          + (f", {stopped} stopped by the search (their candidates rerun)" if stopped else ""))
    front = pareto_front(study)
    best = front[0] if front else None
    if len(front) > 1:
        print(f"Pareto front ({' up, '.join(study.user_attrs.get('objectives', []))} down): "
              f"{len(front)} trials; 'nas best' lists them")
    if best is not None:
        candidate = trial_candidate(best)
        attrs = best.user_attrs
        print(f"best: trial {best.number}, val {best.values[0]:.2%}"
              + (f" (test {attrs['test_accuracy']:.2%})" if "test_accuracy" in attrs else "")
              + f": {describe(candidate)}"
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
        resume = ["nas search"]
        if args.space:
            resume.append(f"--space {args.space}")
        resume += [f"--study {study.study_name}", f"--storage {where}"]
        if args.results != DEFAULT_RESULTS:
            resume.append(f"--results {args.results}")
        if args.trials:
            resume.append(f"--trials {args.trials}")
        print("interrupted: finished trials are kept; resume with: " + " ".join(resume),
              file=sys.stderr)


def _write_search_report(opts, outcome) -> None:
    """The report of what the study holds now, and a line saying where it is."""
    line, failed = write_search_report(opts, outcome.study)
    print(line, file=sys.stderr if failed else sys.stdout)


def write_search_report(opts, study) -> tuple[str, bool]:
    """Write ``results/<study>/report.html``; the line to show, and whether it failed (a
    failure here loses nothing already stored)."""
    from nas.report import default_report_path, write_report
    from nas.study.config import is_url

    # The report is for the person at this machine: beside the results, or here for a URI.
    folder = DEFAULT_RESULTS if is_url(str(opts.results_dir)) else opts.results_dir
    path = default_report_path(folder, opts.study_name)
    try:
        drawn = write_report(study, path, storage_url=opts.storage)
    except Exception as exc:  # the study is safe in its storage; 'nas report' can retry
        return (f"warning: could not write the report ({type(exc).__name__}: "
                f"{one_line(exc, 200)}); the study is intact, retry with: nas report --study "
                f"{opts.study_name}"), True
    return f"report: {shown_path(path)} ({len(drawn)} figures; open it in a browser)", False
