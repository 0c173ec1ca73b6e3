"""Where studies live: an SQLAlchemy URL or an Optuna journal file.

Opening is validated up front so a typo in ``--storage`` is one line before
any training starts, and passwords in URLs are masked wherever we print one.

An RDB storage (SQLite, PostgreSQL, MySQL ...) records an Optuna heartbeat for
every running trial, so that another driver can tell a dead driver's trials by
their stale heartbeat (nas.studies.recover_stale_trials). Several drivers may
open one database at once: the first use of an empty database (its tables and
version rows) is retried when another driver creates them at the same moment.
"""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import optuna

from nas.errors import NasError

DEFAULT_STORAGE = "sqlite:///results/nas.db"
SQLITE_TIMEOUT_S = 60  # wait this long on 'database is locked' before failing
HEARTBEAT_ENV = "RESNAS_HEARTBEAT_S"
HEARTBEAT_S = 60  # a running trial's heartbeat is recorded this often
GRACE_BEATS = 3  # and it is stale after this many intervals without one
OPEN_ATTEMPTS = 5  # creating an empty database's tables races with other drivers
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KNOWN_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql", "cockroachdb")
# The pip package that brings each database driver module.
_PIP = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'", "MySQLdb": "mysqlclient",
        "pymysql": "pymysql", "pg8000": "pg8000", "asyncpg": "asyncpg", "cx_Oracle": "cx_Oracle",
        "oracledb": "oracledb", "pyodbc": "pyodbc", "pymssql": "pymssql"}
# What two drivers creating one database's tables at once see: the loser is told so.
_CREATION_RACE = re.compile(r"already exists|duplicate key|unique constraint|"
                            r"UNIQUE constraint failed", re.IGNORECASE)
# SQLAlchemy's additions to a driver's message: a link, and the statement that failed.
_BACKGROUND = re.compile(r"\(Background on this error at: [^)]*\)|\[SQL: [^\]]*\]")


class StorageError(NasError):
    """A storage URL or journal path that cannot be used."""


def mask(url: str) -> str:
    """The URL with any password replaced by ***, for logs, progress and reports."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats: ``RESNAS_HEARTBEAT_S`` or 60."""
    text = os.environ.get(HEARTBEAT_ENV, "").strip()
    if not text:
        return HEARTBEAT_S
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise StorageError(f"{HEARTBEAT_ENV}={text!r}: not a whole number of seconds; allowed: "
                           f"an integer of 1 or more (default {HEARTBEAT_S})")
    return value


def check_storage(storage: str) -> bool:
    """Check ``--storage`` without opening or creating anything; True if there is one to open.

    The URL's form, and for a file (SQLite or journal) that it is not a folder and that its
    folder can be made; a database server is only reached by :func:`open_storage`. Returns
    False for a file that does not exist yet (``nas search`` creates it once every other
    input has been checked), True for an existing file or a server URL.
    """
    if not storage or not storage.strip():
        raise StorageError("--storage is empty; allowed: an SQLAlchemy URL such as "
                           f"{DEFAULT_STORAGE} or a journal file path")
    if is_url(storage):
        scheme = urlsplit(storage).scheme
        if scheme.split("+")[0] not in _KNOWN_DIALECTS:
            raise _unknown_database(storage, scheme)
        heartbeat_interval()
        if scheme.split("+")[0] != "sqlite":
            return True
        path = _sqlite_file(storage)
    else:
        path = Path(storage)
    try:
        if path.is_dir():
            raise StorageError(f"--storage {mask(storage)}: is a folder; allowed: a file path "
                               "or an SQLAlchemy URL")
        if path.exists():
            return True
        folder = path.parent
        while not folder.exists():  # the nearest folder that exists must let us make the rest
            folder = folder.parent
        writable = folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    except OSError as exc:  # e.g. a folder on the way that we may not look into
        raise StorageError(f"--storage {mask(storage)}: cannot use {path} "
                           f"({exc.strerror or exc})") from None
    if not writable:
        raise StorageError(f"--storage {mask(storage)}: cannot create {path}: {folder} is not "
                           "a writable folder")
    return False


def _sqlite_file(url: str) -> Path:
    db = url.split(":///", 1)[1] if ":///" in url else ""
    if not db or db == ":memory:":
        raise StorageError(f"--storage {mask(url)}: needs a file, e.g. {DEFAULT_STORAGE}")
    return Path(db)


