"""The dashboard's notes and depth figure, written on their own thread (no trials run)."""

from __future__ import annotations

import json
import logging
import threading

import optuna
from optuna_dashboard import get_note

import nas.report.info
from nas.report import DEPTH_FIGURE_ID
from nas.report.info import DepthPoint, depth_point
from nas.tuning.dashboard import DashboardWriter


def _told(study: optuna.Study, useful: int) -> tuple[optuna.Trial, DepthPoint]:
    """A complete analysed trial, and the point the searcher hands the writer for it."""
    trial = study.ask()
    attrs = {"useful_layers": useful, "total_layers": 20, "useful_layers_interval": [useful, 20]}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("candidate", {"block": "basic", "shortcut": "identity"})
    study.tell(trial, 0.9)
    return trial, depth_point(trial.number, attrs, 0.9, "basic/identity")


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
    told = [_told(study, useful) for useful in (8, 12, 16)]
    trials = [trial for trial, _ in told]
    for trial, point in told:
        writer.note(trial, f"## Trial {trial.number}")
        writer.depth_changed(point)
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
            trial, point = _told(study, useful)
            writer.note(trial, "note")
            writer.depth_changed(point)
        writer.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "nas.tuning.dashboard"]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert _figure_points(study) == [4, 6]  # the figure was still drawn


def test_the_study_is_read_once_and_each_told_trial_adds_its_point(monkeypatch,
                                                                  tmp_path) -> None:
    """A redraw costs the same at 10,000 trials as at 10: it draws the points it holds."""
    study = optuna.create_study(direction="maximize", storage=f"sqlite:///{tmp_path / 's.db'}")
    before = [_told(study, useful) for useful in (5, 7)]  # a resumed study's trials
    reads = []
    read = nas.report.info.depth_points
    monkeypatch.setattr(nas.report.info, "depth_points",
                        lambda view: reads.append(view) or read(view))
    writer = DashboardWriter(study, redraw_seconds=0)  # a redraw after every trial
    for useful in (9, 11, 13):
        writer.depth_changed(_told(study, useful)[1])
    writer.close()
    assert len(reads) == 1 and reads[0].lean  # read once, through SQL
    assert _figure_points(study) == [5, 7, 9, 11, 13]
    assert before[0][1] == {"trial": 0, "nominal": 20, "useful": 5, "useful_low": 5,
                            "useful_high": 20, "accuracy": 0.9, "label": "basic/identity"}
