"""The displays of a running search, fed events by hand (the real searches are in
tests/scenarios/test_live_table.py and the report's JSON test)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from nas.candidate import Candidate
from nas.errors import NasError
from nas.tuning.options import make_progress
from nas.tuning.progress import (
    JsonProgress,
    LineProgress,
    QuietProgress,
    SearchStart,
    TrialEnd,
    forward_logs,
)

CANDIDATE = {"block": "preact", "shortcut": "rezero", "blocks_per_stage": [2, 3, 4], "width": 16}
START = SearchStart("s", budget=3, epochs=5, dataset="digits", concurrent=2,
                    per_trial="1 CPU", pruner="median", sampler="tpe")


def _run(progress) -> None:
    progress.search_started(START)
    progress.trial_started(0, CANDIDATE)
    progress.epoch(0, 1, 0.5)
    progress.epoch(0, 2, 0.75)
    progress.trial_ended(TrialEnd(0, "complete", 5, val_accuracy=0.75, values=(0.75,),
                                  details={"useful_layers": 12, "total_layers": 20}))
    progress.search_finished(1, False)
    progress.close()


def test_lines_say_what_runs_at_most_every_heartbeat() -> None:
    out = io.StringIO()
    _run(LineProgress(out=out, heartbeat=0.0))  # every epoch is past the heartbeat
    lines = out.getvalue().splitlines()
    assert lines[0] == ("searching 3 trial(s) of 's' (digits, up to 5 epochs each, 2 at a "
                        "time, 1 CPU per trial; pruner median, sampler tpe)")
    assert lines[1].startswith("running: trial 0 epoch 1/5 val 50.00% | 0/3 finished")
    assert lines[2].startswith("running: trial 0 epoch 2/5 val 75.00%")
    assert lines[3] == ("trial   0 complete (12 of 20 layers useful) val 75.00% | running 0, "
                        "complete 1, pruned 0, failed 0 | best 75.00% (trial 0)")
    quiet = io.StringIO()
    _run(LineProgress(out=quiet))  # the default 30 s: no heartbeat in a fast run
    assert [line for line in quiet.getvalue().splitlines() if line.startswith("running")] == []


def test_one_owner_counts_every_kind_and_words_each_end() -> None:
    """The searcher only reports how a trial ended; the display counts and words it, and
    a retried trial is neither failed nor finished."""
    progress = LineProgress(out=io.StringIO())
    progress.search_started(SearchStart("s", 5, 3, "digits", 1, "1 CPU", "median", "tpe",
                                        front=((7, (0.9,)),)))  # a resumed study's best
    ends = [TrialEnd(8, "pruned", 1, val_accuracy=0.2),
            TrialEnd(9, "failed", 2, val_accuracy=float("nan"), reason="diverged"),
            TrialEnd(10, "retried", 1, reason="lost its worker"),
            TrialEnd(11, "complete", 3, val_accuracy=0.95, values=(0.95,)),
            TrialEnd(12, "complete", 3, val_accuracy=0.95, values=(0.95,))]
    lines = []
    for end in ends:
        progress.trial_ended(end)
        lines.append(progress.end_line(end))  # the line as the display just showed it
    assert lines[0].startswith("trial   8 pruned at epoch 1 val 20.00% | running 0, "
                               "complete 0, pruned 1, failed 0 | best 90.00% (trial 7)")
    assert lines[1].startswith("trial   9 failed (diverged) | ")  # no val for a NaN
    assert lines[2].startswith("trial  10 lost its worker; will be retried | ")
    assert progress.counts == {"complete": 2, "pruned": 1, "failed": 1}
    assert progress.finished() == 4
    assert progress.best_text() == " | best 95.00% (trial 11)"  # the first of the best


def test_a_two_objective_search_tracks_its_pareto_front() -> None:
    progress = QuietProgress()
    progress.search_started(SearchStart("s", 4, 3, "digits", 1, "1 CPU", "none", "nsga2",
                                        objectives=2, front=((0, (0.9, 20.0)),)))
    for number, values in ((1, (0.95, 30.0)), (2, (0.85, 25.0)), (3, (0.96, 20.0))):
        progress.trial_ended(TrialEnd(number, "complete", 3, values=values))
    # (0.96, 20) dominates trials 0 and 1; trial 2 was dominated when it came
    assert progress.front == [(3, (0.96, 20.0))]
    progress.trial_ended(TrialEnd(4, "complete", 3, values=(0.5, 10.0)))
    assert sorted(n for n, _ in progress.front) == [3, 4]
    assert progress.best_text() == " | Pareto front 2 trial(s)"


def test_json_is_one_object_per_event() -> None:
    out = io.StringIO()
    _run(JsonProgress(out=out))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["search_started", "trial_started", "epoch", "epoch",
                                            "complete", "search_finished"]
    assert events[1]["candidate"] == CANDIDATE
    assert events[3] == {**events[3], "trial": 0, "epoch": 2, "val_accuracy": 0.75}
    assert events[4]["useful_layers"] == 12 and events[4]["epochs"] == 5
    assert events[5]["complete"] == 1 and events[5]["ran"] == 1


def test_quiet_shows_nothing_and_candidates_read_short(capsys) -> None:
    _run(QuietProgress())
    assert capsys.readouterr() == ("", "")
    assert Candidate.from_dict(CANDIDATE).describe(compact=True) == "preact/rezero 2x3x4 w16"
    plain = Candidate(block="basic", shortcut="none", blocks_per_stage=3, width=8)
    assert plain.describe(compact=True) == "basic/none 3x3x3 w8"
    assert plain.describe(training=False) == "basic/none, 3x3x3 blocks, width 8"


def test_a_display_is_chosen_by_name_and_a_bad_name_is_one_line() -> None:
    assert isinstance(make_progress("quiet"), QuietProgress)
    assert isinstance(make_progress("json"), JsonProgress)
    with pytest.raises(NasError, match=r"^progress: got 'loud'; allowed: auto, live, lines"):
        make_progress("loud")


def test_resnas_log_records_reach_the_display_while_a_search_runs(capsys) -> None:
    out = io.StringIO()
    log = logging.getLogger("nas.study.rdb")
    with forward_logs(LineProgress(out=out)):
        log.warning("nas: storage %s unreachable", "db")
    assert out.getvalue() == "nas: storage db unreachable\n"
    with forward_logs(QuietProgress()):  # a quiet search: nowhere, not stderr
        log.warning("nas: storage back")
    assert capsys.readouterr().err == ""
