"""Storages that several ``nas search`` drivers share at once: a real PostgreSQL, and SQLite.

The PostgreSQL tests start Debian's server (scripts/install-test-packages.sh installs
it) from a temporary folder on 127.0.0.1 and a free port, with a user that has a password, and
skip, saying so, only where its binaries are absent.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from helpers import ROOT, OutputReader, dashboard_trials, free_port, stop_group
from optuna.trial import TrialState

from nas.study import rdb
from nas.study.storage import StorageError, open_storage

USER, PASSWORD = "resnas", "Pw-5ecret-42"  # grep-able: it must never be printed

# Two drivers on one study: every trial learns; nothing is pruned.
PAIR_SPACE = """\
name: pair
dataset: digits
epochs: 2
trials: 3
space:
  blocks_per_stage: 1
  width: 8
  shortcut: none
  schedule: constant
  batch_size: 32
  lr: {type: float, low: 0.05, high: 0.2, log: true}
sampler: {name: random, seed: 0}
pruner: {name: none}
"""


# --- a real PostgreSQL server -----------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")
             if (p.parent / "postgres").is_file()]
    return max(found, key=lambda p: int(p.parent.name)
               if p.parent.name.isdigit() else 0) if found else None


@dataclass
class Postgres:
    port: int
    socket_dir: Path
    command: list[str]
    as_user: dict
    server: subprocess.Popen | None = None

    def start(self) -> None:
        import psycopg2

        log = self.socket_dir / "server.log"
        with open(log, "a") as out:
            self.server = subprocess.Popen(self.command, cwd=self.socket_dir, stdout=out,
                                           stderr=subprocess.STDOUT, start_new_session=True,
                                           **self.as_user)
        deadline = time.monotonic() + 60
        while True:
            assert self.server.poll() is None, "postgres exited: " + log.read_text()[-2000:]
            try:
                psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                                 dbname="postgres", connect_timeout=2).close()
                return
            except psycopg2.OperationalError:
                assert time.monotonic() < deadline, "postgres never accepted connections"
                time.sleep(0.2)

    def stop(self) -> None:
        if self.server is not None:
            stop_group(self.server)  # SIGINT: PostgreSQL's fast shutdown
            self.server = None

    def url(self, database: str = "nas") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        # the superuser, over the private socket (trusted there); the tests use TCP + password
        conn = psycopg2.connect(host=str(self.socket_dir), port=self.port, user="postgres",
                                dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}" OWNER {USER}')
        finally:
            conn.close()
        return self.url(name)


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own, on 127.0.0.1 and a free port, for this module."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                    "(bash scripts/install-test-packages.sh installs Debian's)")
    import psycopg2  # the test extra has it: a missing driver is a failure, not a skip

    # Not under pytest's tmp folder: that one is private to us and the server runs as the
    # postgres user when we are root (PostgreSQL refuses to run as root).
    root = Path(tempfile.mkdtemp(prefix="resnas-pg-"))
    as_user: dict = {}
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.fail("running as root needs the 'postgres' system user (Debian's "
                        "postgresql package creates it) to start the server as")
        os.chown(root, account.pw_uid, account.pw_gid)
        as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data = root / "data"
    setup = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
         "--auth-host=scram-sha-256", "--locale=C", "--encoding=UTF8", "--no-sync"],
        cwd=root, capture_output=True, text=True, timeout=120, **as_user)
    assert setup.returncode == 0, setup.stderr[-2000:]
    port = free_port()
    command = [str(bindir / "postgres"), "-D", str(data), "-k", str(root), "-h", "127.0.0.1",
               "-p", str(port), "-c", "fsync=off", "-c", "synchronous_commit=off",
               "-c", "full_page_writes=off"]
    pg = Postgres(port, root, command, as_user)
    try:
        pg.start()
        conn = psycopg2.connect(host=str(root), port=port, user="postgres", dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER {USER} PASSWORD '{PASSWORD}'")
        conn.close()
        pg.create_database("nas")
        yield pg
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- two drivers on one study -------------------------------------------------------------


def run_two_drivers(storage: str, work: Path, trials: int = 3) -> list[dict]:
    """Two ``nas search`` drivers on study 'pair', started at the same time."""
    space = work / "pair.yaml"
    space.write_text(PAIR_SPACE)
    procs = []
    for i in (1, 2):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--study", "pair",
             "--storage", storage, "--results", str(work / f"results-{i}"),
             "--max-concurrent", "1", "--trials", str(trials)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True))  # its group holds the Ray it starts
    runs = []
    try:
        for i, proc in enumerate(procs, 1):
            out, err = proc.communicate(timeout=480)
            runs.append({"rc": proc.returncode, "out": out, "err": err,
                         "results": work / f"results-{i}"})
    finally:
        for proc in procs:
            stop_group(proc, signal.SIGKILL, wait=5)
    return runs


def _ran(run: dict) -> int:
    line = next(ln for ln in run["out"].splitlines() if ln.startswith("search finished: ran "))
    return int(line.split()[3])


def check_shared_study(storage: str, runs: list[dict]) -> list[optuna.trial.FrozenTrial]:
    for run in runs:
        assert run["rc"] == 0, run["err"][-3000:]
        assert "Traceback" not in run["err"] and "database is locked" not in run["err"]
    trials = optuna.load_study(study_name="pair", storage=open_storage(storage)).get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # unique, and none skipped
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for t in trials:
        assert t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and t.user_attrs.get("fail_reason")), t
    # Each driver runs its own budget: --trials minus the finished trials the study held
    # when it started (started together on an empty study: 3 each). The study holds the sum
    # of what they ran: no trial lost, none counted twice.
    ran = [_ran(run) for run in runs]
    for run, n in zip(runs, ran, strict=True):
        assert n >= 1 and f"searching {n} trial(s) of 'pair'" in run["err"], run["err"][-2000:]
    assert len(trials) == sum(ran)
    by_driver = collections.Counter(t.user_attrs["driver"] for t in trials)
    assert sorted(by_driver.values()) == sorted(ran)
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert Path(t.user_attrs["checkpoint"]).is_file()
    return trials


@pytest.fixture(scope="module")
def pg_pair(postgres, tmp_path_factory):
    work = tmp_path_factory.mktemp("pg-pair")
    storage = postgres.url()
    return {"storage": storage, "runs": run_two_drivers(storage, work), "work": work}


@pytest.mark.slow
def test_two_drivers_share_a_postgres_study(pg_pair) -> None:
    check_shared_study(pg_pair["storage"], pg_pair["runs"])
    for run in pg_pair["runs"]:
        assert f"postgresql://{USER}:***@127.0.0.1" in run["out"]  # masked, still useful


@pytest.mark.slow
def test_the_password_is_neither_printed_nor_in_the_report(pg_pair) -> None:
    for run in pg_pair["runs"]:
        assert PASSWORD not in run["out"] and PASSWORD not in run["err"]
        report = run["results"] / "pair" / "report.html"
        assert report.is_file()
        assert f"{USER}:***@" in report.read_text()


@pytest.mark.slow
def test_no_file_under_results_holds_the_password(pg_pair) -> None:
    """Checkpoints, Ray Tune's logs and its pickled experiment state (tuner.pkl) alike."""
    for path in pg_pair["work"].rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_the_study_holds_no_password(pg_pair) -> None:
    """Nor its attributes, nor the dashboard notes and figures (kept as system attributes)."""
    import json

    storage = open_storage(pg_pair["storage"])
    study = optuna.load_study(study_name="pair", storage=storage)
    held = [study.user_attrs, storage.get_study_system_attrs(study._study_id)]
    for t in study.get_trials():
        held += [t.user_attrs, t.system_attrs]
    assert any(key.startswith("dashboard:") for attrs in held for key in attrs)  # notes exist
    assert PASSWORD not in json.dumps(held, default=str)


