"""The ``nas`` command line.

Every user mistake (a bad file, flag, path) ends as one line on stderr and
exit status 2; a traceback reaching the user is a bug, so unexpected errors
are shortened to one line too unless ``RESNAS_DEBUG=1`` asks for the trace.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nas import __version__
from nas.errors import Diverged, NasError

USAGE_ERROR = 2
DEFAULT_STORAGE = "sqlite:///results/nas.db"
DEFAULT_SPACE = "search_spaces/resnet-digits.yaml"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the flag and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {one_line(message)} "
                               f"(see '{self.prog} --help')\n")


_LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with every line break escaped: a value or file name typed with a newline in
    it must not split an error in two (str.splitlines() breaks at all of these)."""
    return _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


def _number_type(cast: type, allowed: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse type: parse with ``cast``, accept if ``ok(value)``, else say what is allowed."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got '{text}'; allowed: {allowed}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"got '{text}'; allowed: {allowed}")
        return value

    return parse


positive_int = _number_type(int, "an integer >= 1", lambda v: v >= 1)
non_negative_int = _number_type(int, "an integer >= 0", lambda v: v >= 0)
# NaN fails every comparison, so both reject it; infinity is refused explicitly.
positive_float = _number_type(float, "a number > 0", lambda v: 0 < v < float("inf"))
non_negative_float = _number_type(float, "a number >= 0", lambda v: 0 <= v < float("inf"))
fraction = _number_type(float, "a number from 0 to below 1", lambda v: 0 <= v < 1)


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: a port from 1 to 65535")
    return value


def device_name(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"got '{text}'; allowed: auto, cpu, cuda, cuda:N")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nas",
        description="Neural-architecture search for residual networks that measures how many "
                    "of each network's layers are actually useful.",
        epilog="Run 'nas COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"resnas {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", help="train one candidate network and report its accuracy",
        description="Train the network a candidate file describes (a space file whose values "
                    "are all fixed) and print its validation and test accuracy. Progress goes "
                    "to stderr, one line per epoch.",
        epilog="example: nas train --config search_spaces/resnet20.yaml --epochs 10 "
               "--save results/resnet20.pt",
    )
    train.add_argument("--config", required=True, metavar="FILE",
                       help="candidate YAML file (every value under space: fixed)")
    train.add_argument("--dataset", metavar="NAME",
                       help="override the file's dataset: digits, synthetic, mnist, "
                            "fashion-mnist, cifar10, cifar100, imagefolder")
    train.add_argument("--data-dir", metavar="DIR",
                       help="where on-disk datasets live (torchvision layout; default ./data)")
    train.add_argument("--download", action="store_true",
                       help="fetch mnist/fashion-mnist/cifar data into --data-dir if missing")
    train.add_argument("--epochs", type=positive_int, metavar="N",
                       help="override the file's epochs")
    train.add_argument("--seed", type=non_negative_int, metavar="N",
                       help="override the file's seed (weights, batches and data split)")
    train.add_argument("--device", type=device_name, default="auto",
                       help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N "
                            "(default: auto)")
    train.add_argument("--threads", type=positive_int, metavar="N",
                       help="CPU threads for torch (default: the CPUs this process may use)")
    train.add_argument("--save", metavar="CKPT",
                       help="write a checkpoint (candidate + weights) to this path")
    train.add_argument("--json", action="store_true",
                       help="print one JSON object with the results instead of a summary")
    train.set_defaults(run=run_train)
    add_search_parser(commands)
    add_study_parsers(commands)
    add_depth_parsers(commands)
    return parser


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint written by 'nas train --save' or by 'nas search'")
    parser.add_argument("--dataset", metavar="NAME",
                        help="data to measure on (default: the dataset it was trained on)")
    parser.add_argument("--data-dir", metavar="DIR", help="where on-disk datasets live")
    parser.add_argument("--tolerance", type=fraction, default=0.01, metavar="X",
                        help="accuracy a removal may cost, as a fraction (default: 0.01 = 1 pp)")
    parser.add_argument("--device", type=device_name, default="auto",
                        help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads for torch (default: the CPUs this process may use)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_depth_parsers(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="measure how many of a trained network's layers are useful",
        description="Lesion each residual block of a trained network (compute as if its "
                    "branch were zero) on the validation split, then remove the least "
                    "important blocks one by one while accuracy stays within --tolerance. "
                    "Prints the per-block table and the useful depth.",
        epilog="example: nas train --config search_spaces/resnet20.yaml --save r20.pt && "
               "nas analyze r20.pt")
    add_checkpoint_arguments(analyze)
    analyze.set_defaults(run=run_analyze)

    compress = commands.add_parser(
        "compress", help="remove the removable blocks, fine-tune, compare with the full net",
        description="Build the network without the blocks 'nas analyze' finds removable, "
                    "fine-tune it, and print its accuracy, parameters and images/second "
                    "against the full network.")
    add_checkpoint_arguments(compress)
    compress.add_argument("--epochs", type=non_negative_int, default=3, metavar="N",
                          help="fine-tuning epochs (default: 3; 0 = none)")
    compress.add_argument("--save", metavar="OUT", help="write the compressed checkpoint here")
    compress.set_defaults(run=run_compress)


def add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help=f"Optuna storage: an SQLAlchemy URL or a journal file path "
                             f"(default: {DEFAULT_STORAGE})")


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", metavar="NAME",
                        help="study name (default: the only study in the storage)")
    add_storage_argument(parser)


