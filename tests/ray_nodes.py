"""Real Ray nodes on this machine for the tests that need a cluster someone else started:
each node a `ray start --block` process in its own session, every process stopped by its id.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from helpers import ROOT, free_port

RAY = str(Path(sys.executable).with_name("ray"))


class Cluster:
    """Ray nodes started with `ray start --block`, each in its own session."""

    def __init__(self, work: Path, loopback: bool = False) -> None:
        """``loopback``: Ray's cluster mode off, so every server listens on 127.0.0.1 only
        (one machine); on, its daemons listen on every interface (nodes may join)."""
        self.work = work
        # Ray's socket paths must stay short: a temp dir of its own under /tmp.
        self.temp = Path(tempfile.mkdtemp(prefix="rn-"))
        self.port = free_port()
        self.dashboard_port = free_port()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(16),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                    "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
        self.env.pop("RAY_ADDRESS", None)
        if loopback:
            self.env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        self.nodes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, cpus: int, head: bool = False,
              temp_dir: Path | None = None) -> subprocess.Popen:
        """A node; ``temp_dir``: its Ray temp folder (where `ray start` records the address).

        A temp dir per node by default, as on separate machines: nodes sharing one would
        unpack the job's working_dir over each other's copy (and under the running job).
        """
        temp_dir = temp_dir or self.temp / f"n{len(self.nodes)}"
        args = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
                "--num-gpus=0", f"--dashboard-agent-listen-port={free_port()}",
                f"--metrics-export-port={free_port()}", "--disable-usage-stats",
                f"--temp-dir={temp_dir}"]
        if head:
            args += ["--head", f"--port={self.port}",
                     "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                     f"--dashboard-port={self.dashboard_port}"]
        else:
            args += [f"--address={self.address}"]
        log = self.work / f"node-{len(self.nodes)}.log"
        self.logs.append(log)
        node = subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(node)
        self.wait_for_nodes(node)
        return node

    def alive_nodes(self) -> list[dict]:
        probe = subprocess.run(
            [sys.executable, "-c",
             "import json, ray; ray.init(address='auto', logging_level='ERROR');"
             "print(json.dumps([n for n in ray.nodes() if n['Alive']]))"],
            env={**self.env, "RAY_ADDRESS": self.address}, capture_output=True, text=True,
            timeout=60)
        return json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else []

    def wait_for_nodes(self, new: subprocess.Popen, timeout: float = 300) -> None:
        """Until the cluster counts as many live nodes as there are running node processes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if new.poll() is not None:
                raise AssertionError(self.tail())
            running = sum(n.poll() is None for n in self.nodes)
            if len(self.alive_nodes()) >= running:
                return
            time.sleep(1)
        raise AssertionError(f"Ray node {new.pid} not up in {timeout}s\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in self.logs
                         if log.exists())

    def raylet_of(self, node: subprocess.Popen) -> psutil.Process:
        for child in psutil.Process(node.pid).children(recursive=True):
            if child.name() == "raylet":
                return child
        raise AssertionError(f"no raylet under node {node.pid}")

    def stop(self) -> None:
        """Stop every process the nodes started, by pid, workers first, then the nodes."""
        processes: list[psutil.Process] = []
        for node in self.nodes:
            with contextlib.suppress(psutil.NoSuchProcess):
                processes += psutil.Process(node.pid).children(recursive=True)
        for node in reversed(self.nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        for node in self.nodes:  # `ray start --block` takes 20 s and more to stop by itself
            try:
                node.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=10)
        for process in processes:  # Ray's daemons and workers that left the group
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        shutil.rmtree(self.temp, ignore_errors=True)