@pytest.mark.slow
def test_dashboard_lists_the_postgres_study(pg_pair) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", "--storage", pg_pair["storage"],
         "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        trials = dashboard_trials(port, server, "pair")
        assert len(trials) == sum(_ran(run) for run in pg_pair["runs"])
    finally:
        stop_group(server, wait=10)
    out, err = server.communicate()
    assert PASSWORD not in out + err


def _wait_for_trials(proc: subprocess.Popen, stderr: OutputReader, storage, ready) -> list:
    """Poll study 'pair' until ``ready(trials)`` while the search runs."""
    deadline = time.monotonic() + 300
    while True:
        assert proc.poll() is None, stderr.rest()[-3000:]
        assert time.monotonic() < deadline, "the search never got there"
        with contextlib.suppress(KeyError):
            trials = optuna.load_study(study_name="pair", storage=storage).get_trials()
            if ready(trials):
                storage.remove_session()
                storage.engine.dispose()  # no connection of ours left across a restart
                return trials
        time.sleep(0.3)


def _complete(trials) -> dict[int, float]:
    return {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}


@pytest.mark.slow
def test_a_search_waits_out_a_postgres_restart_and_stops_cleanly_if_it_stays_down(
        postgres, tmp_path) -> None:
    """The server stops mid-search until the search has met the outage, then comes back:
    the search waits and goes on. Then it stops for longer than RESNAS_STORAGE_WAIT_S: one
    line, and the same command resumes."""
    url = postgres.create_database("restart")
    shown = url.replace(PASSWORD, "***")
    space = tmp_path / "restart.yaml"
    space.write_text(PAIR_SPACE.replace("epochs: 2", "epochs: 3").replace("trials: 3",
                                                                          "trials: 5"))
    command = [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage",
               url, "--results", str(tmp_path / "results"), "--max-concurrent", "2"]
    # How long the search waits for the server, from its first failed call: the restart
    # below (the server's start, once the search has said it waits) takes a fraction of it,
    # even on a loaded machine.
    wait = 20
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            env={**os.environ, "RESNAS_STORAGE_WAIT_S": str(wait)})
    stdout, stderr = OutputReader(proc.stdout), OutputReader(proc.stderr)
    storage = open_storage(url)
    try:
        def training(after: int):
            return lambda ts: len(_complete(ts)) > after and any(
                t.state == TrialState.RUNNING for t in ts)

        first = _complete(_wait_for_trials(proc, stderr, storage, training(0)))
        postgres.stop()
        # down until the search has met the outage (it then waits, and says so), not for
        # a time it may or may not have touched the storage in
        assert stderr.wait_for(f"nas: storage {shown} unreachable", timeout=300), \
            stderr.text()[-3000:]
        postgres.start()
        second = _complete(_wait_for_trials(proc, stderr, storage, training(len(first))))
        assert {n: second[n] for n in first} == first
        postgres.stop()  # and this time for good
        proc.wait(timeout=300)
    finally:
        postgres.start()
        stop_group(proc, signal.SIGKILL, wait=5)
    out, err = stdout.rest(), stderr.rest()
    assert proc.returncode == 2, err[-3000:]
    assert "reachable again after" in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"nas: error: --storage {shown}: unreachable for {wait} s"), last
    assert "Traceback" not in err and PASSWORD not in out + err

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = optuna.load_study(study_name="pair", storage=open_storage(url)).get_trials()
    assert [t.number for t in trials] == list(range(len(trials)))
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    complete = _complete(trials)
    assert len(complete) == 5 and {n: complete[n] for n in second} == second
    for t in trials:  # what the outage cut short ran again
        if t.state == TrialState.FAIL:
            assert t.user_attrs["fail_reason"] == "driver stopped"
            assert any(r.user_attrs.get("retry_of") == t.number for r in trials)


