"""Storages open from URLs and journal paths; bad ones are one clear line."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
from helpers import ROOT

from nas.study import rdb
from nas.study.storage import StorageError, mask, open_storage


def test_sqlite_url_creates_its_folder_and_holds_studies(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'deep' / 'nas.db'}"
    storage = open_storage(url)
    optuna.create_study(study_name="s", storage=storage).optimize(lambda t: 1.0, n_trials=2)
    assert (tmp_path / "deep" / "nas.db").is_file()
    assert len(optuna.load_study(study_name="s", storage=open_storage(url)).trials) == 2


def test_journal_file_path(tmp_path) -> None:
    path = tmp_path / "journal.log"
    storage = open_storage(str(path))
    assert isinstance(storage, optuna.storages.JournalStorage)
    optuna.create_study(study_name="j", storage=storage).optimize(lambda t: 0.5, n_trials=1)
    again = optuna.load_study(study_name="j", storage=open_storage(str(path)))
    assert again.best_value == 0.5


@pytest.mark.parametrize(
    ("storage", "fragment"),
    [
        ("postgre://u@h/db", "unknown database 'postgre'"),
        ("sqlite://", "needs a file"),
        ("sqlite:///:memory:", "needs a file"),
        ("", "is empty"),
        ("mysql+nosuchdriver://u:hunter2@h/db", "mysql"),
    ],
)
def test_bad_storage_is_one_line_without_the_password(storage: str, fragment: str) -> None:
    with pytest.raises(StorageError) as caught:
        open_storage(storage)
    message = str(caught.value)
    assert fragment in message and "\n" not in message
    assert "hunter2" not in message


def test_folder_is_not_a_journal(tmp_path) -> None:
    with pytest.raises(StorageError, match="is a folder"):
        open_storage(str(tmp_path))


def test_mask_hides_passwords_only() -> None:
    assert mask("postgresql://me:s3cret@db:5432/nas") == "postgresql://me:***@db:5432/nas"
    assert mask("sqlite:///results/nas.db") == "sqlite:///results/nas.db"
    assert mask("postgresql://me@db/nas") == "postgresql://me@db/nas"


def test_read_only_commands_do_not_create_storage_from_a_typo(tmp_path) -> None:
    with pytest.raises(StorageError, match="no such database file"):
        open_storage(f"sqlite:///{tmp_path / 'typo' / 'nas.db'}", create=False)
    with pytest.raises(StorageError, match="no such journal file"):
        open_storage(str(tmp_path / "typo.log"), create=False)
    assert not (tmp_path / "typo").exists() and not (tmp_path / "typo.log").exists()


# What `import nas` and opening a storage leave behind in the caller's process: nothing.
# A fresh interpreter, since this test process has long imported everything.
_SIDE_EFFECTS = """
import json, logging, os, sys, warnings
import optuna

def optuna_classes():
    return {f"{cls.__module__}.{cls.__qualname__}": sorted(map(repr, vars(cls).items()))
            for cls in (optuna.storages.RDBStorage, optuna.storages.JournalStorage,
                        optuna.study.Study, optuna.trial.Trial)}

def state():
    return {"filters": [repr(f) for f in warnings.filters], "classes": optuna_classes(),
            "optuna_level": optuna.logging.get_verbosity(), "environ": dict(os.environ),
            "loggers": {n: logging.getLogger(n).level for n in ("", "optuna", "ray")}}

before = state()
import nas
from nas.study.storage import open_storage
folder = sys.argv[1]
for storage in (open_storage(f"sqlite:///{folder}/nas.db"), open_storage(f"{folder}/j.log")):
    study = optuna.create_study(storage=storage)
    with warnings.catch_warnings():  # Optuna's own ask-and-tell, without a warning
        warnings.simplefilter("error")
        study.tell(study.ask(), 1.0)
print(json.dumps(before == state()))
"""


def test_import_and_open_storage_leave_the_callers_process_as_it_was(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-c", _SIDE_EFFECTS, str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "true", proc.stderr[-2000:]


def test_rdb_storage_works_on_in_memory_sqlite() -> None:
    """Built directly (``open_storage`` asks for a file): the tables stay in the one
    connection, as with Optuna's own RDBStorage."""
    storage = rdb.RDBStorage("sqlite:///:memory:")
    study = optuna.create_study(study_name="m", storage=storage, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="m", storage=storage)
    assert len(again.trials) == 3 and again.best_value == max(t.value for t in study.trials)
