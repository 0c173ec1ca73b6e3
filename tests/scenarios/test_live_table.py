"""What `nas search` shows while it runs, on a real terminal: a pseudo-terminal (pty).

(The JSON events of `--progress json` are checked against a real search in
tests/unit/report/test_report.py, on the search its fixture runs anyway.)

Every wait here is for something the search shows (a line, a row of the table, its exit),
with a deadline only for a search that never gets there: on a loaded machine a search
may take many times as long as alone.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, python_stacks

pytestmark = pytest.mark.slow

# Many more trials than the test waits for: the Ctrl-C, sent once trial 1 shows an epoch,
# must find the search running however slowly the test gets to send it (with 4 trials a
# slow test could find the search already over, or printing its summary).
TRIALS = 20
SPACE = f"""\
name: live
dataset: digits
epochs: 4
trials: {TRIALS}
space:
  blocks_per_stage: 1
  width: 8
  batch_size: 32
  lr: 0.1
sampler: {{name: random, seed: 0}}
pruner: {{name: none}}
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A row of the live table: trial number, candidate, the bar, "k/4", last val, time.
RUNNING_ROW = re.compile(r"^\s*(\d+)\s+basic/identity 1x1x1 w8\s+\S+\s+([1-3])/4\s+\d+\.\d\d%",
                         re.MULTILINE)


def _read(fd: int, seconds: float) -> bytes | None:
    """What the terminal shows within ``seconds`` (b"" if nothing); None once no process
    holds the terminal any more (Linux: EIO, after everything written has been read)."""
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536) or None
    except OSError:
        return None


def _text(raw: bytes) -> str:
    return ANSI.sub("", raw.decode("utf-8", "replace"))


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
        while True:
            chunk = _read(main, 1.0)
            raw += chunk or b""
            text = _text(raw)
            done = text.find("trial   0 complete")
            if done >= 0 and any(int(m.group(1)) >= 1 for m in RUNNING_ROW.finditer(text, done)):
                break
            assert chunk is not None and proc.poll() is None, text[-2000:]
            assert time.monotonic() < deadline, \
                "no running trial's epoch in the live table:\n" + text[-2000:]
        # The table showed trial 0 at an epoch before trial 0 ended.
        first_row = RUNNING_ROW.search(text)
        assert first_row is not None and first_row.group(1) == "0"
        assert first_row.start() < done
        assert f"0/{TRIALS} finished: complete 0, pruned 0, failed 0" in text  # the header
        # Ctrl-C with the table up: exit 130, the resume command, the cursor given back.
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: its whole group
        deadline = time.monotonic() + 240
        while proc.poll() is None and time.monotonic() < deadline:
            raw += _read(main, 0.5) or b""
        stacks = python_stacks(proc.pid) if proc.poll() is None else None  # where it hangs
        # Everything it wrote: until no process holds the terminal, once the driver and
        # whatever it left in its group are gone.
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while (chunk := _read(main, 1.0)) is not None and time.monotonic() < deadline:
            raw += chunk
        if stacks is not None:
            pytest.fail(f"no exit 4 minutes after a Ctrl-C; what it showed:\n"
                        f"{_text(raw)[-3000:]}\nthe driver's stacks:\n{stacks}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever it left in its group
        os.close(main)
    text = _text(raw)
    assert proc.returncode == 130, text[-2000:]
    assert "resume with: " in text and "Traceback" not in text, text[-2000:]
    assert b"\x1b[?25h" in raw  # rich shows the cursor again
