"""``nas studies``, ``nas best``, ``nas report`` and ``nas dashboard``: reading a storage."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from nas.cli.args import (
    add_storage_argument,
    add_study_arguments,
    non_negative_int,
    port_number,
)
from nas.errors import NasError
from nas.files import check_writable, shown_path
from nas.names import DEFAULT_RESULTS, DEFAULT_STORAGE
from nas.study.config import sqlite_file


def register(commands) -> None:
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
    best.add_argument("--max", action="append", type=cost_bound, metavar="COST=BOUND",
                      help="the most accurate complete trial within this cost: params, macs "
                           "(per image), latency (ms per image at batch 1) or useful_layers, "
                           "e.g. --max macs=2e6 (repeat it for several); on a two-objective "
                           "study, a member of the Pareto front")
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


def cost_bound(text: str) -> tuple[str, float]:
    """``--max COST=BOUND``: a cost name and a finite bound."""
    import math

    from nas.study.costs import COST_ATTRS

    name, _, bound = text.partition("=")
    try:
        value = float(bound)
    except ValueError:
        value = math.nan
    if name not in COST_ATTRS or not math.isfinite(value):
        raise argparse.ArgumentTypeError(
            f"got {text!r}; allowed: COST=BOUND with COST one of {', '.join(COST_ATTRS)} and "
            "BOUND a number, e.g. macs=2e6")
    return name, value


def open_storage_arg(args: argparse.Namespace):
    """``--storage`` (or the default, which must exist) opened for reading."""
    from nas.study.storage import open_storage

    url = DEFAULT_STORAGE if args.storage is None else args.storage  # '' is an error, below
    if args.storage is None and not sqlite_file(DEFAULT_STORAGE).exists():
        raise NasError(f"no storage at {DEFAULT_STORAGE} (run 'nas search' first, or pass "
                       "--storage)")
    return url, open_storage(url, create=False)


def run_studies(args: argparse.Namespace) -> int:
    import optuna

    from nas.study._optuna import study_summaries
    from nas.study.queries import best_value, state_counts

    url, storage = open_storage_arg(args)
    summaries = study_summaries(storage)  # counted in SQL: flat in the study's size
    if summaries is None:  # a journal file: read trial by trial
        summaries = {}
        for name in optuna.get_all_study_names(storage):
            study = optuna.load_study(study_name=name, storage=storage)
            summaries[name] = (state_counts(study.get_trials(deepcopy=False)),
                               best_value(study))
    if not summaries:
        print("no studies")
        return 0
    print(f"{'study':<28} {'trials':>6} {'complete':>8} {'pruned':>6} {'failed':>6} "
          f"{'running':>7} {'best':>7}")
    for name in sorted(summaries):
        c, value = summaries[name]
        best = f"{value:.2%}" if value is not None else "-"
        print(f"{name:<28} {sum(c.values()):>6} {c.get('COMPLETE', 0):>8} "
              f"{c.get('PRUNED', 0):>6} {c.get('FAIL', 0):>6} {c.get('RUNNING', 0):>7} {best:>7}")
    return 0


def run_best(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState

    from nas.study.queries import (
        LeanStudy,
        best_trial,
        candidate_yaml,
        describe_depth,
        load_study,
        pareto_front,
        trial_candidate,
        useful_depth,
        within_budget,
    )

    url, storage = open_storage_arg(args)
    study = load_study(args.study, storage, url)
    if args.max and args.trial is not None:
        raise NasError("--max and --trial both choose the trial; allowed: one of them")
    if args.max:
        from nas.study.costs import COST_ATTRS

        lean = LeanStudy(study, tuple(COST_ATTRS.values()), (), steps=False)
        complete = lean.get_trials(states=(TrialState.COMPLETE,))
        if not complete:
            raise NasError(f"study '{study.study_name}' has no complete trial yet")
        best = lean.full_trial(within_budget(complete, dict(args.max)))
    else:
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
        check_writable(out, name="--export")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(candidate_yaml(
            candidate, name=f"{study.study_name}-trial-{best.number}",
            comment=f"Trial {best.number} of study '{study.study_name}': val "
                    f"{best.values[0]:.4f}.\nRetrain exactly: {retrain}"))
    if args.json:
        print(json.dumps({"study": study.study_name, "trial": best.number,
                          "val_accuracy": best.values[0], "values": best.values,
                          "objectives": objectives, "candidate": candidate.to_dict(),
                          "useful_depth": useful_depth(best),
                          "pareto_front": [t.number for t in front],
                          "pareto_useful_depth": {str(t.number): useful_depth(t) for t in front},
                          "front": [{"trial": t.number, "values": t.values,
                                     "useful_depth": useful_depth(t)} for t in front],
                          "max": dict(args.max or {}),
                          "user_attrs": best.user_attrs, "exported": args.export}))
        return 0
    if front:
        print(f"study {study.study_name}: Pareto front of {' (up), '.join(objectives)} (down), "
              f"{len(front)} trial(s):")
        print(f"  {'trial':>5} {'val':>7} {objectives[1]:>13} {'useful':>13}  candidate")
        for t in front:
            depth = useful_depth(t)
            useful = f"{depth['useful_layers']}/{depth['total_layers']}" if depth else "-"
            cost = _cost_text(t.values[1])
            print(f"  {t.number:>5} {t.values[0]:>7.2%} {cost:>13} {useful:>13}  "
                  f"{trial_candidate(t).describe()}")
    attrs = best.user_attrs
    chosen = "chosen" if args.trial is not None or args.max else "best"
    within = ", ".join(f"{k} <= {v:,.6g}" for k, v in args.max or ())
    print(f"study {study.study_name}: {chosen} trial {best.number}, val {best.values[0]:.2%}"
          + (f" (the most accurate within {within})" if within else ""))
    print(f"  {candidate.describe()}")
    if "layers" in attrs:
        print(f"  {describe_depth(best)}; {attrs['blocks']} blocks, {attrs['params']:,} "
              f"parameters, {attrs.get('seconds', 0):.1f}s")
    if args.export:
        print(f"candidate written to {args.export}; retrain: {retrain}")
    return 0


def _cost_text(value: float) -> str:
    """Parameters and MACs in thousands-separated units, a latency in ms to 3 figures."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def run_report(args: argparse.Namespace) -> int:
    from nas.report import collect, default_report_path, write_report
    from nas.study.queries import LeanStudy, load_study

    url, storage = open_storage_arg(args)
    study = LeanStudy(load_study(args.study, storage, url))  # read once, for page and JSON
    out = Path(args.out) if args.out else default_report_path(DEFAULT_RESULTS, study.study_name)
    check_writable(out, name="--out")
    drawn = write_report(study, out, storage_url=url)
    if args.json:
        print(json.dumps({"study": study.study_name, "report": str(out), "figures": drawn,
                          "data": collect(study)}))
        return 0
    print(f"report: {shown_path(out)} ({len(drawn)} figures; open it in a browser)")
    return 0


def run_dashboard(args: argparse.Namespace) -> int:
    import socket

    from nas.study import _optuna
    from nas.study.queries import load_study

    url, storage = open_storage_arg(args)
    path = ""
    if args.study:
        study = load_study(args.study, storage, url)
        path = f"studies/{_optuna.study_id(study)}"
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
