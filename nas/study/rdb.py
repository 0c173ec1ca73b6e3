"""Optuna's RDBStorage made safe for long searches and several drivers.

What it adds: the password never reaches a pickle (Ray Tune pickles what the
search holds), a database server that goes away is waited for
(``RESNAS_STORAGE_WAIT_S``) and said once when it goes and once when it is
back, SQLite transactions take the write lock when they begin (so two drivers
on one file never take the same trial), and the first use of an empty database
is retried when another driver creates its tables at the same moment.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
import warnings
from typing import Any
from urllib.parse import urlsplit

import optuna

from nas.disk import disk_full, full_error
from nas.errors import DiskFull, one_line, option
from nas.study._optuna import RDB_PRIVATE_CALLS
from nas.study.config import (
    GRACE_BEATS,
    KNOWN_DIALECTS,
    WAIT_ENV,
    StorageError,
    heartbeat_interval,
    make_parent,
    mask,
    server_wait,
    sqlite_file,
    unknown_database,
)

SQLITE_TIMEOUT_S = 60  # wait this long on 'database is locked' before failing
OPEN_ATTEMPTS = 5  # creating an empty database's tables races with other drivers
# The pip package that brings each database driver module.
_PIP = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'", "MySQLdb": "mysqlclient",
        "pymysql": "pymysql", "pg8000": "pg8000", "asyncpg": "asyncpg", "cx_Oracle": "cx_Oracle",
        "oracledb": "oracledb", "pyodbc": "pyodbc", "pymssql": "pymssql"}

# What two drivers creating one database's tables at once see: the loser is told so.
_CREATION_RACE = re.compile(r"already exists|duplicate key|unique constraint|"
                            r"UNIQUE constraint failed", re.IGNORECASE)

# SQLAlchemy's additions to a driver's message: a link, and the statement that failed.
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)|\[SQL: [^\]]*\]")


def open_rdb(url: str, create: bool = True,
             heartbeats: bool = False) -> optuna.storages.RDBStorage:
    """The storage at an SQLAlchemy ``url``, with heartbeats where a search needs them.

    ``heartbeats``: record a heartbeat for each running trial (RESNAS_HEARTBEAT_S), so that
    another driver can tell a dead driver's trials. Only a search asks for them: with them
    on, Optuna's own ``Study.ask`` warns and ``Study.optimize`` fails stale trials, which a
    caller who opened the storage for their own Optuna code did not ask for.
    """
    parts = urlsplit(url)
    dialect = parts.scheme.split("+")[0]
    if dialect not in KNOWN_DIALECTS:
        raise unknown_database(url, parts.scheme)
    interval = heartbeat_interval()
    beats = {"heartbeat_interval": interval, "grace_period": GRACE_BEATS * interval} \
        if heartbeats else {}
    server_wait()
    engine_kwargs: dict = {}
    if dialect == "sqlite":
        db = sqlite_file(url)
        if not create and not db.is_file():
            raise StorageError(f"{option('storage')} {mask(url)}: no such database file")
        make_parent(db, url)
        # Several processes may write one file: wait on locks instead of failing.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        # A server may close connections that sat idle through a long trial: test each
        # one before use rather than fail the next write.
        engine_kwargs["pool_pre_ping"] = True
    engine_url = _with_installed_driver(url) if parts.scheme == "postgresql" else url
    # nas.tuning records the heartbeats itself and never calls Study.ask (whose warning that
    # Optuna's own heartbeat thread runs only in Study.optimize would then show): no
    # process-wide filter for it, so a caller's own Optuna code still sees its warnings.
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        started = time.monotonic()
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(engine_url, engine_kwargs=engine_kwargs,
                                     shown=mask(url), **beats)
        except ImportError as exc:
            module = _missing_module(exc)
            package = _PIP.get(module or "", module or "the driver of this URL")
            extra = " (or the 'postgres' extra: pip install 'resnas[postgres]')" \
                if module in ("psycopg2", "psycopg") else ""
            raise StorageError(f"{option('storage')} {mask(url)}: the database driver is not "
                               f"installed (no module {module or '?'}); pip install {package} into "
                               f".venv{extra}") from None
        except Exception as exc:  # noqa: BLE001 - connection and URL errors alike
            reason = one_line(_BACKGROUND.sub("", str(exc)))
            # SQLite reports a lock it cannot wait for (not one it waited on) at once.
            locked = "database is locked" in reason and time.monotonic() - started < 5
            if attempt < OPEN_ATTEMPTS and (locked or _CREATION_RACE.search(reason)):
                # Another driver is creating the same tables right now; they exist next time.
                time.sleep(0.2 + random.random() * attempt)
                continue
            raise StorageError(f"{option('storage')} {mask(url)}: cannot open "
                               f"({mask(reason[:200])})") from None
        return storage
    raise AssertionError("not reached")


_PASSWORDS: dict[str, str] = {}  # masked URL -> URL, in this process only


class RDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage that never writes its password, and serializes SQLite.

    Ray Tune pickles what the search holds (the study, so its storage) into
    ``results/<study>/tune/run-*/tuner.pkl``: pickled, the storage keeps the URL
    with its password masked, and only this process can open it again.
    """

    def __init__(self, url: str, *args, shown: str | None = None, **kwargs) -> None:
        super().__init__(url, *args, **kwargs)
        # in messages: the URL as the user wrote it (not with the driver we chose), masked
        self.shown = shown or mask(url)
        if self.url != mask(self.url):
            _PASSWORDS[mask(self.url)] = self.url
        self._after_engine()

    def set_trial_user_attrs(self, trial_id: int, attrs: dict[str, Any]) -> None:
        """Several user attributes of a trial in one transaction: a trial's end writes
        twenty, and a commit each made the driver's cost per trial grow with the file."""
        from nas.study._optuna import write_user_attrs

        self._retry_call("set_trial_user_attrs", write_user_attrs, self, trial_id, attrs)

    def _retry(self, method: str, *args, **kwargs):
        """Call Optuna's ``method``, waiting out a database server that went away."""
        return self._retry_call(method, getattr(super(), method), *args, **kwargs)

    def _retry_call(self, method: str, call, *args, **kwargs):
        """``call``, waiting out a database server that went away (``method`` names it)."""
        deadline = None
        while True:
            try:
                result = call(*args, **kwargs)
            except optuna.exceptions.UpdateFinishedTrialError:
                if deadline is None or method != "set_trial_state_values":
                    raise
                result = True  # the attempt the connection broke under had committed it
            except Exception as exc:
                if disk_full(exc):  # waiting does not free space: stop, say where
                    raise self._disk_full(exc) from None
                reason = _connection_lost(exc) if self.engine.dialect.name != "sqlite" else None
                if reason is None:
                    raise
                now = time.monotonic()
                if deadline is None:
                    wait = server_wait()
                    deadline = now + wait
                    _OUTAGE.begin(self.shown, reason, wait)
                if now >= deadline:
                    raise StorageError(
                        f"{option('storage')} {self.shown}: unreachable for {wait} s "
                        f"({reason}); what the study holds is kept: run the same command again "
                        f"once the server is back (or wait longer with {WAIT_ENV})") from None
                time.sleep(min(2.0, deadline - now))
                continue
            if deadline is not None or _OUTAGE.since is not None:
                # Back for this call, so back: said once, whichever thread (the search's,
                # its heartbeat's, the dashboard writer's) met the outage first.
                _OUTAGE.end(self.shown)
            return result

    def _disk_full(self, exc: BaseException) -> DiskFull:
        if self.engine.dialect.name == "sqlite":
            return full_error(exc, [("the study", self.engine.url.database)])
        return DiskFull("the study", f"the database server of {self.shown}")

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["url"] = mask(self.url)
        return state

    def __setstate__(self, state: dict) -> None:
        url = _PASSWORDS.get(state["url"])
        if url is None and ":***@" in state["url"]:
            raise StorageError(f"{option('storage')} {state['url']}: a saved copy of this "
                               "storage holds no password; open it again from its URL")
        super().__setstate__({**state, "url": url or state["url"]})
        self._after_engine()

    def _after_engine(self) -> None:
        # An in-memory database lives in its one connection and one process: nothing to
        # serialize, and the engine must keep the connection that holds the tables.
        if self.engine.dialect.name == "sqlite" and not _in_memory(self.engine.url):
            _serialize_transactions(self.engine, mask(self.url))