def test_a_server_gone_for_good_is_one_line_after_the_wait(postgres, monkeypatch) -> None:
    monkeypatch.setenv("RESNAS_STORAGE_WAIT_S", "2")
    storage = open_storage(postgres.create_database("gone"))
    study = optuna.create_study(study_name="s", storage=storage)
    postgres.stop()
    try:
        with pytest.raises(StorageError) as caught:
            study.ask()
    finally:
        postgres.start()
    message = str(caught.value)
    assert "unreachable for 2 s" in message and "RESNAS_STORAGE_WAIT_S" in message
    assert "\n" not in message and PASSWORD not in message
    study.tell(study.ask(), 1.0)  # once the server is back, the same storage works


@pytest.mark.slow
def test_a_dead_drivers_trials_fail_by_heartbeat(postgres, tmp_path, monkeypatch) -> None:
    """A trial left RUNNING by a driver on another host: stale heartbeat, FAIL, rerun.

    A trial whose other-host driver still beats is left alone.
    """
    # grace: 6 s, 20 beats of the live driver below, however slowly a loaded machine runs it
    monkeypatch.setenv("RESNAS_HEARTBEAT_S", "2")
    storage_url = postgres.create_database("beat")
    storage = open_storage(storage_url, heartbeats=True)
    study = optuna.create_study(study_name="pair", storage=storage, direction="maximize")
    lr = optuna.distributions.FloatDistribution(0.05, 0.2, log=True)
    dead = study.ask({"lr": lr})
    dead.set_user_attr("driver", "otherhost:1:1")
    storage.record_heartbeat(dead._trial_id)
    # its driver died an hour ago: the last beat, in Optuna's table, moved back by that
    # (stale at once, rather than after sleeping through the grace period)
    with storage.engine.begin() as conn:
        conn.execute(sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = heartbeat - "
                                     "INTERVAL '1 hour' WHERE trial_id = :id"),
                     {"id": dead._trial_id})
    alive = study.ask({"lr": lr})
    alive.set_user_attr("driver", "otherhost:2:2")
    stop = threading.Event()

    def keep_beating() -> None:  # the other host's live driver
        while True:
            storage.record_heartbeat(alive._trial_id)
            if stop.wait(0.3):
                return

    beating = threading.Thread(target=keep_beating, daemon=True)
    beating.start()
    try:
        space = tmp_path / "pair.yaml"
        space.write_text(PAIR_SPACE)
        proc = subprocess.run(
            [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage",
             storage_url, "--results", str(tmp_path / "results"), "--trials", "1",
             "--max-concurrent", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, "RESNAS_HEARTBEAT_S": "2"})
    finally:
        stop.set()
        beating.join(timeout=5)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "1 trial(s) left running by a stopped search were marked FAIL" in proc.stderr
    trials = {t.number: t for t in optuna.load_study(
        study_name="pair", storage=open_storage(storage_url)).get_trials()}
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[dead.number].user_attrs["fail_reason"] == "driver stopped"
    assert trials[alive.number].state == TrialState.RUNNING  # its driver still beats
    rerun = [t for t in trials.values() if t.user_attrs.get("retry_of") == dead.number]
    assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE
    assert rerun[0].params == trials[dead.number].params
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_two_drivers_share_one_sqlite_file(tmp_path) -> None:
    """The default storage, a new file that both drivers create at the same moment."""
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    runs = run_two_drivers(storage, tmp_path)
    check_shared_study(storage, runs)


