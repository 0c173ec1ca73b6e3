"""What several test modules share: the repository root, free ports, stopping process
groups, reading a process's output as it comes, the stacks of a process that hangs, an
environment that fails an import, the dashboard's API. Fixtures live in conftest.py; this
module is plain functions and classes (``from helpers import ...``).

A test waits for what it checks (a line, a state, a file), never for a fixed time; its
deadlines are only for what never comes, and leave room for a loaded machine, where a
command can take many times as long as alone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from nas.training.device import available_cpus

# The cores a test process may train on: all of them, or its share under pytest-xdist (whose
# workers train side by side; torch's spinning threads crawl when they outnumber the cores).
THREADS = max(1, available_cpus() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
ROOT = Path(__file__).resolve().parents[1]  # the repository (tests run `python -m nas.cli` there)


def env_failing_import(folder: Path, module: str, why: str,
                       drop: tuple[str, ...] = ("RESNAS_DEBUG",)) -> dict[str, str]:
    """An environment whose Python fails to import ``module``: a package of that name that
    raises, first on PYTHONPATH (to show a command never gets as far as needing it)."""
    (folder / module).mkdir()
    (folder / module / "__init__.py").write_text(f"raise ImportError({why!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT)])
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 20) -> None:
    """Stop a process started in its own session, then whatever it left in that group
    (the Ray daemons a search starts outlive a driver killed with SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class OutputReader:
    """What a child process writes to a pipe, read by a thread of its own as it comes (the
    child never blocks on a full pipe), so that a test can wait for a line while the child
    runs and still have everything once it has exited."""

    def __init__(self, stream) -> None:
        self._parts: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        try:
            for line in stream:
                with self._changed:
                    self._parts.append(line)
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._parts)

    def wait_for(self, needle: str, timeout: float) -> bool:
        """Whether ``needle`` has appeared, waiting for it up to ``timeout`` seconds or
        until the stream ends."""
        with self._changed:
            self._changed.wait_for(lambda: needle in "".join(self._parts) or self._ended,
                                   timeout)
            return needle in "".join(self._parts)

    def rest(self, timeout: float = 60) -> str:
        """Everything, once the stream has ended (the child has exited and closed it)."""
        self._thread.join(timeout)
        return self.text()


def python_stacks(pid: int) -> str:
    """Every thread's Python stack in a running process, for a test to show where it
    hangs. py-spy (Ray's `default` extra installs it) reads them without stopping it;
    faulthandler's SIGABRT does not do for a search: once a process has started Ray,
    Ray's own handler of fatal signals has replaced faulthandler's, and prints nothing."""
    spy = Path(sys.executable).with_name("py-spy")
    command = str(spy) if spy.is_file() else shutil.which("py-spy")
    if command is None:
        return "(no py-spy here to show its stacks)"
    try:
        dump = subprocess.run([command, "dump", "--pid", str(pid)], capture_output=True,
                              text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "(py-spy did not answer in 2 minutes)"
    return dump.stdout + dump.stderr


def dashboard_study(port: int, server: subprocess.Popen, study_name: str) -> dict:
    """optuna-dashboard's API answer for one study (trials, objective names ...), once the
    server answers (on a loaded machine its start alone, imports included, may take a
    minute)."""
    base = f"http://127.0.0.1:{port}"
    studies = None
    deadline = time.monotonic() + 300
    while studies is None:
        try:
            with urllib.request.urlopen(f"{base}/api/studies", timeout=10) as r:
                studies = json.load(r)["study_summaries"]
        except OSError:
            assert server.poll() is None, server.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the dashboard never answered"
            time.sleep(0.2)
    entry = next(s for s in studies if s["study_name"] == study_name)
    with urllib.request.urlopen(f"{base}/api/studies/{entry['study_id']}", timeout=60) as r:
        return json.load(r)


def dashboard_trials(port: int, server: subprocess.Popen, study_name: str) -> list[dict]:
    """The trials optuna-dashboard's API lists for a study, once the server answers."""
    return dashboard_study(port, server, study_name)["trials"]


def tensorboard_scalars(events_file: Path) -> dict[str, dict[int, float]]:
    """Every scalar of a TensorBoard event file: tag -> {step: value}. The file is a
    sequence of records (8-byte length, 4-byte CRC, an Event protobuf, 4-byte CRC); read
    here with tensorboardX's protobuf, not TensorBoard, which the tests do not install."""
    import struct

    from tensorboardX.proto import event_pb2

    data, pos, scalars = events_file.read_bytes(), 0, {}
    while pos < len(data):
        (length,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[pos + 12:pos + 12 + length])
        pos += 12 + length + 4
        for value in event.summary.value:
            scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars
