"""Shared fixtures: the bundled digits splits, loaded once per session."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

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