def add_search_parser(commands) -> None:
    from nas.space import PRUNERS, SAMPLERS

    search = commands.add_parser(
        "search", help="search a space: Ray Tune runs the trials, Optuna samples and prunes",
        description="Search the networks a space file describes. Ray Tune runs each "
                    "candidate's training as a trial; Optuna samples candidates and its pruner "
                    "stops weak trials after any epoch. Every trial lands in an Optuna study "
                    "(COMPLETE, PRUNED or FAIL, with its per-epoch values) that 'nas dashboard' "
                    "opens. Running it again on the same study resumes until the study holds "
                    "--trials finished trials. Progress goes to stderr, one line per trial.",
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
    search.add_argument("--results", metavar="DIR", default="results",
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
                        help="join this Ray cluster ('auto' or host:port; also RAY_ADDRESS); "
                             "default: start a private Ray on 127.0.0.1")
    search.set_defaults(run=run_search)


def add_study_parsers(commands) -> None:
    studies = commands.add_parser(
        "studies", help="list the studies in a storage with their trial counts",
        description="List every study in a storage: trials by state and the best value.")
    add_storage_argument(studies)
    studies.set_defaults(run=run_studies)

    best = commands.add_parser(
        "best", help="print a study's best trial; --export writes its candidate file",
        description="Print the best complete trial of a study. With --export, write its "
                    "candidate as a YAML file that 'nas train --config' retrains.",
        epilog="example: nas best --study resnet-digits --export best.yaml && "
               "nas train --config best.yaml")
    add_study_arguments(best)
    best.add_argument("--trial", type=non_negative_int, metavar="N",
                      help="this trial instead of the best (e.g. one of a Pareto front)")
    best.add_argument("--export", metavar="FILE", help="write the best candidate here")
    best.add_argument("--json", action="store_true", help="print one JSON object")
    best.set_defaults(run=run_best)

    report = commands.add_parser(
        "report", help="write a study's plotly report: one HTML file that opens offline",
        description="Write one self-contained HTML report of a study (plotly.js inside, so it "
                    "opens offline): optimisation history, per-epoch values with pruned trials "
                    "marked, nominal against useful depth, best accuracy by block and shortcut, "
                    "accuracy against parameters with the Pareto front, the best trial's lesion "
                    "profile and, for depth sweeps, accuracy against depth per shortcut style. "
                    "'nas search' writes it too, at the end of every search.",
        epilog="example: nas report --study degradation && xdg-open "
               "results/degradation/report.html")
    add_study_arguments(report)
    report.add_argument("--out", metavar="FILE",
                        help="where to write it (default: results/<study>/report.html)")
    report.add_argument("--json", action="store_true",
                        help="also print the data of every figure as one JSON object")
    report.set_defaults(run=run_report)

    dashboard = commands.add_parser(
        "dashboard", help="open optuna-dashboard on a storage (127.0.0.1 by default)",
        description="Serve optuna-dashboard for a storage and print its address. It binds to "
                    "127.0.0.1 unless --host says otherwise; Ctrl-C stops it.")
    dashboard.add_argument("--study", metavar="NAME", help="print this study's page address")
    add_storage_argument(dashboard)
    dashboard.add_argument("--port", type=port_number, default=8080,
                           help="port (default: 8080)")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to bind (default: 127.0.0.1; anything else exposes "
                                "the study to the network)")
    dashboard.set_defaults(run=run_dashboard)


def run_train(args: argparse.Namespace) -> int:
    from nas.space import load_candidate

    # Check every input before torch is even imported: bad input fails fast.
    candidate = load_candidate(args.config)
    overrides = {k: getattr(args, k) for k in ("dataset", "epochs", "seed")
                 if getattr(args, k) is not None}
    _check_data_args(args)
    candidate = dataclasses.replace(candidate, **overrides)
    if args.save:
        _check_writable(Path(args.save))

    from nas import data
    from nas.train import resolve_device, save_checkpoint, train

    device = resolve_device(args.device)
    splits = data.load(candidate.dataset, data_dir=args.data_dir, download=args.download,
                       seed=candidate.seed, device=device, options=candidate.data)

    def progress(epoch: int, metrics: dict[str, float]) -> bool:
        print(f"epoch {epoch:>3}/{candidate.epochs}  loss {metrics['train_loss']:.4f}  "
              f"train {metrics['train_accuracy']:6.2%}  val {metrics['val_accuracy']:6.2%}  "
              f"{metrics['images_per_second']:8.0f} img/s  {metrics['seconds']:5.1f}s",
              file=sys.stderr, flush=True)
        return False

    print(f"training {candidate.block}/{candidate.shortcut} "
          f"{'x'.join(map(str, candidate.stage_depths))} blocks, width {candidate.width} on "
          f"{candidate.dataset} ({len(splits.train_x)} train / {len(splits.val_x)} val images) "
          f"for {candidate.epochs} epochs on {device}", file=sys.stderr, flush=True)
    result = train(candidate, splits, report=progress, device=device, threads=args.threads)
    if args.save:
        save_checkpoint(args.save, result.model, splits, extra={"result": result.to_dict()})
    if args.json:
        out = result.to_dict()
        out["device"] = str(device)
        out["candidate"] = candidate.to_dict()
        print(json.dumps(out))
    else:
        print(f"{result.layers} layers, {result.blocks} blocks, {result.params:,} parameters: "
              f"val {result.val_accuracy:.2%}, test {result.test_accuracy:.2%} after "
              f"{result.epochs} epochs in {result.seconds:.1f}s "
              f"({result.images_per_second:,.0f} images/s)")
        if args.save:
            print(f"checkpoint: {args.save}")
    return 0


def _check_data_args(args: argparse.Namespace) -> None:
    """--dataset and --data-dir, checked before anything heavy is imported."""
    from nas.space import DATASET_NAMES

    if args.dataset is not None and args.dataset not in DATASET_NAMES:
        raise NasError(f"--dataset: got '{args.dataset}'; allowed: {', '.join(DATASET_NAMES)}")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise NasError(f"--data-dir {args.data_dir}: no such folder")


def _default_space() -> Path:
    """The shipped default space, found from the working folder or beside the package."""
    here = Path(DEFAULT_SPACE)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[1] / DEFAULT_SPACE


def _check_local_resources(args: argparse.Namespace, space, cpus: float, gpus: float) -> None:
    """What a trial asks for against this machine, before a private Ray is started for it
    (Ray gets exactly these CPUs; its GPUs are the ones torch sees)."""
    import torch

    from nas.train import available_cpus

    have_cpus, have_gpus = available_cpus(), torch.cuda.device_count()
    if cpus > have_cpus:
        where = ("--cpus-per-trial" if args.cpus_per_trial else
                 f"{space.path}: trial_resources.cpu")
        raise NasError(f"{where} {cpus:g}: this machine has {have_cpus} CPU(s) for resnas; "
                       f"allowed: at most {have_cpus}")
    if gpus > have_gpus:
        where = ("--gpus-per-trial" if args.gpus_per_trial is not None else
                 f"{space.path}: trial_resources.gpu")
        raise NasError(f"{where} {gpus:g}: this machine has {have_gpus} GPU(s); allowed: "
                       + (f"at most {have_gpus}" if have_gpus else "0 on a machine without one"))


def run_search(args: argparse.Namespace) -> int:
    from nas.space import NAME_PATTERN, load_space

    # Every input is checked before Ray starts.
    space = load_space(args.space or _default_space())
    _check_data_args(args)
    changes: dict = {}
    if args.dataset is not None:
        changes["dataset"] = args.dataset
    if args.epochs is not None:
        changes["epochs"] = args.epochs
    if args.seed is not None:
        changes["seed"] = args.seed
        changes["sampler"] = {**space.sampler, "seed": args.seed}
    if args.sampler is not None:
        changes["sampler"] = {"name": args.sampler, "seed": changes.get("seed", space.seed)}
    if args.pruner is not None:
        if args.pruner in ("percentile", "patient"):
            raise NasError(f"--pruner {args.pruner}: needs options; set it in the space "
                           "file's pruner: section")
        changes["pruner"] = {"name": args.pruner}
    space = dataclasses.replace(space, **changes)
    if args.study is not None and not NAME_PATTERN.fullmatch(args.study):
        raise NasError(f"--study {args.study}: not a usable study name; allowed: letters, "
                       "digits, '.', '_', '-' (it names a folder under --results)")
    from nas.storage import check_storage, is_url, open_storage

    results: str | Path = args.results
    # '--storage ""' is a mistake to report (check_storage does), not the default.
    storage = DEFAULT_STORAGE if args.storage is None else args.storage
    if not is_url(args.results):  # a URI (s3://, gs://, ...) is checked by Ray Tune itself
        results = Path(args.results)
        _check_writable(results / ".probe", flag="--results")
        if args.storage is None and args.results != "results":
            storage = f"sqlite:///{results / 'nas.db'}"

    # Nothing is written before every input is checked: the storage's form first (a new
    # SQLite or journal file is created by the search itself, after Ray has started and
    # found the resources), then the data and the resources, then the storage is opened.
    storage_exists = check_storage(storage)
    resources = space.trial_resources
    cpus = args.cpus_per_trial or resources["cpu"]
    gpus = args.gpus_per_trial if args.gpus_per_trial is not None else resources["gpu"]
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        from nas import data

        # The data, once, here: not a failed trial per worker (a cluster's workers may
        # see other folders than the driver, so there each trial finds its own).
        data.prepare(space.dataset, data_dir=args.data_dir, download=args.download)
        _check_local_resources(args, space, cpus, gpus)
    if storage_exists:
        open_storage(storage)  # a server or an existing file: a bad one fails before Ray starts

    from nas.search import SearchOptions
    from nas.search import run_search as search

    opts = SearchOptions(
        space=space, study_name=args.study or space.name, storage=storage,
        results_dir=results, trials=args.trials or space.trials, data_dir=args.data_dir,
        download=args.download, cpus_per_trial=cpus, gpus_per_trial=gpus,
        max_concurrent=args.max_concurrent, address=args.address,
        max_failures=args.max_failures,
    )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress lines say enough
    # Started from a script, SIGINT may arrive ignored; Ctrl-C must still stop the search.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.perf_counter()
    outcome = search(opts)
    _print_search_summary(opts, outcome, time.perf_counter() - started, args)
    _write_search_report(opts, outcome)
    return 130 if outcome.interrupted else 0


def _print_search_summary(opts, outcome, seconds: float, args: argparse.Namespace) -> None:
    from nas.storage import mask
    from nas.studies import describe, is_finished, pareto_front, state_counts, trial_candidate

    study = outcome.study
    trials = study.get_trials(deepcopy=False)
    counts = state_counts(trials)
    where = mask(opts.storage)
    stopped = sum(not is_finished(t) and t.state.name == "FAIL" for t in trials)
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
            print(f"checkpoint: {_shown_path(attrs['checkpoint'])}")
    print(f"study: {study.study_name} in {where} (nas dashboard --storage {where})")
    print(f"checkpoints: {_shown_path(outcome.checkpoints)}/   Ray Tune logs: "
          f"{_shown_path(outcome.tune_dir)}/")
    if best is not None:
        print(f"next: nas best --study {study.study_name} --storage {where} --export best.yaml "
              "(it prints the command that retrains it)")
    if outcome.interrupted:
        resume = ["nas search"]
        if args.space:
            resume.append(f"--space {args.space}")
        resume += [f"--study {study.study_name}", f"--storage {where}"]
        if args.results != "results":
            resume.append(f"--results {args.results}")
        if args.trials:
            resume.append(f"--trials {args.trials}")
        print("interrupted: finished trials are kept; resume with: " + " ".join(resume),
              file=sys.stderr)


def _write_search_report(opts, outcome) -> None:
    """The report of what the study holds now; a failure here loses nothing already stored."""
    from nas.report import default_report_path, write_report
    from nas.storage import is_url

    # The report is for the person at this machine: beside the results, or here for a URI.
    folder = "results" if is_url(str(opts.results_dir)) else opts.results_dir
    path = default_report_path(folder, opts.study_name)
    try:
        drawn = write_report(outcome.study, path, storage_url=opts.storage)
    except Exception as exc:  # the study is safe in its storage; 'nas report' can retry
        message = " ".join(str(exc).split())[:200]
        print(f"warning: could not write the report ({type(exc).__name__}: {message}); the "
              f"study is intact, retry with: nas report --study {opts.study_name}",
              file=sys.stderr)
        return
    print(f"report: {_shown_path(path)} ({len(drawn)} figures; open it in a browser)")


def _shown_path(path: str | Path) -> str:
    """Relative to the working folder when inside it: shorter, and what the user typed."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _open_storage_arg(args: argparse.Namespace):
    from nas.storage import open_storage

    url = DEFAULT_STORAGE if args.storage is None else args.storage  # '' is an error, below
    if args.storage is None and not Path("results/nas.db").exists():
        raise NasError(f"no storage at {DEFAULT_STORAGE} (run 'nas search' first, or pass "
                       "--storage)")
    return url, open_storage(url, create=False)


def run_studies(args: argparse.Namespace) -> int:
    import optuna

    from nas.studies import state_counts

    url, storage = _open_storage_arg(args)
    names = sorted(optuna.get_all_study_names(storage))
    if not names:
        print("no studies")
        return 0
    print(f"{'study':<28} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} "
          f"{'running':>7} {'best':>7}")
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        c = state_counts(trials)
        values = [t.values[0] for t in trials if t.state.name == "COMPLETE" and t.values]
        best = f"{max(values):.2%}" if values else "-"
        print(f"{name:<28} {len(trials):>6} {c['COMPLETE']:>8} {c['PRUNED']:>6} {c['FAIL']:>6} "
              f"{c['RUNNING']:>7} {best:>7}")
    return 0


def run_best(args: argparse.Namespace) -> int:
    from nas.studies import (
        best_trial,
        candidate_yaml,
        describe,
        load_study,
        pareto_front,
        trial_candidate,
    )

    url, storage = _open_storage_arg(args)
    study = load_study(args.study, storage, url)
    best = best_trial(study, args.trial)
    candidate = trial_candidate(best)
    objectives = study.user_attrs.get("objectives", ["val_accuracy"])
    front = pareto_front(study) if len(study.directions) > 1 else []
    retrain = f"nas train --config {args.export}"
    if best.user_attrs.get("threads"):
        # The same thread count gives the same numbers on a CPU; others differ slightly.
        retrain += f" --threads {best.user_attrs['threads']}"
    if args.export:
        out = Path(args.export)
        _check_writable(out, flag="--export")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(candidate_yaml(
            candidate, name=f"{study.study_name}-trial-{best.number}",
            comment=f"Trial {best.number} of study '{study.study_name}': val "
                    f"{best.values[0]:.4f}.\nRetrain exactly: {retrain}"))
    if args.json:
        print(json.dumps({"study": study.study_name, "trial": best.number,
                          "val_accuracy": best.values[0], "values": best.values,
                          "objectives": objectives, "candidate": candidate.to_dict(),
                          "pareto_front": [t.number for t in front],
                          "user_attrs": best.user_attrs, "exported": args.export}))
        return 0
    if front:
        print(f"study {study.study_name}: Pareto front of {' (up), '.join(objectives)} (down), "
              f"{len(front)} trial(s):")
        print(f"  {'trial':>5} {'val':>7} {objectives[1]:>13}  candidate")
        for t in front:
            print(f"  {t.number:>5} {t.values[0]:>7.2%} {t.values[1]:>13,.0f}  "
                  f"{describe(trial_candidate(t))}")
    attrs = best.user_attrs
    print(f"study {study.study_name}: {'chosen' if args.trial is not None else 'best'} trial "
          f"{best.number}, val {best.values[0]:.2%}")
    print(f"  {describe(candidate)}")
    if "layers" in attrs:
        print(f"  {attrs['layers']} layers, {attrs['blocks']} blocks, {attrs['params']:,} "
              f"parameters, {attrs.get('seconds', 0):.1f}s")
    if args.export:
        print(f"candidate written to {args.export}; retrain: {retrain}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    from nas.report import collect, default_report_path, write_report
    from nas.studies import load_study

    url, storage = _open_storage_arg(args)
    study = load_study(args.study, storage, url)
    out = Path(args.out) if args.out else default_report_path("results", study.study_name)
    _check_writable(out, flag="--out")
    drawn = write_report(study, out, storage_url=url)
    if args.json:
        print(json.dumps({"study": study.study_name, "report": str(out), "figures": drawn,
                          "data": collect(study)}))
        return 0
    print(f"report: {_shown_path(out)} ({len(drawn)} figures; open it in a browser)")
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    import socket

    from nas.studies import load_study

    url, storage = _open_storage_arg(args)
    path = ""
    if args.study:
        study = load_study(args.study, storage, url)
        path = f"studies/{study._study_id}"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: binding to {args.host} exposes the study to the network; use it only "
              "on a trusted network", file=sys.stderr)
    with socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET) as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as exc:
            raise NasError(f"--port {args.port}: cannot listen on {args.host} "
                           f"({exc.strerror}); allowed: a free port") from None
    import optuna_dashboard

    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"optuna-dashboard: http://{shown}:{args.port}/dashboard/{path}  (Ctrl-C stops it)",
          flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop it
        optuna_dashboard.run_server(storage, host=args.host, port=args.port)
    return 0


def _load_for_analysis(args: argparse.Namespace):
    """The checkpoint's network and the splits it was trained on (same seed, same split)."""
    _check_data_args(args)
    if Path(args.checkpoint).is_dir():  # these two before torch's seconds of importing
        raise NasError(f"{args.checkpoint}: is a folder; allowed: a checkpoint file")
    if not Path(args.checkpoint).is_file():
        raise NasError(f"{args.checkpoint}: checkpoint not found")
    from nas import data
    from nas.train import available_cpus, load_checkpoint, resolve_device

    device = resolve_device(args.device)
    torch_threads = args.threads or available_cpus()
    import torch

    torch.set_num_threads(torch_threads)
    with warnings.catch_warnings():  # the error for a file that is not ours says enough
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        model, meta = load_checkpoint(args.checkpoint, device=device)
    candidate = model.candidate
    dataset = args.dataset or meta["input"]["dataset"]
    splits = data.load(dataset, data_dir=args.data_dir, seed=candidate.seed, device=device,
                       options=candidate.data)
    shape = meta["input"]
    if (splits.in_channels, splits.num_classes) != (shape["in_channels"], shape["num_classes"]):
        raise NasError(f"--dataset {dataset}: {splits.in_channels} channels, "
                       f"{splits.num_classes} classes; the checkpoint expects "
                       f"{shape['in_channels']} channels, {shape['num_classes']} classes")
    return model, splits, device, torch_threads


def run_analyze(args: argparse.Namespace) -> int:
    model, splits, _, _ = _load_for_analysis(args)  # checks the input before torch loads
    from nas.depth import analyze

    report = analyze(model, splits.val_x, splits.val_y, tolerance=args.tolerance)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.table())  # the table ends with the summary line
    return 0


