"""How the storage layer names and waits for things: URL masking, settings, the error type.

Shared by the storage opener (:mod:`nas.study.storage`) and the RDB wrapper
(:mod:`nas.study.rdb`), so neither imports the other for a constant.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from nas.errors import NasError, option
from nas.names import DEFAULT_STORAGE

HEARTBEAT_ENV = "RESNAS_HEARTBEAT_S"
HEARTBEAT_S = 60  # a running trial's heartbeat is recorded this often
WAIT_ENV = "RESNAS_STORAGE_WAIT_S"
WAIT_S = 120  # a database server that went away is waited for this long
GRACE_BEATS = 3  # and it is stale after this many intervals without one
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
KNOWN_DIALECTS = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql", "cockroachdb")


class StorageError(NasError):
    """A storage URL or journal path that cannot be used."""


def mask(url: str) -> str:
    """The URL with any password replaced by ***, for logs, progress and reports."""
    return re.sub(r"(://[^/:@]*:)[^@/]*@", r"\1***@", url)


def is_url(storage: str) -> bool:
    return bool(_URL.match(storage))


def heartbeat_interval() -> int:
    """Seconds between a running trial's heartbeats: ``RESNAS_HEARTBEAT_S`` or 60."""
    return _seconds_setting(HEARTBEAT_ENV, HEARTBEAT_S)


def server_wait() -> int:
    """Seconds to wait for a database server that went away: ``RESNAS_STORAGE_WAIT_S``."""
    return _seconds_setting(WAIT_ENV, WAIT_S)


def _seconds_setting(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise StorageError(f"{name}={text!r}: not a whole number of seconds; allowed: "
                           f"an integer of 1 or more (default {default})")
    return value


def sqlite_file(url: str) -> Path:
    db = url.split(":///", 1)[1] if ":///" in url else ""
    if not db or db == ":memory:":
        raise StorageError(f"{option('storage')} {mask(url)}: needs a file, e.g. {DEFAULT_STORAGE}")
    return Path(db)


def unknown_database(url: str, scheme: str) -> StorageError:
    return StorageError(f"{option('storage')} {mask(url)}: unknown database '{scheme}'; allowed: "
                        f"{', '.join(KNOWN_DIALECTS)} URLs (e.g. {DEFAULT_STORAGE}) or a "
                        "journal file path")


def make_parent(path: Path, shown: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"{option('storage')} {mask(shown)}: cannot create folder {path.parent} "
                           f"({exc.strerror})") from None
