"""Shared fixtures: the bundled digits splits, loaded once per session."""

from __future__ import annotations

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
