"""Big studies: a search driver and the reading commands on studies of 100 to 100,000
real trials (issue 28).

Builds, for each size, a new study whose trials are copies of a real search's trials
(every row: state, params, values, per-epoch values, user and system attributes), written
in bulk through SQLAlchemy into Optuna's own tables (trial by trial through Optuna's API,
10,000 trials take many minutes), in SQLite or in a PostgreSQL database (``--postgres``).
Then times, each in a process of its own, with its peak resident memory (GNU time's %M):
- the search driver's work per trial: the real :class:`StudySearcher` (with the search's
  sampler, its dashboard writer, its storage) driven as Ray Tune drives it (suggest, one
  result per epoch, the trial's end with the source trial's results), ``--driver-trials``
  trials added to the pre-filled study, ``--driver-runs`` times; the median per trial
  after the first five (the median of the runs), apart from the start (opening the
  study) and the first trial (the sampler reads the study then, once);
- ``nas studies`` against ``optuna studies`` (the baseline, the same study, the same run);
- ``nas best``; ``nas report`` (up to ``--report-up-to`` trials), with its HTML's size;
- optuna-dashboard's API: its server on the study (127.0.0.1, a free port), then the
  study's page data (``/api/studies/<id>``) as its browser page asks for it.

ratio = per-trial driver time at the largest size / at the smallest (issue 28's goal:
<= 1.2 from 100 to 10,000 trials). Prints ``ratio=<x>`` last.

    python benchmarks/big_study.py [--sizes 100,1000,10000] [--source sqlite:///results/nas.db]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
from optuna.storages._rdb import models  # bulk rows: Optuna's API writes one by one

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
WARM = 5  # trials after which the driver's per-trial time is taken


def build(source: optuna.Study, size: int, url: str) -> str:
    """A study of ``size`` trials copied round-robin from ``source`` into the new, empty
    storage at ``url``."""
    import sqlalchemy

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
        if engine.dialect.name == "postgresql":  # ids given: move the id sequence past them
            connection.execute(sqlalchemy.text(
                "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                "(SELECT max(trial_id) FROM trials))"))
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


def drive(url: str, study_name: str, space_file: str, source_url: str, trials: int) -> dict:
    """The search driver's work for ``trials`` trials added to the study, as Ray Tune asks
    for it (this runs in a process of its own: ``--drive``)."""
    sys.path.insert(0, str(ROOT))
    from nas.space import load_space
    from nas.study.policy import SearchPolicy
    from nas.study.queries import count_finished
    from nas.study.recovery import recover_stale_trials
    from nas.tuning.dashboard import DashboardWriter
    from nas.tuning.driver import open_study
    from nas.tuning.options import SearchOptions
    from nas.tuning.searcher import StudySearcher

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    template = [t for t in optuna.load_study(study_name=study_name, storage=source_url)
                .get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    space = load_space(space_file)
    work = tempfile.mkdtemp(prefix="big-study-results-")
    opts = SearchOptions(space=space, study_name=study_name, storage=url, results_dir=work,
                         trials=10**9)
    started = time.perf_counter()
    study = open_study(opts, 2)  # as nas search opens it, for 2 trials at a time
    recover_stale_trials(study)
    count_finished(study)
    dashboard = DashboardWriter(study)
    searcher = StudySearcher(SearchPolicy(study, space), opts, trials, 1, "cpu", dashboard)
    start = time.perf_counter() - started
    seconds = []
    for i in range(trials):
        source = template[i % len(template)]
        began = time.perf_counter()
        searcher.suggest(f"t{i}")
        for epoch, value in sorted(source.intermediate_values.items()):
            searcher.observe(f"t{i}", {"epoch": epoch, "val_accuracy": value})
        result = {k: v for k, v in source.user_attrs.items() if k not in ("driver", "candidate")}
        searcher.on_trial_complete(f"t{i}", {**result, "epoch": space.epochs,
                                             "val_accuracy": source.values[0]})
        seconds.append(time.perf_counter() - began)
    began = time.perf_counter()
    dashboard.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"start": start, "first": seconds[0], "per_trial": statistics.median(seconds[WARM:]),
            "close": time.perf_counter() - began}


def dashboard_seconds(url: str, study_name: str) -> float:
    """Seconds for optuna-dashboard's server (``nas dashboard``) to answer the study's page
    data, the first time (what a person opening the study waits for)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(BIN / "nas"), "dashboard", "--storage", url, "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    try:
        server.stdout.readline()  # its address: it is about to serve
        study_id = optuna.storages.RDBStorage(url).get_study_id_from_name(study_name)
        for _ in range(600):  # the line comes just before the server listens
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=60).read()
                break
            except OSError:
                time.sleep(0.1)
        began = time.perf_counter()
        page = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=600).read())
        seconds = time.perf_counter() - began
        assert len(page["trials"]) > 0, page.keys()
        return seconds
    finally:
        server.terminate()
        server.wait()


