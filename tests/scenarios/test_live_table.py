"""What `nas search` shows while it runs, on a real terminal: a pseudo-terminal (pty).

(The JSON events of `--progress json` are checked against a real search in
tests/unit/report/test_report.py, on the search its fixture runs anyway.)
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow

SPACE = """\
name: live
dataset: digits
epochs: 4
trials: 4
space:
  blocks_per_stage: 1
  width: 8
  batch_size: 32
  lr: 0.1
sampler: {name: random, seed: 0}
pruner: {name: none}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A row of the live table: trial number, candidate, the bar, "k/4", last val, time.
RUNNING_ROW = re.compile(r"^\s*(\d+)\s+basic/identity 1x1x1 w8\s+\S+\s+([1-3])/4\s+\d+\.\d\d%",
                         re.MULTILINE)


def _read(fd: int, seconds: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:  # the child closed the terminal
        return b""


def test_live_table_shows_running_epochs_and_ctrl_c_stops_cleanly(tmp_path) -> None:
    (tmp_path / "live.yaml").write_text(SPACE)
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(tmp_path / "live.yaml"),
         "--storage", f"sqlite:///{tmp_path / 'nas.db'}", "--results", str(tmp_path / "r"),
         "--max-concurrent", "1"],
        cwd=ROOT, stdin=child, stdout=child, stderr=child, start_new_session=True,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120", "LINES": "30"})
    os.close(child)
    raw = b""
    try:
        deadline = time.monotonic() + 300
        # Until the first trial has ended and the next one shows an epoch in the table.
        while time.monotonic() < deadline:
            raw += _read(main, 1.0)
            text = ANSI.sub("", raw.decode("utf-8", "replace"))
            done = text.find("trial   0 complete")
            if done >= 0 and any(int(m.group(1)) >= 1 for m in RUNNING_ROW.finditer(text, done)):
                break
            assert proc.poll() is None, text[-2000:]
        else:
            pytest.fail("no running trial's epoch in the live table:\n" + text[-2000:])
        # The table showed trial 0 at an epoch before trial 0 ended.
        first_row = RUNNING_ROW.search(text)
        assert first_row is not None and first_row.group(1) == "0"
        assert first_row.start() < done
        assert "0/4 finished: complete 0, pruned 0, failed 0" in text  # the header
        # Ctrl-C with the table up: exit 130, the resume command, the cursor given back.
        os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            raw += _read(main, 0.5)
        while chunk := _read(main, 0.5):
            raw += chunk
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        os.close(main)
    text = ANSI.sub("", raw.decode("utf-8", "replace"))
    assert proc.returncode == 130, text[-2000:]
    assert "resume with: " in text and "Traceback" not in text
    assert b"\x1b[?25h" in raw  # rich shows the cursor again
