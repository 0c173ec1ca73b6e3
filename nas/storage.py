"""Where studies live: an SQLAlchemy URL or an Optuna journal file.

Opening is validated up front so a typo in ``--storage`` is one line before
any training starts, and passwords in URLs are masked wherever we print one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from nas.errors import NasError

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///results/nas.db"
SQLITE_TIMEOUT_S = 60  # wait this long on 'database is locked' before failing
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_KNOWN_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql", "cockroachdb")


class StorageError(NasError):
    """A storage URL or journal path that cannot be used."""


def mask(url: str) -> str:
    """The URL with any password replaced by ***, for logs, progress and reports."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def open_storage(storage: str, create: bool = True) -> optuna.storages.BaseStorage:
    """An Optuna storage for a URL (RDB) or a file path (journal).

    With ``create=False`` (commands that only read) a missing SQLite or journal
    file is an error rather than a new empty storage made from a typo.
    """
    import optuna

    if not storage or not storage.strip():
        raise StorageError("--storage is empty; allowed: an SQLAlchemy URL such as "
                           f"{DEFAULT_STORAGE} or a journal file path")
    if is_url(storage):
        return _open_rdb(storage, optuna, create)
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


def _open_rdb(url: str, optuna, create: bool = True) -> optuna.storages.RDBStorage:
    parts = urlsplit(url)
    dialect = parts.scheme.split("+")[0]
    if dialect not in _KNOWN_DIALECTS:
        raise StorageError(f"--storage {mask(url)}: unknown database '{parts.scheme}'; allowed: "
                           f"{', '.join(_KNOWN_DIALECTS)} URLs (e.g. {DEFAULT_STORAGE}) or a "
                           "journal file path")
    engine_kwargs: dict = {}
    if dialect == "sqlite":
        db = url.split(":///", 1)[1] if ":///" in url else ""
        if not db or db == ":memory:":
            raise StorageError(f"--storage {url}: needs a file, e.g. {DEFAULT_STORAGE}")
        if not create and not Path(db).is_file():
            raise StorageError(f"--storage {url}: no such database file")
        _make_parent(Path(db), url)
        # Several processes may write one file: wait on locks instead of failing.
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except ImportError as exc:
        raise StorageError(f"--storage {mask(url)}: the database driver is not installed "
                           f"({exc.name or exc}); pip install it into .venv") from None
    except Exception as exc:  # noqa: BLE001 - connection and URL errors alike
        reason = " ".join(str(exc).split())[:200]
        raise StorageError(f"--storage {mask(url)}: cannot open ({mask(reason)})") from None


def _make_parent(path: Path, shown: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"--storage {mask(shown)}: cannot create folder {path.parent} "
                           f"({exc.strerror})") from None
