"""The sampler and pruner tables: one option row (nas.space) and one builder (nas.study) per
name the vocabulary lists, and a space parsed without Optuna or the study package (a bad
file must fail before anything heavy is imported)."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

from nas.names import PRUNERS, SAMPLERS
from nas.space.algorithm_options import PRUNER_OPTIONS, SAMPLER_OPTIONS
from nas.study.algorithms import PRUNER_BUILDERS, SAMPLER_BUILDERS


def test_one_row_per_name_in_the_vocabulary() -> None:
    assert tuple(SAMPLER_OPTIONS) == tuple(SAMPLER_BUILDERS) == SAMPLERS
    assert tuple(PRUNER_OPTIONS) == tuple(PRUNER_BUILDERS) == PRUNERS
    for row in (*SAMPLER_OPTIONS.values(), *PRUNER_OPTIONS.values()):
        assert set(row.required) <= set(row.options)


def test_loading_a_space_uses_the_table_without_optuna_or_torch() -> None:
    code = (
        "import sys, nas.space\n"
        "nas.space.load_space('search_spaces/resnet-digits.yaml')\n"
        "print(sorted(m for m in ('torch', 'optuna', 'nas.study')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