def run_compress(args: argparse.Namespace) -> int:
    if args.save:
        _check_writable(Path(args.save))
    model, splits, device, threads = _load_for_analysis(args)  # checks input before torch
    from nas.compress import compress
    from nas.depth import analyze
    from nas.train import save_checkpoint

    report = analyze(model, splits.val_x, splits.val_y, tolerance=args.tolerance)
    print(report.summary(), file=sys.stderr, flush=True)
    result = compress(model, splits, report, epochs=args.epochs, threads=threads, device=device)
    if args.save:
        save_checkpoint(args.save, result.model, splits,
                        extra={"compressed_from": str(args.checkpoint),
                               "removed": result.removed})
    if args.json:
        print(json.dumps({"removed": result.removed, "full": result.full,
                          "compressed": result.compressed, "fine_tune_epochs": args.epochs}))
        return 0
    full, small = result.full, result.compressed
    print(f"{'':<12} {'blocks':>6} {'layers':>6} {'params':>10} {'val':>7} {'test':>7} "
          f"{'images/s':>9}")
    for label, row in (("full", full), ("compressed", small)):
        print(f"{label:<12} {row['blocks']:>6} {row['layers']:>6} {row['params']:>10,} "
              f"{row['val_accuracy']:>7.2%} {row['test_accuracy']:>7.2%} "
              f"{row['images_per_second']:>9,.0f}")
    print(f"removed {len(result.removed)} blocks, fine-tuned {args.epochs} epochs: val "
          f"{(small['val_accuracy'] - full['val_accuracy']) * 100:+.2f} pp, "
          f"{small['params'] / full['params']:.0%} of the parameters, "
          f"{small['images_per_second'] / full['images_per_second']:.2f}x the images/s")
    if args.save:
        print(f"checkpoint: {args.save}")
    return 0


def _check_writable(path: Path, flag: str = "--save") -> None:
    """Fail before training, not after, when the checkpoint cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if path.is_dir():
        raise NasError(f"{flag} {path}: is a folder; allowed: a file path")
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise NasError(f"{flag} {path.parent if flag == '--results' else path}: {probe} is not "
                       "a writable folder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Diverged as exc:
        print(f"nas: {exc}; try a lower lr or a smaller network", file=sys.stderr)
        return 1
    except NasError as exc:
        print(f"nas: error: {one_line(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in resnas: keep it to one line unless asked
        if os.environ.get("RESNAS_DEBUG"):
            raise
        message = " ".join(str(exc).split())[:300]
        print(f"nas: internal error: {type(exc).__name__}: {message} "
              "(set RESNAS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