# Every call that reads or writes the database; Optuna's other calls are built on these.
# A write whose commit reached the server just as the connection broke is sent again: an
# update by id is then harmless and finishing a trial twice is taken as done; only a trial
# created in that very instant would be created twice.
_RETRIED = ("create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
            "get_study_id_from_name", "get_study_name_from_id", "get_study_directions",
            "get_study_user_attrs", "get_study_system_attrs", "get_all_studies",
            "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
            "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
            "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials",
            "get_best_trial", "get_trial_user_attrs", "get_trial_system_attrs",
            "record_heartbeat", *RDB_PRIVATE_CALLS)


def _retried(name: str):
    original = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(original)
    def call(self: RDBStorage, *args, **kwargs):
        return self._retry(name, *args, **kwargs)

    return call


for _name in _RETRIED:
    if hasattr(optuna.storages.RDBStorage, _name):
        setattr(RDBStorage, _name, _retried(_name))


def _connection_lost(exc: BaseException) -> str | None:
    """Why the connection to a database server failed, or None for any other error.

    Optuna wraps SQLAlchemy's errors in its own; the driver's error is down the chain.
    """
    from sqlalchemy import exc as sa

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        lost = isinstance(exc, sa.OperationalError | sa.InterfaceError)
        if isinstance(exc, sa.DBAPIError) and (lost or exc.connection_invalidated):
            text = one_line(_BACKGROUND.sub("", str(exc.orig or exc)))
            return mask(text[:200]) or type(exc.orig or exc).__name__
        exc = exc.__cause__ or exc.__context__
    return None


