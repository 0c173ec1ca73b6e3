"""The dashboard's notes and depth figure, written on their own thread (no trials run)."""

from __future__ import annotations

import json
import logging
import threading

import optuna
from optuna_dashboard import get_note

from nas.report import DEPTH_FIGURE_ID
from nas.tuning.dashboard import DashboardWriter


def _told(study: optuna.Study, useful: int) -> optuna.Trial:
    trial = study.ask()
    for key, value in (("useful_layers", useful), ("total_layers", 20),
                       ("useful_layers_interval", [useful, 20])):
        trial.set_user_attr(key, value)
    study.tell(trial, 0.9)
    return trial


def _figure_points(study: optuna.Study) -> list[int]:
    """The useful depths the stored depth figure draws, one per trial."""
    attrs = study._storage.get_study_system_attrs(study._study_id)  # noqa: SLF001
    key = f"dashboard:plot_data:{DEPTH_FIGURE_ID}"
    chunks = sorted(k for k in attrs if k.startswith(key))
    figure = json.loads("".join(attrs[k] for k in chunks))
    [trials] = [trace for trace in figure["data"] if trace.get("name") == "trials"]
    return sorted(trials["y"])


def test_notes_and_the_figure_are_written_off_the_callers_thread(monkeypatch) -> None:
    study = optuna.create_study(direction="maximize")
    writers: set[str] = set()
    import optuna_dashboard

    save = optuna_dashboard.save_note

    def recorded(trial, markdown):
        writers.add(threading.current_thread().name)
        save(trial, markdown)

    monkeypatch.setattr(optuna_dashboard, "save_note", recorded)
    # A redraw interval no test outlives: the first figure is drawn at once, later
    # changes only when the writer closes.
    writer = DashboardWriter(study, redraw_seconds=3600)
    trials = [_told(study, useful) for useful in (8, 12, 16)]
    for trial in trials:
        writer.note(trial, f"## Trial {trial.number}")
        writer.depth_changed()
    writer.close()
    assert writers == {"resnas-dashboard"}
    assert [get_note(t) for t in trials] == ["## Trial 0", "## Trial 1", "## Trial 2"]
    assert _figure_points(study) == [8, 12, 16]  # the last redraw holds every trial


def test_a_failing_write_is_one_warning_and_the_writer_goes_on(monkeypatch, caplog) -> None:
    study = optuna.create_study(direction="maximize")
    import optuna_dashboard

    def full(trial, markdown):
        raise OSError("No space left on device")

    monkeypatch.setattr(optuna_dashboard, "save_note", full)
    writer = DashboardWriter(study)
    with caplog.at_level(logging.WARNING, logger="nas"):
        for useful in (4, 6):
            trial = _told(study, useful)
            writer.note(trial, "note")
            writer.depth_changed()
        writer.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "nas.tuning.dashboard"]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert _figure_points(study) == [4, 6]  # the figure was still drawn
