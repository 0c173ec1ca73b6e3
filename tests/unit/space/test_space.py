"""Tests for nas.space: the shipped files, suggesting with a real Optuna study, and a corpus
of malformed files that must each fail as one SpaceError line (and exit 2 from the CLI)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from helpers import ROOT, env_failing_import

from nas.candidate import Candidate
from nas.errors import NasError
from nas.names import BLOCK_TYPES
from nas.space import (
    MAX_FILE_BYTES,
    SPACE_PARAMS,
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    SpaceError,
    load_candidate,
    load_space,
    parse_space,
    read_yaml,
)
from nas.study.queries import candidate_yaml

SHIPPED = ROOT / "search_spaces"


def write(tmp_path: Path, content: str | bytes, name: str = "space.yaml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- shipped files


def test_resnet20_candidate_loads_with_every_value():
    cand = load_candidate(SHIPPED / "resnet20.yaml")
    assert isinstance(cand, Candidate)
    assert (cand.stages, cand.blocks_per_stage, cand.block, cand.shortcut, cand.width) == (
        3, 3, "basic", "identity", 16)
    assert cand.stage_depths == (3, 3, 3)
    assert (cand.dataset, cand.epochs, cand.seed) == ("digits", 10, 0)
    # not in the file: the documented training defaults
    assert (cand.optimizer, cand.schedule, cand.momentum) == ("sgd", "onecycle", 0.9)
    assert (cand.lr, cand.weight_decay, cand.batch_size) == (0.1, 5e-4, None)
    assert cand.batch_for(1259) == 32  # the digits' training split: 40 steps an epoch

    space = load_space(SHIPPED / "resnet20.yaml")
    assert space.name == "resnet20"
    assert space.searched == {}
    assert space.fixed_candidate() == cand


def test_resnet_digits_space_searched_and_fixed():
    space = load_space(SHIPPED / "resnet-digits.yaml")
    assert space.name == "resnet-digits"
    assert (space.dataset, space.metric, space.epochs, space.trials) == (
        "digits", "val_accuracy", 8, 16)
    assert space.searched == {
        "blocks_per_stage": IntRange(1, 5),
        "block": Choice(("basic", "bottleneck", "preact", "highway")),
        "shortcut": Choice(("identity", "projection", "none")),
        "width": Choice((8, 16)),
        "lr": FloatRange(0.02, 0.5, log=True),
        "weight_decay": FloatRange(1e-5, 1e-3, log=True),
    }
    fixed = {k: p for k, p in space.params.items() if isinstance(p, Fixed)}
    assert fixed == {"stages": Fixed(3)}  # batch: the default, scaled to the data
    assert space.sampler == {"name": "tpe", "seed": 0}
    assert space.pruner == {"name": "none"}  # why: the file's comment and RESULTS.md
    assert space.trial_resources == {"cpu": 1.0, "gpu": 0.0}
    assert space.usefulness == {"enabled": True, "tolerance": 0.01}
    assert "resnet-digits" in space.text

    # a space is not a candidate: the searched value is named
    with pytest.raises(SpaceError, match=r"space\.blocks_per_stage: .*search range"):
        load_candidate(SHIPPED / "resnet-digits.yaml")


def test_exponent_without_dot_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-5 as a string; the space must not care.
    data, _ = read_yaml(write(tmp_path, "x: 1e-5\n"))
    assert data == {"x": "1e-5"}

    short = load_space(write(tmp_path, (
        "space:\n"
        "  weight_decay: {type: float, low: 1e-5, high: 1E-3, log: true}\n"
        "  lr: 2e-1\n"
        "  label_smoothing: {type: categorical, choices: [0, 1e-1, 2.5e-1]}\n"), "short.yaml"))
    long = load_space(write(tmp_path, (
        "space:\n"
        "  weight_decay: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n"
        "  lr: 0.2\n"
        "  label_smoothing: {type: categorical, choices: [0.0, 0.1, 0.25]}\n"), "long.yaml"))
    assert short.params == long.params
    assert short.params["weight_decay"] == FloatRange(1e-5, 1e-3, log=True)
    assert isinstance(short.params["lr"].value, float) and short.params["lr"].value == 0.2
    assert short.params["label_smoothing"] == Choice((0.0, 0.1, 0.25))

    cand = load_candidate(write(tmp_path, "space: {weight_decay: 5e-4, lr: '1e-2'}\n", "c.yaml"))
    assert cand.weight_decay == pytest.approx(5e-4) and isinstance(cand.weight_decay, float)
    assert cand.lr == pytest.approx(1e-2)


def test_defaults_merge_keys_and_per_stage_lists(tmp_path):
    # a YAML merge key is plain YAML (safe_load accepts it); its keys may be overridden
    path = write(tmp_path, (
        "space:\n"
        "  <<: {block: preact, width: 8}\n"
        "  width: 32\n"
        "  stages: 2\n"
        "  blocks_per_stage: [1, 4]\n"), "my space.yaml")
    space = load_space(path)
    assert space.name == "my-space"  # the file name, made a valid study name
    assert space.sampler == {"name": "tpe"} and space.pruner == {"name": "median"}
    cand = space.fixed_candidate()
    assert (cand.block, cand.width, cand.stages, cand.stage_depths) == ("preact", 32, 2, (1, 4))


def test_parse_space_names_the_path_it_is_given():
    with pytest.raises(SpaceError) as info:
        parse_space({"space": {"width": "wide"}}, "inline.yaml")
    assert str(info.value).startswith("inline.yaml: space.width: got 'wide'")
    assert issubclass(SpaceError, NasError)


# --------------------------------------------------------------------------- suggest

SEARCH_ALL = """\
name: suggest-test
dataset: synthetic
epochs: 4
seed: 7
space:
  stages: {type: int, low: 1, high: 4}
  blocks_per_stage: {type: int, low: 1, high: 9, step: 2}
  block: {type: categorical, choices: [basic, bottleneck, preact, highway]}
  shortcut: {type: categorical, choices: [identity, projection, rezero]}
  width: {type: int, low: 8, high: 64, log: true}
  gate_bias: {type: float, low: -6.0, high: -0.5}
  lr: {type: float, low: 1e-3, high: 0.5, log: true}
  weight_decay: {type: float, low: 0.0, high: 1.0e-3, step: 1.0e-4}
  momentum: 0.85
  batch_size: 64
  augment: {type: categorical, choices: [true, false]}
