"""The displays of a running search, fed events by hand (the real searches are in
tests/scenarios/test_live_table.py and the report's JSON test)."""

from __future__ import annotations

import io
import json

from nas.tuning.progress import JsonProgress, LineProgress, QuietProgress, short_candidate

CANDIDATE = {"block": "preact", "shortcut": "rezero", "blocks_per_stage": [2, 3, 4], "width": 16}


def _run(progress) -> None:
    progress.search_started("s", 3, 5, "searching 3 trial(s) of 's'")
    progress.trial_started(0, CANDIDATE)
    progress.epoch(0, 1, 0.5)
    progress.epoch(0, 2, 0.75)
    progress.trial_ended(0, "complete", "trial   0 complete val 75.00%",
                         {"epoch": 5, "val_accuracy": 0.75, "useful_layers": 12}, " | best")
    progress.search_finished(1, False)
    progress.close()


def test_lines_say_what_runs_at_most_every_heartbeat() -> None:
    out = io.StringIO()
    _run(LineProgress(out=out, heartbeat=0.0))  # every epoch is past the heartbeat
    lines = out.getvalue().splitlines()
    assert lines[0] == "searching 3 trial(s) of 's'"
    assert lines[1].startswith("running: trial 0 epoch 1/5 val 50.00% | 0/3 finished")
    assert lines[2].startswith("running: trial 0 epoch 2/5 val 75.00%")
    assert lines[3] == "trial   0 complete val 75.00%"
    quiet = io.StringIO()
    _run(LineProgress(out=quiet))  # the default 30 s: no heartbeat in a fast run
    assert [line for line in quiet.getvalue().splitlines() if line.startswith("running")] == []


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
    assert short_candidate(CANDIDATE) == "preact/rezero 2x3x4 w16"
    assert short_candidate({"block": "basic", "shortcut": "none", "blocks_per_stage": 3,
                            "stages": 3, "width": 8}) == "basic/none 3x3x3 w8"
