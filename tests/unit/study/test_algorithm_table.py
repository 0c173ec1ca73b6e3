"""The sampler and pruner tables: one row per name the vocabulary lists, and usable by the
space parser without Optuna (a bad file must fail before anything heavy is imported)."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT

from nas.names import PRUNERS, SAMPLERS
from nas.study.algorithms import PRUNER_TABLE, SAMPLER_TABLE


def test_one_row_per_name_in_the_vocabulary() -> None:
    assert tuple(SAMPLER_TABLE) == SAMPLERS
    assert tuple(PRUNER_TABLE) == PRUNERS
    for row in (*SAMPLER_TABLE.values(), *PRUNER_TABLE.values()):
        assert set(row.required) <= set(row.options)


def test_loading_a_space_uses_the_table_without_optuna_or_torch() -> None:
    code = (
        "import sys, nas.space\n"
        "nas.space.load_space('search_spaces/resnet-digits.yaml')\n"
        "print(sorted(m for m in ('torch', 'optuna', 'nas.study.algorithms')"
        " if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['nas.study.algorithms']"
