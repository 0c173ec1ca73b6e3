"""RecentTPESampler: Optuna's TPE exactly up to ``history`` trials, then a window of them."""

from __future__ import annotations

import optuna
import pytest

from nas.study.tpe_sampler import BEST_KEPT, RecentTPESampler


def _search(sampler: optuna.samplers.BaseSampler, trials: int, storage: str | None = None
            ) -> tuple[optuna.Study, list[tuple[float, str]]]:
    """A small real search (told as the search driver tells: ask, then tell)."""
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    drawn = []
    for _ in range(trials):
        trial = study.ask()
        x = trial.suggest_float("x", -3.0, 3.0)
        block = trial.suggest_categorical("block", ["basic", "bottleneck"])
        study.tell(trial, -(x - 1.0) ** 2 + (block == "basic"))
        drawn.append((x, block))
    return study, drawn


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_up_to_its_history_it_samples_as_optunas_tpe(tmp_path) -> None:
    _, optunas = _search(optuna.samplers.TPESampler(seed=3), 45)
    _, in_memory = _search(RecentTPESampler(seed=3, history=45), 45)
    _, in_sqlite = _search(RecentTPESampler(seed=3, history=45), 45,
                           f"sqlite:///{tmp_path / 's.db'}")
    assert in_memory == optunas and in_sqlite == optunas


def test_past_its_history_it_sees_the_best_and_the_most_recent_trials(tmp_path) -> None:
    history = BEST_KEPT + 5
    _, optunas = _search(optuna.samplers.TPESampler(seed=3), 60)
    sampler = RecentTPESampler(seed=3, history=history)
    study, ours = _search(sampler, 60, f"sqlite:///{tmp_path / 's.db'}")
    assert ours[:history + 1] == optunas[:history + 1] and ours != optunas
    # The SQL feed, kept up to date trial by trial, holds what listing the study gives.
    _, listed = _search(RecentTPESampler(seed=3, history=history), 60)
    assert listed == ours
    [feed] = sampler._feeds.values()
    trials = study.get_trials()
    sampler._view(study, study.ask())  # the window the next trial is sampled from
    older = sorted(trials[:-5], key=lambda t: (-t.value, t.number))[:BEST_KEPT]
    assert [t.number for t in feed.trials if t.state.is_finished()] == sorted(
        [t.number for t in older] + [t.number for t in trials[-5:]])


def test_a_history_it_cannot_keep_is_refused() -> None:
    with pytest.raises(ValueError, match="history"):
        RecentTPESampler(history=BEST_KEPT)
