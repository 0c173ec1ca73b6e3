"""`nas studies` counts in SQL: the same counts and best value as reading every trial."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState

from nas.study import _optuna
from nas.study._optuna import study_summaries
from nas.study.queries import (
    best_value,
    count_finished,
    count_finished_in,
    is_finished,
    state_counts,
)
from nas.study.recovery import RETRIED
from nas.study.storage import open_storage

X = optuna.distributions.FloatDistribution(0.0, 1.0)


def _fill(study: optuna.Study, values: list[float | tuple | None]) -> None:
    """One trial per item: a value completes it, None leaves it running; then one pruned,
    one failed and one waiting."""
    for value in values:
        trial = study.ask({"x": X})
        if value is not None:
            study.tell(trial, value)
    study.tell(study.ask({"x": X}), state=TrialState.PRUNED)
    study.tell(study.ask({"x": X}), state=TrialState.FAIL)
    study.enqueue_trial({"x": 0.5})


def test_sql_counts_equal_counting_every_trial(tmp_path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    up = optuna.create_study(study_name="up", storage=storage, direction="maximize")
    _fill(up, [0.5, 0.9, None, 0.7, math.inf])  # an infinite value is no accuracy
    down = optuna.create_study(study_name="down", storage=storage, direction="minimize")
    _fill(down, [0.5, 0.2, 0.3])
    two = optuna.create_study(study_name="two", storage=storage,
                              directions=["maximize", "minimize"])
    _fill(two, [(0.8, 10.0), (0.95, 90.0), (0.6, 1.0)])
    optuna.create_study(study_name="empty", storage=storage)

    summaries = study_summaries(storage)
    assert set(summaries) == {"up", "down", "two", "empty"}
    for name, (counts, best) in summaries.items():
        study = optuna.load_study(study_name=name, storage=storage)
        expected = {k: v for k, v in state_counts(study.get_trials()).items() if v}
        assert counts == expected, name
        if name != "up":  # Optuna's best counts the infinite value; an accuracy cannot be
            assert best == best_value(study), name
    assert summaries["up"][1] == 0.9
    assert summaries["two"][1] == 0.95 and summaries["down"][1] == 0.2
    assert summaries["empty"] == ({}, None)


def test_a_journal_file_has_no_sql(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "journal.log"))
    assert study_summaries(storage) is None


def test_counting_queries_equal_counting_every_trial(tmp_path) -> None:
    """What the search counts once per start: finished trials (less those the search, not
    their candidate, failed) and every trial; and the running ones it may recover."""
    storage = open_storage(f"sqlite:///{tmp_path / 'nas.db'}")
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    other = optuna.create_study(study_name="other", storage=storage)
    _fill(other, [0.1, None])  # never counted with "s"
    _fill(study, [0.5, None, 0.7])
    for reason in (*RETRIED, "diverged", None):
        trial = study.ask({"x": X})
        if reason is not None:
            trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=TrialState.FAIL)
    trials = study.get_trials()
    assert count_finished(study) == sum(is_finished(t) for t in trials) == 6
    assert count_finished_in(storage, "s") == 6 and count_finished_in(storage, "none") == 0
    assert _optuna.count_trials(storage, _optuna.study_id(study)) == len(trials)
    assert [t.number for t in _optuna.running_trials(study)] == [
        t.number for t in trials if t.state == TrialState.RUNNING]
