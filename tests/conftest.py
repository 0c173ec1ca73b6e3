"""Shared fixtures: the bundled digits splits, loaded once per session; torch kept to this
process's share of the cores. Plain helper functions are in helpers.py."""

from __future__ import annotations

import pytest
import torch
from helpers import THREADS

from nas import data


@pytest.fixture(scope="session")
def digits() -> data.Splits:
    return data.load("digits", seed=0)


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(THREADS)
