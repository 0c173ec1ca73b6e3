"""Nothing run from a file, nothing exposed without a warning."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import torch


class Planted:
    """Unpickling this runs code: a checkpoint that holds it must never be loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mknod, (self.marker,))


def test_a_checkpoint_carrying_code_is_refused_without_running_it(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    bad = tmp_path / "evil.pt"
    torch.save({"format": 1, "candidate": {}, "payload": Planted(str(marker))}, bad)
    for command in (["analyze", str(bad)], ["compress", str(bad)]):
        proc = subprocess.run([sys.executable, "-m", "nas.cli", *command], cwd=tmp_path,
                              text=True, capture_output=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "not a resnas checkpoint" in proc.stderr and proc.stderr.count("\n") == 1
        # it names what the file wanted, and never advises the unsafe way to load it
        assert "posix.mknod" in proc.stderr and "refused" in proc.stderr
        assert "weights_only" not in proc.stderr
        assert not marker.exists()


def test_a_yaml_tag_that_would_run_code_is_refused(tmp_path) -> None:
    marker = tmp_path / "code-ran"
    space = tmp_path / "evil.yaml"
    space.write_text(f"name: !!python/object/apply:os.mknod ['{marker}']\nspace: {{}}\n")
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "train", "--config", str(space)],
                          cwd=tmp_path, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert not marker.exists()


def test_the_dashboard_warns_before_binding_beyond_loopback(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = f"sqlite:///{tmp_path / 'nas.db'}"
    import optuna

    optuna.create_study(study_name="s", storage=storage)
    server = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", "--storage", storage, "--host", "0.0.0.0",
         "--port", str(port)], cwd=tmp_path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True)
    err = ""
    try:
        # The warning comes before the server binds; on a loaded machine the import of
        # optuna-dashboard alone may take many seconds, so wait for it rather than a fixed
        # time (the deadline is only for a server that never says it).
        deadline = time.monotonic() + 300
        while "exposes the study" not in err and time.monotonic() < deadline:
            assert server.poll() is None, err
            ready, _, _ = select.select([server.stderr], [], [], 1.0)
            if ready:
                err += os.read(server.stderr.fileno(), 4096).decode()
        assert server.poll() is None, err  # it serves, after warning
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    err += server.stderr.read()
    assert "warning: binding to 0.0.0.0 exposes the study to the network" in err


SLOW_SPACE = """\
name: bind
dataset: digits
epochs: 30
trials: 1
space:
  blocks_per_stage: 3
  width: 8
  batch_size: 16
sampler: {name: random, seed: 0}
pruner: {name: none}
usefulness: {enabled: false}
"""


@pytest.mark.slow
def test_a_local_search_listens_on_loopback_only(tmp_path) -> None:
    """Every TCP port that the search's processes (driver, Ray's daemons, workers) listen on."""
    space = tmp_path / "bind.yaml"
    space.write_text(SLOW_SPACE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    driver = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(space), "--storage",
         f"sqlite:///{tmp_path / 'nas.db'}", "--results", str(tmp_path / "results")],
        cwd=tmp_path, env=env, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True)
    listening: dict[str, str] = {}
    try:
        # Sample while Ray starts and the trial trains (30 epochs outlast the window): until
        # the trial's worker is up and 5 s more, since a busy machine starts Ray slowly.
        deadline, settled = time.monotonic() + 300, None
        while time.monotonic() < deadline and (settled is None or time.monotonic() < settled):
            assert driver.poll() is None, driver.stderr.read()[-3000:]
            session = _session(driver.pid)
            for process in session:
                for conn in _listening(process):
                    listening[f"{conn.laddr.ip}:{conn.laddr.port}"] = process.name()
            if settled is None and len(listening) >= 3 and _a_trial_runs(session):
                settled = time.monotonic() + 5
            time.sleep(1)
    finally:
        for process in _session(driver.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        driver.wait(timeout=30)
    assert len(listening) >= 3, listening  # the GCS, the raylet and the driver at least
    exposed = {addr: name for addr, name in listening.items()
               if not addr.startswith(("127.0.0.1:", "::ffff:127.0.0.1:", "::1:"))}
    assert exposed == {}


def _session(sid: int) -> list[psutil.Process]:
    """The processes of a session: the driver and every Ray process it started."""
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(process.pid) == sid:
                found.append(process)
    return found


def _a_trial_runs(session: list[psutil.Process]) -> bool:
    """Whether a Ray worker of the session runs the trial (Ray titles it `ray::ImplicitFunc`)."""
    for process in session:
        with contextlib.suppress(psutil.Error):
            if "ImplicitFunc" in " ".join(process.cmdline()):
                return True
    return False


def _listening(process: psutil.Process) -> list:
    try:
        return [c for c in process.net_connections(kind="tcp") if c.status == "LISTEN"]
    except (psutil.Error, OSError):
        return []
