"""The nas command as a user runs it: a real process, real output, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from helpers import ROOT

CANDIDATE = str(ROOT / "search_spaces" / "resnet20.yaml")


def nas(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]


def test_console_script_is_installed() -> None:
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("nas") == "nas.cli:run"


def test_help_explains_commands_and_options() -> None:
    top = nas("--help")
    assert top.returncode == 0 and "train" in top.stdout
    sub = nas("train", "--help")
    assert sub.returncode == 0
    for flag in ("--config", "--dataset", "--data-dir", "--download", "--epochs", "--seed",
                 "--save", "--json", "--device", "--threads"):
        assert flag in sub.stdout
    assert "example:" in sub.stdout


def test_train_json_and_checkpoint(tmp_path: Path) -> None:
    ckpt = tmp_path / "out" / "net.pt"
    proc = nas("train", "--config", CANDIDATE, "--epochs", "2", "--seed", "3",
               "--save", str(ckpt), "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in ("val_accuracy", "test_accuracy", "epochs", "params", "layers", "blocks",
                "seconds", "images_per_second"):
        assert key in result
    assert result["epochs"] == 2 and result["layers"] == 20 and result["blocks"] == 9
    assert result["candidate"]["seed"] == 3 and result["device"] == "cpu"
    assert 0 < result["val_accuracy"] <= 1
    # one progress line per epoch on stderr, none on stdout
    assert sum(line.startswith("epoch") for line in proc.stderr.splitlines()) == 2
    payload = torch.load(ckpt, weights_only=True)
    assert payload["candidate"]["seed"] == 3


def test_train_prints_a_summary(tmp_path: Path) -> None:
    proc = nas("train", "--config", CANDIDATE, "--epochs", "1")
    assert proc.returncode == 0, proc.stderr
    assert "20 layers, 9 blocks" in proc.stdout and "val " in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--config", CANDIDATE, "--epochs", "0"], ["--epochs", "integer >= 1"]),
        (["train", "--config", CANDIDATE, "--epochs", "ten"], ["--epochs", "'ten'"]),
        (["train", "--config", CANDIDATE, "--seed", "-1"], ["--seed"]),
        (["train", "--config", CANDIDATE, "--device", "tpu"], ["--device", "cuda"]),
        (["train", "--config", CANDIDATE, "--device", "cuda:x"], ["--device", "cuda:N"]),
        (["train", "--config", CANDIDATE, "--threads", "0"], ["--threads"]),
        (["train", "--config", CANDIDATE, "--bogus"], ["unrecognized arguments: --bogus"]),
        (["train"], ["--config"]),
        (["fly"], ["invalid choice: 'fly'"]),
        (["train", "--config", CANDIDATE, "--dataset", "imagenet"],
         ["--dataset", "imagenet", "allowed:", "digits"]),
        (["train", "--config", "no/such/file.yaml"], ["no/such/file.yaml", "not found"]),
        (["train", "--config", CANDIDATE, "--data-dir", "no/such/dir"], ["--data-dir",
                                                                          "no/such/dir"]),
    ],
)
def test_bad_command_lines_give_one_line_and_status_2(args: list[str],
                                                      fragments: list[str]) -> None:
    assert_one_line_error(nas(*args), *fragments)


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    proc = nas("train", "--config", CANDIDATE, "--dataset", "cifar10", "--data-dir",
               str(tmp_path))
    assert_one_line_error(proc, str(tmp_path), "--download")


def test_unwritable_checkpoint_path_fails_before_training(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    proc = nas("train", "--config", CANDIDATE, "--save", str(folder))
    assert_one_line_error(proc, "--save", "is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = nas("train", "--config", CANDIDATE, "--save", str(blocker / "net.pt"))
    assert_one_line_error(proc, "--save", "not a writable folder")
