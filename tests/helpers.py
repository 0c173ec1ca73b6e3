"""What several test modules share: the repository root, free ports, stopping process
groups, an environment that fails an import, the dashboard's API. Fixtures live in
conftest.py; this module is plain functions (``from helpers import ...``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
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


def dashboard_study(port: int, server: subprocess.Popen, study_name: str) -> dict:
    """optuna-dashboard's API answer for one study (trials, objective names ...), once the
    server answers."""
    base = f"http://127.0.0.1:{port}"
    studies = None
    for _ in range(150):
        try:
            with urllib.request.urlopen(f"{base}/api/studies", timeout=2) as r:
                studies = json.load(r)["study_summaries"]
            break
        except OSError:
            assert server.poll() is None, server.communicate()[1][-2000:]
            time.sleep(0.2)
    assert studies is not None, "the dashboard never answered"
    entry = next(s for s in studies if s["study_name"] == study_name)
    with urllib.request.urlopen(f"{base}/api/studies/{entry['study_id']}", timeout=5) as r:
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
