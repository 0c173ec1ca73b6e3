"""The README's Python example, run as a user would: in a fresh interpreter, on a Ray the
user started first (as in a notebook), checked for what it leaves behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from helpers import ROOT

pytestmark = pytest.mark.slow

# Before the example: the user's own Ray (on 127.0.0.1) and their process state.
PRELUDE = """\
import json, logging, os, signal, warnings
import optuna, ray
ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
         log_to_driver=False)
optuna.logging.set_verbosity(optuna.logging.INFO)
RAY_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air")
# Settings resnas might leave behind (libraries it imports set others of their own on import).
def settings():
    return {k: v for k, v in os.environ.items()
            if k.startswith(("RAY_", "TUNE_", "RESNAS_", "OMP_", "MKL_"))}
before = {"sigint": repr(signal.getsignal(signal.SIGINT)), "optuna_filters": [],
          "environ": settings(),
          "ray_levels": [logging.getLogger(name).level for name in RAY_LOGGERS]}
"""
# After it: what the test reads back.
EPILOGUE = """
import nas as nas_again
# Libraries the search imports (torch, scipy, ...) add filters of their own on import; none
# may be resnas's silencing of Optuna for the whole process.
after = {"sigint": repr(signal.getsignal(signal.SIGINT)),
         "optuna_filters": [str(f) for f in warnings.filters
                            if f[1] is not None and "heartbeat" in f[1].pattern.lower()
                            or f[2] is optuna.exceptions.ExperimentalWarning],
         "environ": settings(),
         "ray_levels": [logging.getLogger(name).level for name in RAY_LOGGERS]}
if before != after:
    env_before, env_after = before["environ"], after["environ"]
    print("CHANGED " + json.dumps({
        **{k: (before[k], after[k]) for k in before
           if before[k] != after[k] and k != "environ"},
        "environ": {k: (env_before.get(k), env_after.get(k)) for k in {*env_before, *env_after}
                    if env_before.get(k) != env_after.get(k)}}))
print("RESULT " + json.dumps({
    "finished": len([t for t in study.trials if t.state.is_finished()]),
    "study": study.study_name, "ray_alive": ray.is_initialized(), "same": before == after,
    "optuna_level": optuna.logging.get_verbosity(), "useful": "useful_layers" in best.user_attrs,
}))
for bad in ({"trials": 0}, {"storage": ""}, {"sampler": "tpee"}):
    try:
        nas_again.search("search_spaces/resnet-digits.yaml", **bad)
    except nas_again.NasError as exc:  # named as the caller wrote it, not as a flag
        print("ERROR " + str(exc))
ray.shutdown()
"""


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_the_readme_python_example_returns_the_study(tmp_path) -> None:
    (tmp_path / "search_spaces").symlink_to(ROOT / "search_spaces")
    script = tmp_path / "example.py"
    script.write_text(PRELUDE + _readme_example() + EPILOGUE)
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(next(line for line in proc.stdout.splitlines()
                             if line.startswith("RESULT "))[len("RESULT "):])
    assert result == {"finished": 2, "study": "from-python", "ray_alive": True, "same": True,
                      "optuna_level": 20, "useful": True}, proc.stdout + proc.stderr[-2000:]
    assert "best val " in proc.stdout and "layers useful" in proc.stdout
    # progress="lines": the trials' lines on stderr, and where the report went
    assert "trial   0 complete" in proc.stderr or "trial   1 complete" in proc.stderr
    assert "report: " in proc.stderr and (tmp_path / "results" / "from-python").is_dir()
    assert "ERROR trials: got 0; allowed: an integer >= 1" in proc.stdout
    assert "ERROR storage is empty; allowed: an SQLAlchemy URL" in proc.stdout
    assert "ERROR sampler: got 'tpee'; allowed: tpe, random, grid, gp, nsga2" in proc.stdout
    assert "Traceback" not in proc.stderr