class Storages:
    """A new, empty storage per study size: a SQLite file, or a database of the PostgreSQL
    server ``--postgres`` names (its user may create databases), dropped afterwards."""

    def __init__(self, work: Path, postgres: str | None) -> None:
        self.work, self.postgres, self.made = work, postgres, []

    def new(self, size: int) -> str:
        if self.postgres is None:
            return f"sqlite:///{self.work / f'{size}.db'}"
        name = f"big_study_{size}"
        self._admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        self.made.append(name)
        return f"{self.postgres.rstrip('/')}/{name}"

    def drop(self) -> None:
        if self.made:
            self._admin(*(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in self.made))

    def _admin(self, *statements: str) -> None:
        import sqlalchemy

        engine = sqlalchemy.create_engine(f"{self.postgres.rstrip('/')}/postgres",
                                          isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for statement in statements:
                connection.execute(sqlalchemy.text(statement))
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000",
                        help="study sizes, comma-separated (default: 100,1000,10000)")
    parser.add_argument("--source", default="sqlite:///results/nas.db",
                        help="the storage of a real search to copy (default: what "
                             "'make search' writes)")
    parser.add_argument("--study", default="resnet-digits", help="the study to copy")
    parser.add_argument("--space", default=str(ROOT / "search_spaces" / "resnet-digits.yaml"),
                        help="the space file of that search (the driver samples from it)")
    parser.add_argument("--postgres", metavar="URL",
                        help="a PostgreSQL server, as postgresql://user:password@host:port "
                             "(the user may create databases); default: SQLite files")
    parser.add_argument("--driver-trials", type=int, default=100,
                        help="trials the driver adds to each study (default: 100)")
    parser.add_argument("--driver-runs", type=int, default=3,
                        help="driver runs per size, each in a new process; the median of "
                             "their medians is shown (default: 3)")
    parser.add_argument("--baseline-up-to", type=int, default=10_000,
                        help="run 'optuna studies' up to this size only (at 100,000 it "
                             "holds every trial in memory: ~12 GB, minutes)")
    parser.add_argument("--report-up-to", type=int, default=10_000,
                        help="run 'nas report' and the dashboard up to this size only "
                             "(default: 10000)")
    parser.add_argument("--drive", nargs=2, metavar=("URL", "SOURCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:  # the driver's timing, in a process of its own
        print(json.dumps(drive(args.drive[0], args.study, args.space, args.drive[1],
                               args.driver_trials)))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.source)
    work = Path(tempfile.mkdtemp(prefix="big-study-"))
    storages = Storages(work, args.postgres)
    per_trial = []
    nan = (float("nan"), float("nan"), "")
    try:
        print(f"{'trials':>7} {'build':>6} | driver: {'start':>6} {'1st':>6} {'per trial':>9} | "
              f"{'nas studies':>14} {'optuna studies':>15} {'nas best':>13} | "
              f"{'nas report':>23} | {'dashboard':>9}")
        for size in sizes:
            started = time.perf_counter()
            url = build(source, size, storages.new(size))
            built = time.perf_counter() - started
            # first, before the commands below leave the machine's caches to their own;
            # a few times (each adds its trials): one run's median moves by 10-20%
            runs = [json.loads(subprocess.run(
                [sys.executable, __file__, "--drive", url, args.source, "--study", args.study,
                 "--space", args.space, "--driver-trials", str(args.driver_trials)],
                check=True, capture_output=True, text=True).stdout)
                for _ in range(args.driver_runs)]
            driver = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            per_trial.append(driver["per_trial"])
            ours = timed([str(BIN / "nas"), "studies", "--storage", url])
            theirs = timed([str(BIN / "optuna"), "studies", "--storage", url]) \
                if size <= args.baseline_up_to else nan
            best = timed([str(BIN / "nas"), "best", "--storage", url, "--study", args.study])
            held = size + args.driver_trials * args.driver_runs  # the driver's trials too
            assert f"{held:>6}" in ours[2], ours[2]  # it counted them all
            report = work / f"{size}.html"
            small = size <= args.report_up_to
            drawn = timed([str(BIN / "nas"), "report", "--storage", url, "--study", args.study,
                           "--out", str(report)]) if small else None
            dashboard = dashboard_seconds(url, args.study) if small else float("nan")
            shown = f"{drawn[0]:>5.2f} s {drawn[1]:>4.0f} MB " \
                    f"{report.stat().st_size / 1e6:>4.1f} MB" if drawn else "-"
            print(f"{size:>7} {built:>5.1f}s | driver: {driver['start']:>5.2f}s "
                  f"{driver['first']:>5.2f}s {driver['per_trial'] * 1000:>6.0f} ms | "
                  f"{ours[0]:>5.2f} s {ours[1]:>3.0f} MB {theirs[0]:>6.2f} s {theirs[1]:>4.0f} MB "
                  f"{best[0]:>4.2f} s {best[1]:>3.0f} MB | {shown:>23} | {dashboard:>7.2f} s",
                  flush=True)
    finally:
        storages.drop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"ratio={per_trial[-1] / per_trial[0]:.3f}")


if __name__ == "__main__":
    main()