def _unknown_database(url: str, scheme: str) -> StorageError:
    return StorageError(f"--storage {mask(url)}: unknown database '{scheme}'; allowed: "
                        f"{', '.join(_KNOWN_DIALECTS)} URLs (e.g. {DEFAULT_STORAGE}) or a "
                        "journal file path")


def open_storage(storage: str, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for a URL (RDB) or a file path (journal).

    With ``create=False`` (commands that only read) a missing SQLite or journal
    file is an error rather than a new empty storage made from a typo.
    """
    if not storage or not storage.strip():
        raise StorageError("--storage is empty; allowed: an SQLAlchemy URL such as "
                           f"{DEFAULT_STORAGE} or a journal file path")
    if is_url(storage):
        return _open_rdb(storage, create)
    path = Path(storage)
    if not create and not path.is_file():
        raise StorageError(f"--storage {storage}: no such journal file")
    if path.is_dir():
        raise StorageError(f"--storage {storage}: is a folder; allowed: a journal file path "
                           "or an SQLAlchemy URL")
    _make_parent(path, storage)
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # noqa: BLE001 - any failure here is a bad path for the user
        raise StorageError(f"--storage {storage}: cannot open journal file ({exc})") from None


def _open_rdb(url: str, create: bool = True) -> optuna.storages.RDBStorage:
    parts = urlsplit(url)
    dialect = parts.scheme.split("+")[0]
    if dialect not in _KNOWN_DIALECTS:
        raise _unknown_database(url, parts.scheme)
    interval = heartbeat_interval()
    engine_kwargs: dict = {}
    if dialect == "sqlite":
        db = _sqlite_file(url)
        if not create and not db.is_file():
            raise StorageError(f"--storage {mask(url)}: no such database file")
        _make_parent(db, url)
        # Several processes may write one file: wait on locks instead of failing.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    else:
        # A server may close connections that sat idle through a long trial: test each
        # one before use rather than fail the next write.
        engine_kwargs["pool_pre_ping"] = True
    engine_url = _with_installed_driver(url) if parts.scheme == "postgresql" else url
    # nas.search records the heartbeats itself (it asks and tells; Optuna warns that its own
    # heartbeat thread runs only in Study.optimize).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used",
                            category=UserWarning)
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        started = time.monotonic()
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    engine_url, engine_kwargs=engine_kwargs, heartbeat_interval=interval,
                    grace_period=GRACE_BEATS * interval)
        except ImportError as exc:
            module = _missing_module(exc)
            package = _PIP.get(module or "", module or "the driver of this URL")
            extra = " (or the 'postgres' extra: pip install 'resnas[postgres]')" \
                if module in ("psycopg2", "psycopg") else ""
            raise StorageError(f"--storage {mask(url)}: the database driver is not installed "
                               f"(no module {module or '?'}); pip install {package} into "
                               f".venv{extra}") from None
        except Exception as exc:  # noqa: BLE001 - connection and URL errors alike
            reason = " ".join(_BACKGROUND.sub("", str(exc)).split())
            # SQLite reports a lock it cannot wait for (not one it waited on) at once.
            locked = "database is locked" in reason and time.monotonic() - started < 5
            if attempt < OPEN_ATTEMPTS and (locked or _CREATION_RACE.search(reason)):
                # Another driver is creating the same tables right now; they exist next time.
                time.sleep(0.2 + random.random() * attempt)
                continue
            raise StorageError(f"--storage {mask(url)}: cannot open "
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

    def __init__(self, url: str, *args, **kwargs) -> None:
        super().__init__(url, *args, **kwargs)
        if self.url != mask(self.url):
            _PASSWORDS[mask(self.url)] = self.url
        self._after_engine()

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["url"] = mask(self.url)
        return state

    def __setstate__(self, state: dict) -> None:
        url = _PASSWORDS.get(state["url"])
        if url is None and ":***@" in state["url"]:
            raise StorageError(f"--storage {state['url']}: a saved copy of this storage holds "
                               "no password; open it again from its URL")
        super().__setstate__({**state, "url": url or state["url"]})
        self._after_engine()

    def _after_engine(self) -> None:
        if self.engine.dialect.name == "sqlite":
            _serialize_transactions(self.engine, mask(self.url))


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
            raise StorageError(f"--storage {url}: the database stayed locked by another process "
                               f"for {SQLITE_TIMEOUT_S} s; for several drivers at once use "
                               "PostgreSQL (--storage postgresql://...)")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "handle_error", on_error)
    engine.dispose()  # connections made while the tables were created lack on_connect


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


def _make_parent(path: Path, shown: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"--storage {mask(shown)}: cannot create folder {path.parent} "
                           f"({exc.strerror})") from None
