"""A full disk told apart from other failures, whatever layer reports it; the disk a search
will write, sized from its space."""

from __future__ import annotations

import errno
import sqlite3

import optuna
import pytest
import sqlalchemy

from nas.disk import (
    REPORT_BYTES,
    disk_full,
    free_bytes,
    full_error,
    search_disk_estimate,
    write_bytes,
)
from nas.space import load_space
from nas.study.rdb import open_rdb


def test_a_full_disk_is_known_in_every_shape_and_other_errors_are_not() -> None:
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(RuntimeError("CUDA out of memory"))
    assert not disk_full(None)
    # SQLite's error inside SQLAlchemy's inside Optuna's, as a search meets it
    try:
        try:
            raise sqlalchemy.exc.OperationalError(
                "INSERT", {}, sqlite3.OperationalError("database or disk is full"))
        except sqlalchemy.exc.OperationalError as inner:
            raise optuna.exceptions.StorageInternalError("An exception is raised during "
                                                         "the commit.") from inner
    except optuna.exceptions.StorageInternalError as outer:
        assert disk_full(outer)

    class PgDiskFull(Exception):  # psycopg2.errors.DiskFull carries SQLSTATE 53100
        pgcode = "53100"

    assert disk_full(PgDiskFull("could not write block"))
    # a Ray worker's error reaches the driver as text
    assert disk_full(RuntimeError("OSError: [Errno 28] Error writing bytes to file"))


def test_the_error_names_the_file_the_os_named_else_the_fullest_place(tmp_path) -> None:
    results = tmp_path / "results"
    named = full_error(OSError(errno.ENOSPC, "No space left", str(results / "x.pt")),
                       [("the report", tmp_path / "elsewhere"), ("the results", results)])
    assert named.where.endswith("x.pt") and named.free is not None
    assert str(named).startswith("no space left on the disk of the results: ")
    # no file named: the suspect whose disk has least space free (here /dev/shm's, a tmpfs,
    # against the test folder's; whichever is fuller is the one said)
    fullest = full_error(OSError(errno.ENOSPC, "No space left"),
                         [("the results", results), ("shared memory", "/dev/shm")])
    assert fullest.free == min(free_bytes(results), free_bytes("/dev/shm"))
    assert fullest.what == ("shared memory" if fullest.where == "/dev/shm" else "the results")
    unnamed = full_error(OSError(errno.ENOSPC, "No space left"), [("the study", None)],
                         "sqlite:///nas.db")
    assert unnamed.where == "sqlite:///nas.db" and unnamed.free is None


def test_a_failed_write_leaves_no_file_behind(tmp_path, monkeypatch) -> None:
    target = tmp_path / "report.html"
    target.write_bytes(b"old")

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(target), "write_bytes", full)
    with pytest.raises(OSError):
        write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_the_estimate_grows_with_trials_and_network_size() -> None:
    space = load_space("search_spaces/resnet-digits.yaml")
    few, many = search_disk_estimate(space, 10, 2), search_disk_estimate(space, 100, 2)
    assert REPORT_BYTES < few < many
    per_trial = (many - few) / 90
    # a trial of the default space writes a checkpoint of ~50-500 kB and ~100 kB of logs
    assert 100_000 < per_trial < 2_000_000, per_trial


def test_a_full_sqlite_disk_is_one_error_naming_the_study(tmp_path) -> None:
    storage = open_rdb(f"sqlite:///{tmp_path / 'nas.db'}")
    study = optuna.create_study(storage=storage, study_name="s")

    engine = storage.engine

    @sqlalchemy.event.listens_for(engine, "before_cursor_execute")
    def full(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            raise sqlite3.OperationalError("database or disk is full")

    from nas.errors import DiskFull

    with pytest.raises(DiskFull, match=r"the disk of the study: .*nas\.db"):
        study.set_user_attr("a", 1)
