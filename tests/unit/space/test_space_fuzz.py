"""Mutated space files: each is a valid space whose candidates build, or one error line.

Hypothesis mutates the shipped space files two ways: the parsed tree (a value replaced by
any YAML value or an edge number, a key dropped or added) and the text itself (characters
inserted, deleted or replaced). ``load_space`` must return a space, or raise ``NasError``
with one line (what ``nas`` prints, exit status 2: the last test runs one through the
command); a space's sampled candidates must build (on torch's meta device: the structure
is checked without allocating a 2048-wide network).

Derandomized, so CI runs the same 200 cases each time; RESNAS_FUZZ_EXAMPLES=20000
explores further (and randomly) on a workstation.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from helpers import ROOT, env_failing_import
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.errors import NasError
from nas.models import build_model
from nas.space import load_space

SHIPPED = sorted((ROOT / "search_spaces").glob("*.yaml"))
TEXTS = [path.read_text() for path in SHIPPED]
TREES = [yaml.safe_load(text) for text in TEXTS]
EXAMPLES = int(os.environ.get("RESNAS_FUZZ_EXAMPLES", "200"))

EDGE_NUMBERS = [0, 1, -1, 2, 3, 8, 2048, 2049, 2**31, -(2**63), 0.0, 0.5, 1.0, 1e-12, 1e308,
                float("inf"), float("-inf"), float("nan")]
SCALARS = st.one_of(st.none(), st.booleans(), st.sampled_from(EDGE_NUMBERS),
                    st.integers(-10**6, 10**6), st.floats(-1e6, 1e6),
                    st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
KEYS = st.sampled_from(["type", "low", "high", "step", "log", "choices", "name", "seed",
                        "blocks_per_stage", "width", "block", "shortcut", "stages", "epochs",
                        "space", "sampler", "pruner", "objectives", "data", "usefulness"])


def _places(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) of a parsed YAML tree, nested ones included."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, list) else ()
    for key, child in items:
        found.append((node, key))
        found.extend(_places(child))
    return found


@st.composite
def tree_mutant(draw) -> str:
    tree = copy.deepcopy(draw(st.sampled_from(TREES)))
    for _ in range(draw(st.integers(1, 3))):
        places = _places(tree)
        container, key = draw(st.sampled_from(places))
        action = draw(st.sampled_from(["replace", "edge", "drop", "add"]))
        if action == "replace":
            container[key] = draw(VALUES)
        elif action == "edge":
            container[key] = draw(st.sampled_from(EDGE_NUMBERS))
        elif action == "drop":
            del container[key]
        elif isinstance(container, dict):
            container[draw(KEYS)] = draw(VALUES)
    return yaml.safe_dump(tree, allow_unicode=True)


@st.composite
def text_mutant(draw) -> str:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        span = draw(st.integers(0, 3))
        insert = draw(st.text(alphabet=st.sampled_from(list("0123456789-.:[]{},'\"#&*!| \n\tab")),
                              max_size=3))
        text = text[:at] + insert + text[at + span:]
    return text


def _check(path: Path, text: str, seed: int) -> None:
    path.write_text(text)
    try:
        space = load_space(path)
    except NasError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, repr(message)
        return
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    candidate = space.suggest(study.ask())
    with torch.device("meta"):
        model = build_model(candidate, candidate.data.get("channels", 3),
                            candidate.data.get("classes", 10), candidate.data.get("image_size", 32))
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "space.yaml"


@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=EXAMPLES <= 200,
          suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(tree_mutant(), text_mutant()), seed=st.integers(0, 2**16))
def test_a_mutated_space_is_valid_and_builds_or_is_one_line(fuzz_file, text, seed) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    _check(fuzz_file, text, seed)


def test_a_refused_mutant_is_exit_status_2_from_the_command(tmp_path) -> None:
    broken = tmp_path / "space.yaml"
    broken.write_text(TEXTS[0].replace("space:", "space: [", 1))
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", "search", "--space", str(broken), "--storage",
         f"sqlite:///{tmp_path / 'nas.db'}", "--results", str(tmp_path / "results")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=env_failing_import(tmp_path, "ray", "bad input must be refused before Ray"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
