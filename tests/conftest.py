"""Shared fixtures and helpers: the bundled digits splits, loaded once per session; free
ports, process groups, the dashboard's API."""

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

import pytest
import torch

from nas import data


@pytest.fixture(scope="session")
def digits() -> data.Splits:
    return data.load("digits", seed=0)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    # Tests run on 2 cores; keep torch from oversubscribing them.
    torch.set_num_threads(2)


def env_failing_import(folder: Path, module: str, why: str,
                       drop: tuple[str, ...] = ("RESNAS_DEBUG",)) -> dict[str, str]:
    """An environment whose Python fails to import ``module``: a package of that name that
    raises, first on PYTHONPATH (to show a command never gets as far as needing it)."""
    (folder / module).mkdir()
    (folder / module / "__init__.py").write_text(f"raise ImportError({why!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(Path(__file__).resolve().parents[1])])
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


def dashboard_trials(port: int, server: subprocess.Popen, study_name: str) -> list[dict]:
    """The trials optuna-dashboard's API lists for a study, once the server answers."""
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
        return json.load(r)["trials"]