# Library code writes nothing to stderr itself: a search forwards this logger to its
# progress channel (nas.tuning.progress.forward_logs), and elsewhere Python's last-resort
# handler prints the line as it is, unless the caller configured logging.
_log = logging.getLogger(__name__)


class _Outage:
    """Says once when a database server went away, and once when it is back."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None

    def begin(self, url: str, reason: str, wait: int) -> None:
        with self.lock:
            if self.since is None:
                self.since = time.monotonic()
                _log.warning("nas: storage %s unreachable (%s); waiting up to %s s for it",
                             url, reason, wait)

    def end(self, url: str) -> None:
        with self.lock:
            if self.since is not None:
                _log.warning("nas: storage %s reachable again after %.0f s", url,
                             time.monotonic() - self.since)
                self.since = None


_OUTAGE = _Outage()


def _serialize_transactions(engine, url: str) -> None:
    """SQLite transactions that take the write lock when they begin.

    Python's sqlite3 begins a transaction only at its first write, so Optuna's
    read-then-update steps (taking a queued trial, finishing one) do their read
    outside any lock: two drivers on one file can then both take the same queued
    trial, and a transaction that upgrades its read lock while another holds the
    write lock fails at once with 'database is locked' instead of waiting. With
    BEGIN IMMEDIATE each transaction waits (up to SQLITE_TIMEOUT_S) for the lock
    and then runs alone: on one file, Optuna's steps are as atomic as on a server.
    A lock held longer than that is one line, not a traceback from inside Optuna.
    """
    import sqlite3

    from sqlalchemy import event

    def on_connect(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 begins nothing; on_begin does

    def on_begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    def on_error(context) -> None:
        error = context.original_exception
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
            raise StorageError(f"{option('storage')} {url}: the database stayed locked by "
                               f"another process for {SQLITE_TIMEOUT_S} s; for several drivers "
                               f"at once use PostgreSQL ({option('storage')} postgresql://...)")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "handle_error", on_error)
    engine.dispose()  # connections made while the tables were created lack on_connect


def _in_memory(url) -> bool:
    """Whether an SQLAlchemy SQLite URL names an in-memory database."""
    database = url.database or ""
    return database in ("", ":memory:") or (
        database.startswith("file:") and "mode=memory" in database) or \
        url.query.get("mode") == "memory"


def _with_installed_driver(url: str) -> str:
    """``postgresql://`` with whichever driver is installed.

    SQLAlchemy's default driver for a bare ``postgresql://`` is psycopg2 up to
    2.0 and psycopg (3) from 2.1; the ``postgres`` extra installs psycopg2. With
    neither installed, the error names psycopg2, the extra's.
    """
    from importlib.util import find_spec

    import sqlalchemy

    default = "psycopg" if _version(sqlalchemy.__version__) >= (2, 1) else "psycopg2"
    for module in (default, "psycopg2", "psycopg"):
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if found:
            return f"postgresql+{module}" + url[len("postgresql"):]
    return "postgresql+psycopg2" + url[len("postgresql"):]  # fails naming the extra's driver


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def _missing_module(exc: ImportError) -> str | None:
    """The top-level module that failed to import (SQLAlchemy wraps the driver's error)."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
    name = cause.name or exc.name
    return name.split(".")[0] if name else None
