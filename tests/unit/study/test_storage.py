"""Storages open from URLs and journal paths; bad ones are one clear line."""

from __future__ import annotations

import optuna
import pytest

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