# --- the storage itself, several processes at once ------------------------------------------

RACE = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    import optuna
    from nas.study.storage import open_storage

    url, folder, me, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

    def barrier(name):
        (folder / f"{name}-{me}").touch()
        deadline = time.monotonic() + 120
        while len(list(folder.glob(f"{name}-*"))) < n and time.monotonic() < deadline:
            time.sleep(0.01)

    barrier("open")  # all at once: the tables and the study are created by one of us
    study = optuna.create_study(study_name="race", storage=open_storage(url),
                                load_if_exists=True)
    for i in range(10):
        study.enqueue_trial({"x": float(i)})
    barrier("ask")  # all at once: each queued trial must be taken by one of us only
    numbers = []
    for _ in range(15):
        trial = study.ask()
        trial.suggest_float("x", 0, 100)
        study.tell(trial, 1.0)
        numbers.append(trial.number)
    print(" ".join(map(str, numbers)))
""")


def race(url: str, folder: Path, processes: int = 3) -> None:
    folder.mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", RACE, url, str(folder), str(i),
                               str(processes)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)
             for i in range(processes)]
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for proc in procs:
            stop_group(proc, signal.SIGKILL, wait=5)
    told = [int(n) for out in outputs for n in out.split()]
    assert len(told) == 15 * processes
    assert len(set(told)) == len(told), "a trial was handed to two processes"
    trials = optuna.load_study(study_name="race", storage=open_storage(url)).get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert all(t.state == TrialState.COMPLETE for t in trials)


def test_processes_sharing_a_new_sqlite_file_neither_fail_nor_share_a_trial(tmp_path) -> None:
    race(f"sqlite:///{tmp_path / 'nas.db'}", tmp_path / "sync")


@pytest.mark.slow
def test_processes_sharing_a_new_postgres_database_neither_fail_nor_share_a_trial(
        postgres, tmp_path) -> None:
    race(postgres.create_database("race"), tmp_path / "sync")


def test_a_long_held_sqlite_lock_is_one_line(tmp_path, monkeypatch) -> None:
    import sqlite3

    monkeypatch.setattr(rdb, "SQLITE_TIMEOUT_S", 1)
    url = f"sqlite:///{tmp_path / 'nas.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    holder = sqlite3.connect(tmp_path / "nas.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError) as caught:
            study.ask()
    finally:
        holder.close()
    message = str(caught.value)
    assert "locked" in message and "PostgreSQL" in message and "\n" not in message
    study.tell(study.ask(), 1.0)  # and once the lock is gone, it works


# --- heartbeats and drivers ---------------------------------------------------------------


def test_rdb_storages_record_heartbeats_for_a_search_only(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("RESNAS_HEARTBEAT_S", raising=False)
    storage = open_storage(f"sqlite:///{tmp_path / 'a.db'}", heartbeats=True)
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (60, 180)
    monkeypatch.setenv("RESNAS_HEARTBEAT_S", "2")
    storage = open_storage(f"sqlite:///{tmp_path / 'b.db'}", heartbeats=True)
    assert (storage.get_heartbeat_interval(), storage.grace_period) == (2, 6)
    # opened for a caller's own Optuna code: no heartbeats, so no warning from Study.ask
    plain = open_storage(f"sqlite:///{tmp_path / 'b.db'}")
    assert plain.get_heartbeat_interval() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optuna.create_study(storage=plain).ask()
    journal = open_storage(str(tmp_path / "journal.log"))
    assert not isinstance(journal, optuna.storages.RDBStorage)


SETTINGS = ("RESNAS_HEARTBEAT_S", "RESNAS_STORAGE_WAIT_S")


@pytest.mark.parametrize("name", SETTINGS)
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "soon"])
def test_a_bad_storage_setting_is_one_line(tmp_path, monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(StorageError) as caught:
        open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    message = str(caught.value)
    assert message.startswith(f"{name}='{value}'") and "\n" not in message


@pytest.mark.parametrize("name", SETTINGS)
def test_search_with_a_bad_storage_setting_fails_before_ray(tmp_path, name: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", "--results", str(tmp_path),
         "--storage", f"sqlite:///{tmp_path / 'nas.db'}"], cwd=ROOT, capture_output=True,
        text=True, timeout=120, env={**os.environ, name: "often"})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{name}='often'" in lines[0], proc.stderr
    assert not (tmp_path / "nas.db").exists()


@pytest.mark.parametrize("url", ["postgresql://me:hunter2@127.0.0.1:1/nas",
                                 "postgresql+psycopg2://me:hunter2@127.0.0.1:1/nas"])
def test_a_missing_postgres_driver_names_the_package(monkeypatch, url: str) -> None:
    for module in ("psycopg2", "psycopg"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(StorageError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert "pip install psycopg2-binary" in message and "resnas[postgres]" in message
    assert "hunter2" not in message and "me:***@" in message and "\n" not in message


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    pytest.importorskip("psycopg2")
    with pytest.raises(StorageError) as caught:
        open_storage(f"postgresql://me:hunter2@127.0.0.1:{free_port()}/nas")
    message = str(caught.value)
    assert "cannot open" in message and "hunter2" not in message and "\n" not in message


@pytest.mark.slow
def test_a_pickled_storage_holds_no_password(postgres, monkeypatch) -> None:
    """Ray Tune pickles the search's state (the study with its storage) into tuner.pkl."""
    import pickle

    storage = open_storage(postgres.url())
    saved = pickle.dumps(storage)
    assert PASSWORD.encode() not in saved
    assert pickle.loads(saved).get_all_studies() is not None  # this process may reopen it
    monkeypatch.setattr(rdb, "_PASSWORDS", {})  # another process may not
    with pytest.raises(StorageError, match="holds no password"):
        pickle.loads(saved)
