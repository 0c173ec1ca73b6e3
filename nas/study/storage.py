"""Where studies live: an SQLAlchemy URL or an Optuna journal file.

Opening is validated up front so a typo in ``--storage`` is one line before
any training starts, and passwords in URLs are masked wherever we print one.

An RDB storage (SQLite, PostgreSQL, MySQL ...) opened for a search records an Optuna
heartbeat for every running trial, so that another driver can tell a dead driver's trials by
their stale heartbeat (nas.study.recovery.recover_stale_trials). Several drivers
may open one database at once, and a database server that goes away mid-search
is waited for: both are :mod:`nas.study.rdb`'s job.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import optuna

from nas.errors import option
from nas.files import nearest_existing
from nas.names import DEFAULT_RESULTS, DEFAULT_STORAGE
from nas.study.config import (
    KNOWN_DIALECTS,
    StorageError,
    heartbeat_interval,
    is_url,
    make_parent,
    mask,
    server_wait,
    sqlite_file,
    unknown_database,
)
from nas.study.rdb import open_rdb

__all__ = ["StorageError", "check_storage", "is_url", "mask", "open_storage",
           "storage_for_search"]


def check_storage(storage: str) -> bool:
    """Check ``--storage`` without opening or creating anything; True if there is one to open.

    The URL's form, and for a file (SQLite or journal) that it is not a folder and that its
    folder can be made; a database server is only reached by :func:`open_storage`. Returns
    False for a file that does not exist yet (``nas search`` creates it once every other
    input has been checked), True for an existing file or a server URL.
    """
    if not storage or not storage.strip():
        raise _empty()
    if is_url(storage):
        scheme = urlsplit(storage).scheme
        if scheme.split("+")[0] not in KNOWN_DIALECTS:
            raise unknown_database(storage, scheme)
        heartbeat_interval()
        server_wait()
        if scheme.split("+")[0] != "sqlite":
            return True
        path = sqlite_file(storage)
    else:
        path = Path(storage)
    try:
        if path.is_dir():
            raise StorageError(f"{option('storage')} {mask(storage)}: is a folder; allowed: a "
                               "file path or an SQLAlchemy URL")
        if path.exists():
            return True
        folder = nearest_existing(path.parent)  # it must let us make the rest
        writable = folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    except OSError as exc:  # e.g. a folder on the way that we may not look into
        raise StorageError(f"{option('storage')} {mask(storage)}: cannot use {path} "
                           f"({exc.strerror or exc})") from None
    if not writable:
        raise StorageError(f"{option('storage')} {mask(storage)}: cannot create {path}: "
                           f"{folder} is not "
                           "a writable folder")
    return False


def open_storage(storage: str, create: bool = True,
                 heartbeats: bool = False) -> optuna.storages.BaseStorage:
    """An Optuna storage for a URL (RDB) or a file path (journal).

    With ``create=False`` (commands that only read) a missing SQLite or journal
    file is an error rather than a new empty storage made from a typo.
    ``heartbeats=True`` (a search) has an RDB storage record running trials'
    heartbeats; off by default, so a storage opened for a caller's own Optuna code
    behaves as Optuna's own.
    """
    if not storage or not storage.strip():
        raise _empty()
    if is_url(storage):
        return open_rdb(storage, create, heartbeats)
    path = Path(storage)
    if not create and not path.is_file():
        raise StorageError(f"{option('storage')} {storage}: no such journal file")
    if path.is_dir():
        raise StorageError(f"{option('storage')} {storage}: is a folder; allowed: a journal "
                           "file path or an SQLAlchemy URL")
    make_parent(path, storage)
    from optuna.storages.journal import JournalFileBackend

    try:
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except Exception as exc:  # noqa: BLE001 - any failure here is a bad path for the user
        raise StorageError(f"{option('storage')} {storage}: cannot open journal file "
                           f"({exc})") from None


def _empty() -> StorageError:
    return StorageError(f"{option('storage')} is empty; allowed: an SQLAlchemy URL such as "
                        f"{DEFAULT_STORAGE} or a journal file path")


def storage_for_search(storage: str | None, results: str) -> str:
    """The storage a search uses: ``--storage`` as given (an empty one is an error that
    :func:`check_storage` reports), else an SQLite file beside the results when
    ``--results`` names another local folder, else the default."""
    if storage is not None:
        return storage
    if results != DEFAULT_RESULTS and not is_url(results):
        return f"sqlite:///{Path(results) / 'nas.db'}"
    return DEFAULT_STORAGE
