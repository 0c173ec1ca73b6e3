"""Big studies: the reading commands on studies of 100 to 100,000 real trials (issue 28).

Builds, for each size, a new SQLite study whose trials are copies of a real search's
trials (every row: state, params, values, per-epoch values, user and system attributes),
written in bulk through SQLAlchemy into Optuna's own tables (trial by trial through
Optuna's API, 10,000 trials take many minutes). Then times, each command in a process of
its own as a user runs it, with its peak resident memory (GNU time's %M):
- ``nas studies`` against ``optuna studies`` (the baseline, the same file, the same run);
- ``nas best``;
- ``nas report`` (up to ``--report-up-to`` trials), with the size of its HTML.

Still to come for issue 28 (not measured here yet): the searcher's work for one completed
trial at each size, optuna-dashboard's API, and PostgreSQL.

ratio = ``nas studies`` seconds / ``optuna studies`` seconds at the largest size both ran
(goal <= 0.1). Prints ``ratio=<x>`` last.

    python benchmarks/big_study.py [--sizes 100,1000,10000] [--source sqlite:///results/nas.db]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages._rdb import models  # bulk rows: Optuna's API writes one by one

BIN = Path(sys.executable).parent


def build(source: optuna.Study, size: int, path: Path) -> str:
    """A study of ``size`` trials copied round-robin from ``source`` into a new file."""
    import sqlalchemy

    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name=source.study_name, storage=url,
                                directions=source.directions)
    for key, value in source.user_attrs.items():
        study.set_user_attr(key, value)
    template = source.get_trials(deepcopy=False)
    engine = sqlalchemy.create_engine(url)
    sid = optuna.storages.RDBStorage(url).get_study_id_from_name(source.study_name)
    rows: dict[str, list[dict]] = {name: [] for name in (
        "trials", "params", "values", "intermediate", "user", "system")}
    for number in range(size):
        trial = template[number % len(template)]
        tid = number + 1
        rows["trials"].append({"trial_id": tid, "number": number, "study_id": sid,
                               "state": trial.state.name,
                               "datetime_start": trial.datetime_start,
                               "datetime_complete": trial.datetime_complete})
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            rows["params"].append({
                "trial_id": tid, "param_name": name,
                "param_value": distribution.to_internal_repr(value),
                "distribution_json": optuna.distributions.distribution_to_json(distribution)})
        for objective, value in enumerate(trial.values or []):
            rows["values"].append({"trial_id": tid, "objective": objective, "value": value,
                                   "value_type": "FINITE"})
        for step, value in trial.intermediate_values.items():
            rows["intermediate"].append({"trial_id": tid, "step": step,
                                         "intermediate_value": value,
                                         "intermediate_value_type": "FINITE"})
        for key, value in trial.user_attrs.items():
            rows["user"].append({"trial_id": tid, "key": key,
                                 "value_json": optuna.storages._rdb.storage.json.dumps(value)})
        for key, value in trial.system_attrs.items():
            rows["system"].append({"trial_id": tid, "key": key,
                                   "value_json": optuna.storages._rdb.storage.json.dumps(value)})
    tables = {"trials": models.TrialModel, "params": models.TrialParamModel,
              "values": models.TrialValueModel,
              "intermediate": models.TrialIntermediateValueModel,
              "user": models.TrialUserAttributeModel,
              "system": models.TrialSystemAttributeModel}
    with engine.begin() as connection:
        for name, model in tables.items():
            if rows[name]:
                connection.execute(model.__table__.insert(), rows[name])
    engine.dispose()
    return url


def timed(command: list[str]) -> tuple[float, float, str]:
    """Seconds and peak MB of one command run as a user runs it (GNU time)."""
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-o", report.name, "-f", "%M", *command],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_kb = float(report.read().strip().splitlines()[-1])
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    return seconds, peak_kb / 1024, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="study sizes, comma-separated (default: 100,1000,10000)")
    parser.add_argument("--source", default="sqlite:///results/nas.db",
                        help="the storage of a real search to copy (default: what "
                             "'make search' writes)")
    parser.add_argument("--study", default="resnet-digits", help="the study to copy")
    parser.add_argument("--baseline-up-to", type=int, default=10_000,
                        help="run 'optuna studies' up to this size only (at 100,000 it "
                             "holds every trial in memory: ~12 GB, minutes)")
    parser.add_argument("--report-up-to", type=int, default=10_000,
                        help="run 'nas report' up to this size only (default: 10000)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.source)
    work = Path(tempfile.mkdtemp(prefix="big-study-"))
    ratios = []
    try:
        print(f"{'trials':>7} {'build s':>8} {'nas studies':>16} {'optuna studies':>16} "
              f"{'nas best':>14} {'nas report':>24}")
        for size in sizes:
            started = time.perf_counter()
            url = build(source, size, work / f"{size}.db")
            built = time.perf_counter() - started
            ours = timed([str(BIN / "nas"), "studies", "--storage", url])
            theirs = timed([str(BIN / "optuna"), "studies", "--storage", url]) \
                if size <= args.baseline_up_to else (float("nan"), float("nan"), "")
            best = timed([str(BIN / "nas"), "best", "--storage", url, "--study", args.study])
            assert f"{size:>6}" in ours[2], ours[2]  # it counted them all
            report = work / f"{size}.html"
            drawn = timed([str(BIN / "nas"), "report", "--storage", url, "--study", args.study,
                           "--out", str(report)]) if size <= args.report_up_to else None
            shown = f"{drawn[0]:>6.2f} s {drawn[1]:>5.0f} MB " \
                    f"{report.stat().st_size / 1e6:>5.1f} MB" if drawn else "-"
            if size <= args.baseline_up_to:
                ratios.append(ours[0] / theirs[0])
            print(f"{size:>7} {built:>8.1f} {ours[0]:>6.2f} s {ours[1]:>5.0f} MB "
                  f"{theirs[0]:>6.2f} s {theirs[1]:>5.0f} MB {best[0]:>5.2f} s {best[1]:>4.0f} MB "
                  f"{shown:>24}",
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"ratio={ratios[-1]:.3f}")


if __name__ == "__main__":
    main()