"""


def test_suggest_with_random_sampler_respects_the_space(tmp_path):
    space = load_space(write(tmp_path, SEARCH_ALL))
    assert set(space.searched) == {
        "stages", "blocks_per_stage", "block", "shortcut", "width", "gate_bias", "lr",
        "weight_decay", "augment"}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    candidates = []
    for _ in range(300):
        trial = study.ask()
        cand = space.suggest(trial)
        study.tell(trial, 0.0)
        candidates.append((cand, dict(trial.params), dict(trial.distributions)))

    blocks = Counter()
    below_geometric_middle = 0
    for cand, params, dists in candidates:
        assert isinstance(cand, Candidate)
        blocks[cand.block] += 1
        # every searched value is asked, except gate_bias off highway blocks
        expected = set(space.searched) - ({"gate_bias"} if cand.block != "highway" else set())
        assert set(params) == expected
        assert ("gate_bias" in params) == (cand.block == "highway")
        # fixed values are not asked, but they are in the candidate
        assert "momentum" not in params and "batch_size" not in params
        assert (cand.momentum, cand.batch_size) == (0.85, 64)
        assert (cand.dataset, cand.epochs, cand.seed) == ("synthetic", 4, 7)
        # the candidate holds what the trial was given
        for name, value in params.items():
            assert getattr(cand, name) == value
        # ranges, steps and choices
        assert 1 <= cand.stages <= 4
        assert cand.blocks_per_stage in (1, 3, 5, 7, 9)
        assert cand.block in BLOCK_TYPES
        assert cand.shortcut in ("identity", "projection", "rezero")
        assert isinstance(cand.width, int) and 8 <= cand.width <= 64
        assert 1e-3 <= cand.lr <= 0.5
        assert 0.0 <= cand.weight_decay <= 1e-3
        assert cand.weight_decay / 1e-4 == pytest.approx(round(cand.weight_decay / 1e-4))
        assert cand.augment in (True, False)
        if cand.block == "highway":
            assert -6.0 <= cand.gate_bias <= -0.5
        else:
            assert cand.gate_bias == Candidate().gate_bias  # untouched default
        # log and step reach Optuna
        assert dists["width"].log and dists["lr"].log
        assert not dists["weight_decay"].log and dists["weight_decay"].step == pytest.approx(1e-4)
        assert dists["blocks_per_stage"].step == 2
        below_geometric_middle += cand.lr < math.sqrt(1e-3 * 0.5)

    assert set(blocks) == set(BLOCK_TYPES)
    # log-uniform puts about half below the geometric middle; uniform would put ~4% there
    assert 0.35 < below_geometric_middle / len(candidates) < 0.65


def test_suggest_gate_bias_follows_a_fixed_block(tmp_path):
    searched_bias = "  gate_bias: {type: float, low: -4.0, high: -1.0}\n"
    highway = load_space(write(tmp_path, "space:\n  block: highway\n" + searched_bias, "h.yaml"))
    basic = load_space(write(tmp_path, "space:\n  block: basic\n" + searched_bias, "b.yaml"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        cand = highway.suggest(trial)
        assert set(trial.params) == {"gate_bias"} and cand.gate_bias == trial.params["gate_bias"]
        study.tell(trial, 1.0)
        trial = study.ask()
        cand = basic.suggest(trial)
        assert trial.params == {} and cand.block == "basic"
        study.tell(trial, 1.0)


def test_suggest_with_tpe_define_by_run(tmp_path):
    # TPE (the default sampler) must cope with the conditional parameter too
    space = load_space(write(tmp_path, SEARCH_ALL))
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=1, n_startup_trials=5))
    study.optimize(lambda t: float(space.suggest(t).block == "highway"), n_trials=15)
    for trial in study.trials:
        assert ("gate_bias" in trial.params) == (trial.params["block"] == "highway")


def test_candidate_fills_fixed_values(tmp_path):
    space = load_space(SHIPPED / "resnet-digits.yaml")
    cand = space.candidate({"blocks_per_stage": 2, "block": "highway", "shortcut": "none",
                            "width": 8, "lr": 0.05, "weight_decay": 1e-4})
    assert (cand.stages, cand.batch_size, cand.epochs) == (3, None, 8)  # batch: auto
    assert (cand.block, cand.stage_depths) == ("highway", (2, 2, 2))


# --------------------------------------------------------------------------- malformed corpus

# ten levels of nine aliases: about 3.5e9 leaves if anything expands it
LAUGHS = "space:\n  width:\n    - &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    - &{new} [{', '.join([f'*{old}'] * 9)}]\n"
    for old, new in zip("abcdefghi", "bcdefghij", strict=True))

# id -> (file content, substrings the one-line error must contain)
CORPUS: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "unknown-top-key": ("spcae:\n  width: 8\n", ("spcae: unknown key", "did you mean 'space'",
                                                  "allowed: name, dataset")),
    "unknown-space-key": ("space:\n  blokc: basic\n", ("space.blokc: unknown key",
                                                        "did you mean 'block'", "allowed: stages")),
    "width-string": ('space: {width: "wide"}\n', ("space.width: got 'wide'",
                                                  "allowed: an integer >= 1")),
    "stages-float": ("space: {stages: 2.5}\n", ("space.stages: got 2.5", "allowed: an integer")),
    "epochs-bool": ("epochs: true\nspace: {width: 8}\n", ("epochs: got True",
                                                          "allowed: an integer >= 1")),
    "lr-string": ("space: {lr: fast}\n", ("space.lr: got 'fast'", "allowed: a number > 0")),
    "empty-choices": ("space: {block: {type: categorical, choices: []}}\n",
                      ("space.block.choices: got []", "allowed: a non-empty list")),
    "choices-not-list": ("space: {width: {type: categorical, choices: 8}}\n",
                         ("space.width.choices: got 8", "a non-empty list")),
    "duplicate-choice": ("space: {width: {type: categorical, choices: [8, 8]}}\n",
                         ("space.width.choices", "listed twice")),
    "low-above-high": ("space: {blocks_per_stage: {type: int, low: 9, high: 1}}\n",
                       ("space.blocks_per_stage", "low 9 is above high 1", "low <= high")),
    "blocks-zero": ("space: {blocks_per_stage: 0}\n", ("space.blocks_per_stage: got 0",
                                                       "from 1 to 256")),
    "width-negative": ("space: {width: -8}\n", ("space.width: got -8", ">= 1")),
    "searched-low-zero": ("space: {width: {type: int, low: 0, high: 16}}\n",
                          ("space.width.low: got 0", ">= 1")),
    "missing-high": ("space: {width: {type: int, low: 8}}\n", ("space.width.high", "missing")),
    "wrong-range-type": ("space: {width: {type: float, low: 1, high: 2}}\n",
                         ("space.width.type: got 'float'", "allowed: int, categorical")),
    "unknown-block": ("space: {block: resnext}\n", ("space.block: got 'resnext'",
                                                    "allowed: basic, bottleneck, preact, highway")),
    "unknown-block-choice": ("space: {block: {type: categorical, choices: [basic, dense]}}\n",
                             ("space.block.choices[1]: got 'dense'", "allowed: basic")),
    "unknown-shortcut": ("space: {shortcut: skip}\n", ("space.shortcut: got 'skip'",
                                                       "allowed: identity, projection")),
    "unknown-dataset": ("dataset: imagenet\nspace: {width: 8}\n",
                        ("dataset: got 'imagenet'", "allowed: digits, synthetic")),
    "unknown-sampler": ("space: {width: 8}\nsampler: {name: cmaes}\n",
                        ("sampler.name: got 'cmaes'", "allowed: tpe, random")),
    "unknown-pruner": ("space: {width: 8}\npruner: asha\n",
                       ("pruner.name: got 'asha'", "allowed: none, median")),
    "unknown-pruner-option": ("space: {width: 8}\npruner: {name: median, n_warmup: 2}\n",
                              ("pruner.n_warmup: unknown key", "did you mean 'n_warmup_steps'",
                               "for median")),
    "percentile-missing": ("space: {width: 8}\npruner: {name: percentile}\n",
                           ("pruner.percentile: missing", "percentile needs it")),
    "threshold-no-bounds": ("space: {width: 8}\npruner: {name: threshold}\n",
                            ("pruner.lower: missing", "lower, upper or both")),
    "hyperband-min-above-max": (
        "space: {width: 8}\npruner: {name: hyperband, min_resource: 5, max_resource: 2}\n",
        ("pruner: min_resource 5 is above max_resource 2", "min_resource <= max_resource")),
    "sampler-null": ("space: {width: 8}\nsampler:\n", ("sampler: got None", "'name'")),
    "log-low-zero": ("space: {weight_decay: {type: float, low: 0, high: 1.0e-3, log: true}}\n",
                     ("space.weight_decay.low: got 0.0", "allowed: > 0 with log: true")),
    "log-with-step": ("space: {width: {type: int, low: 8, high: 64, log: true, step: 8}}\n",
                      ("space.width.step", "cannot be combined with log")),
    "stage-list-length": ("space: {stages: 3, blocks_per_stage: [2, 2]}\n",
                          ("space.blocks_per_stage: got 2 values for 3 stages",
                           "allowed: one per stage")),
    "duplicate-key": ("space:\n  width: 8\n  width: 16\n",
                      ("line 3", "key 'width' is given twice", "allowed: each key once")),
    "bad-indentation": ("space:\n  width: 8\n block: basic\n", ("not valid YAML", "line 3")),
    "tab-indented": ("space:\n\twidth: 8\n", ("not valid YAML", "line 2", "'\\t'")),
    "binary-garbage": (bytes(range(256)) * 8, ("not a UTF-8 text file",)),
    "nul-bytes": (b"space:\x00\x00width: 8\n", ("binary data",)),
    "control-character": ("space: {block: \"\x07\"}\n", ("not valid YAML", "#x0007")),
    "empty-file": ("", ("file is empty", "'space:'")),
    "comments-only": ("# nothing here\n", ("file is empty",)),
    "top-level-list": ("- space\n- width\n", ("got ['space', 'width'] at the top level",
                                              "expected a mapping")),
    "top-level-scalar": ("just words\n", ("got 'just words' at the top level",)),
    "two-documents": ("space: {width: 8}\n---\nspace: {width: 16}\n",
                      ("not valid YAML", "another document")),
    "over-1-mib": ("# " + "x" * MAX_FILE_BYTES + "\nspace: {width: 8}\n",
                   ("bytes", f"allowed: at most {MAX_FILE_BYTES}")),
    "python-object-tag": ('space: !!python/object/apply:os.system ["echo hi"]\n',
                          ("YAML tag '!!python/object/apply:os.system' is not allowed",
                           "allowed: plain YAML values")),
    "missing-space": ("name: no-space\nepochs: 3\n", ("space: missing",)),
    "space-null": ("space:\n", ("space: got None", "allowed: a mapping with keys stages")),
    "bad-name-slash": ("name: runs/evil\nspace: {width: 8}\n",
                       ("name: got 'runs/evil'", "allowed: letters, digits")),
    "name-number": ("name: 123\nspace: {width: 8}\n", ("name: got 123",)),
    "block-number": ("space: {block: 3}\n", ("space.block: got 3", "allowed: basic")),
    "null-key": ("space: {~: 8}\n", ("space.None: unknown key",)),
    "int-key": ("space: {8: width}\n", ("space.8: unknown key",)),
    "list-key": ("space: {? [a, b] : 8}\n", ("unhashable key",)),
    "newline-key": ('"spa\\nce": {width: 8}\n', ("'spa\\nce': unknown key",
                                                  "did you mean 'space'")),
    "huge-int": ("space: {lr: " + "9" * 400 + "}\n", ("space.lr: got 999", "a finite number")),
    "nan": ("space: {lr: .nan}\n", ("space.lr: got nan", "a finite number")),
    "deep-nesting": ("space: " + "[" * 3000 + "]" * 3000 + "\n", ("nested too deeply",)),
    "alias-bomb": (LAUGHS, ("space.width: got [[", "allowed: an integer")),
    "unknown-resource": ("space: {width: 8}\ntrial_resources: {cpus: 2}\n",
                         ("trial_resources.cpus: unknown key", "did you mean 'cpu'")),
    "unknown-objective": ("objectives: [val_accuracy, flops]\nspace: {width: 8}\n",
                          ("objectives: got ['val_accuracy', 'flops']", "macs", "latency")),
    "one-objective-pruner-on-two": (
        "objectives: [val_accuracy, macs]\nspace: {width: 8}\npruner: median\n",
        ("pruner: median prunes on one objective and this search has two",
         "allowed: none or pareto")),
    "pareto-on-one-objective": ("space: {width: 8}\npruner: pareto\n",
                                ("pruner: pareto ranks trials on two objectives",)),
    "pareto-on-useful-layers": (
        "objectives: [val_accuracy, useful_layers]\nspace: {width: 8}\npruner: pareto\n",
        ("useful_layers is measured after", "pruner none with useful_layers")),
    "pareto-reduction-one": (
        "objectives: [val_accuracy, params]\nspace: {width: 8}\n"
        "pruner: {name: pareto, reduction_factor: 1}\n",
        ("pruner.reduction_factor: got 1", "an integer >= 2")),
    "latency-batch-zero": ("latency: {batch: 0}\nspace: {width: 8}\n",
                           ("latency.batch: got 0",)),
    "searched-in-candidate": ("space: {width: 8, lr: {type: float, low: 0.01, high: 0.1}}\n",
                              ("space.lr: a candidate file needs one value",
                               "allowed: a single float value")),
}
CANDIDATE_ONLY = {"searched-in-candidate"}  # valid as a space, not as a candidate


def corpus_file(tmp_path: Path, case: str) -> Path:
    content, _ = CORPUS[case]
    return write(tmp_path, content, f"{case}.yaml")


def check_message(message: str, path: Path, expected: tuple[str, ...]) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    for part in expected:
        assert part in message, (part, message)
    assert len(message) < 400, message


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_file_is_one_space_error_line(tmp_path, case):
    path = corpus_file(tmp_path, case)
    load = load_candidate if case in CANDIDATE_ONLY else load_space
    with pytest.raises(SpaceError) as info:
        load(path)
    check_message(str(info.value), path, CORPUS[case][1])
    if case not in CANDIDATE_ONLY:  # load_candidate reads through the same checks
        with pytest.raises(SpaceError) as again:
            load_candidate(path)
        assert str(again.value) == str(info.value)


def test_searched_in_candidate_is_a_valid_space(tmp_path):
    space = load_space(corpus_file(tmp_path, "searched-in-candidate"))
    assert space.searched == {"lr": FloatRange(0.01, 0.1)}


def test_missing_file_folder_and_bad_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpaceError) as info:
        load_candidate(missing)
    check_message(str(info.value), missing, ("file not found",))
    with pytest.raises(SpaceError) as info:
        load_space(tmp_path)
    check_message(str(info.value), tmp_path, ("is a folder",))
    with pytest.raises(SpaceError, match="not a usable file path"):
        load_space(str(tmp_path / "a\x00b.yaml"))


def test_python_tag_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, f'x: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(SpaceError, match="is not allowed"):
        load_space(path)
    assert not marker.exists()


def test_every_space_param_rejects_a_mapping_without_type(tmp_path):
    for name in SPACE_PARAMS:
        path = write(tmp_path, f"space: {{{name}: {{low: 1, high: 2}}}}\n", f"{name}.yaml")
        with pytest.raises(SpaceError) as info:
            load_space(path)
        check_message(str(info.value), path, (f"space.{name}.type: got None", "allowed:"))


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def torchless_env(tmp_path_factory) -> dict[str, str]:
    """PYTHONPATH with a 'torch' that fails on import: bad input must fail before torch."""
    return env_failing_import(tmp_path_factory.mktemp("fake_torch"), "torch",
                              "torch imported while checking a bad file")


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_cli_train_bad_config_exits_2_with_one_line(tmp_path, case, torchless_env):
    path = corpus_file(tmp_path, case)
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", "train", "--config", str(path)],
        cwd=ROOT, env=torchless_env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stderr.endswith("\n"), proc.stderr
    assert lines[0].startswith(f"nas: error: {path}: "), lines[0]
    for part in CORPUS[case][1]:
        assert part in lines[0], (part, lines[0])


def test_cli_train_missing_config_exits_2(tmp_path, torchless_env):
    path = tmp_path / "missing.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "nas.cli", "train", "--config", str(path)],
        cwd=ROOT, env=torchless_env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"nas: error: {path}: file not found\n"


def test_loading_imports_neither_torch_nor_optuna(torchless_env):
    code = (
        "import sys\n"
        "from nas.space import load_space, load_candidate\n"
        f"load_space({str(SHIPPED / 'resnet-digits.yaml')!r})\n"
        f"load_candidate({str(SHIPPED / 'resnet20.yaml')!r})\n"
        "print(sorted(m for m in ('torch', 'optuna') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=torchless_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize(("given", "train_images", "batch"), [
    (None, 1259, 32), (None, 45_000, 128), (None, 60, 16), (None, 1, 16), (None, 4096, 128),
    (None, 2048, 64), (64, 1259, 64), (7, 10, 7)])
def test_the_default_batch_is_scaled_to_the_training_set(given, train_images, batch) -> None:
    assert Candidate(batch_size=given).batch_for(train_images) == batch


def test_batch_size_auto_in_a_file_and_back(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("space: {batch_size: auto}\n")
    assert load_candidate(path).batch_size is None
    path.write_text(candidate_yaml(Candidate(width=8), "c"))
    assert "batch_size: auto" in path.read_text()
    assert load_candidate(path) == Candidate(width=8)
    path.write_text("space: {batch_size: big}\n")
    with pytest.raises(SpaceError, match="batch_size.*or auto"):
        load_candidate(path)
