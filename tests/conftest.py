"""Shared fixtures: the bundled digits splits, loaded once per session; torch kept to this
process's share of the cores. Plain helper functions are in helpers.py."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import THREADS

from nas import data

# The commands the tests start (`nas train`, `nas analyze`, ...) train on this worker's share
# of the cores too: two processes spinning a thread per core on the same cores run ~3x slower.
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))


@pytest.fixture(scope="session")
def digits() -> data.Splits:
    return data.load("digits", seed=0)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(THREADS)
