"""Bad input to every ``nas`` command: one line naming the problem, exit status 2, no
traceback, and nothing written anywhere.

Each case is a real ``nas`` process run in a fresh folder (its cwd, so a relative default
such as ``results/`` lands there too) with an explicit ``--storage`` and ``--results`` in
that folder where the command takes them. The folder is snapshotted (every path, every
file's SHA-256) before and after: a storage created, a study or trial added to a storage
the case made beforehand, a report, a checkpoint or a file an evil YAML tag would write,
all show as a difference. A ``ray`` that fails on import is put first on PYTHONPATH: bad
input must be refused before Ray is even imported, let alone started.

Space-file mistakes of every kind are in tests/unit/space/test_space.py (about 60 files through
``load_space`` and ``nas train``); this corpus covers the other commands, flags, storages,
data folders, checkpoints and the files no parser should read (a FIFO, a device, 50 MB).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT, env_failing_import

SPACES = ROOT / "search_spaces"
DIGITS_SPACE = str(SPACES / "resnet-digits.yaml")
CANDIDATE = str(SPACES / "resnet20.yaml")
PASSWORD = "hunter2"  # must never be printed: only '***'

# --------------------------------------------------------------------------- inputs


def _fifo(path: Path, shared: dict) -> None:
    os.mkfifo(path)  # nobody ever writes to it: reading it would wait forever


def _folder(path: Path, shared: dict) -> None:
    path.mkdir()


def _storage(path: Path, shared: dict) -> None:
    shutil.copyfile(shared["storage"], path)  # a storage holding one study, no trials


def _empty_storage(path: Path, shared: dict) -> None:
    shutil.copyfile(shared["empty_storage"], path)  # a storage without studies


def _checkpoint(path: Path, shared: dict) -> None:
    shutil.copyfile(shared["checkpoint"], path)  # a real digits checkpoint (1 channel, 16 px)


def _torch_dict(path: Path, shared: dict) -> None:
    import torch

    torch.save({"weights": torch.zeros(3)}, path)  # loads weights-only, but is not ours


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def _evil_pickle(path: Path, shared: dict) -> None:
    path.write_bytes(pickle.dumps(_RunsShell()))  # runs a shell command if ever unpickled


def _bytes_of(size: int, head: bytes = b"", line: bytes = b"") -> Callable[[Path, dict], None]:
    def make(path: Path, shared: dict) -> None:
        with path.open("wb") as out:
            out.write(head)
            written = len(head)
            chunk = line * max(1, (1 << 20) // max(1, len(line)))
            while written < size:
                out.write(chunk)
                written += len(chunk)
    return make


HUGE_YAML = _bytes_of(20 << 20, b"space:\n", b"  # block: basic, width: 16, lr: 0.1\n")
ONE_LONG_LINE = _bytes_of(50 << 20, b"space: {width: ", b"9" * 4096)
# Bytes of an ELF header and every byte value: not text in any sense.
GARBAGE = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 16


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    expect: tuple[str, ...]  # substrings of the one error line
    files: tuple[tuple[str, Any], ...] = ()  # name in the case's folder -> text, bytes or maker


def case(*args: str, expect: tuple[str, ...] | str, files: dict[str, Any] | None = None) -> Case:
    return Case(args, (expect,) if isinstance(expect, str) else expect,
                tuple((files or {}).items()))


# {tmp} is the case's folder, {db} an SQLite URL for {tmp}/nas.db, {results} {tmp}/results.
SEARCH = ("search", "--storage", "{db}", "--results", "{results}")
SEARCH_DIGITS = (*SEARCH, "--space", DIGITS_SPACE)
BROKEN_YAML = "space:\n  width: 8\n block: basic\n"

CASES: dict[str, Case] = {
    # --- space and candidate files
    "search-broken-yaml": case(*SEARCH, "--space", "broken.yaml",
                               expect=("broken.yaml", "not valid YAML", "line 3"),
                               files={"broken.yaml": BROKEN_YAML}),
    "search-binary-garbage": case(*SEARCH, "--space", "garbage.yaml",
                                  expect=("garbage.yaml", "not a UTF-8 text file"),
                                  files={"garbage.yaml": GARBAGE}),
    "train-nul-bytes": case("train", "--config", "nul.yaml",
                            expect=("nul.yaml", "binary data (NUL bytes)"),
                            files={"nul.yaml": b"space:\x00\x00  width: 8\n"}),
    "search-empty-file": case(*SEARCH, "--space", "empty.yaml",
                              expect=("empty.yaml", "file is empty"), files={"empty.yaml": ""}),
    "search-huge-file-20mb": case(*SEARCH, "--space", "huge.yaml",
                                  expect=("huge.yaml", "bytes; allowed: at most 1048576"),
                                  files={"huge.yaml": HUGE_YAML}),
    "train-one-50mb-line": case("train", "--config", "long.yaml",
                                expect=("long.yaml", "bytes; allowed: at most 1048576"),
                                files={"long.yaml": ONE_LONG_LINE}),
    "search-python-object-tag": case(
        *SEARCH, "--space", "evil.yaml",
        expect=("evil.yaml", "YAML tag '!!python/object/apply:os.system' is not allowed"),
        files={"evil.yaml": 'space: !!python/object/apply:os.system ["touch pwned"]\n'}),
    "train-python-name-tag": case(
        "train", "--config", "evil.yaml",
        expect=("evil.yaml", "YAML tag '!!python/name:os.system' is not allowed"),
        files={"evil.yaml": "name: !!python/name:os.system\nspace: {width: 8}\n"}),
    "search-unknown-key": case(*SEARCH, "--space", "typo.yaml",
                               expect=("typo.yaml", "space.blokc: unknown key",
                                       "did you mean 'block'"),
                               files={"typo.yaml": "space:\n  blokc: basic\n"}),
    "search-wrong-type": case(*SEARCH, "--space", "type.yaml",
                              expect=("type.yaml", "space.width: got 'wide'", "allowed:"),
                              files={"type.yaml": 'space: {width: "wide"}\n'}),
    "search-space-is-a-folder": case(*SEARCH, "--space", "spaces",
                                     expect=("spaces", "is a folder"), files={"spaces": _folder}),
    "search-space-is-a-fifo": case(*SEARCH, "--space", "fifo.yaml",
                                   expect=("fifo.yaml", "not a regular file"),
                                   files={"fifo.yaml": _fifo}),
    "train-config-is-a-device": case("train", "--config", "/dev/zero",
                                     expect=("/dev/zero", "not a regular file")),
    "search-space-missing": case(*SEARCH, "--space", "nope.yaml",
                                 expect=("nope.yaml", "file not found")),
    "train-file-name-with-newline": case("train", "--config", "two\nlines.yaml",
                                         expect=("two\\nlines.yaml", "file not found")),
    "train-candidate-with-searched-value": case(
        "train", "--config", "cand.yaml",
        expect=("cand.yaml", "space.lr: a candidate file needs one value"),
        files={"cand.yaml": "space: {width: 8, lr: {type: float, low: 0.01, high: 0.1}}\n"}),
    "train-config-is-a-space-file": case(
        "train", "--config", DIGITS_SPACE,
        expect=("resnet-digits.yaml", "a candidate file needs one value")),
    "train-candidate-stage-list-does-not-fit": case(
        "train", "--config", "cand.yaml",
        expect=("cand.yaml", "space.blocks_per_stage: got 2 values for 3 stages"),
        files={"cand.yaml": "space: {stages: 3, blocks_per_stage: [2, 2]}\n"}),
    # --- flags
    "search-trials-zero": case(*SEARCH_DIGITS, "--trials", "0",
                               expect=("--trials", "got '0'", "an integer >= 1")),
    "search-trials-negative": case(*SEARCH_DIGITS, "--trials", "-3", expect=("--trials", "'-3'")),
    "search-trials-not-a-number": case(*SEARCH_DIGITS, "--trials", "lots",
                                       expect=("--trials", "'lots'")),
    "search-trials-with-newline": case(*SEARCH_DIGITS, "--trials", "3\n4",
                                       expect=("--trials", "'3\\n4'")),
    "search-epochs-fraction": case(*SEARCH_DIGITS, "--epochs", "0.5", expect=("--epochs", "'0.5'")),
    # port 1 (tcpmux) listens nowhere: Ray itself would wait for a cluster there forever
    "search-address-nobody-answers": case(*SEARCH_DIGITS, "--address", "127.0.0.1:1",
                                          expect=("--address 127.0.0.1:1",
                                                  "no Ray cluster answers")),
    "train-epochs-negative": case("train", "--config", CANDIDATE, "--epochs", "-1",
                                  expect=("--epochs", "'-1'", "an integer >= 1")),
    "compress-epochs-negative": case("compress", "model.pt", "--epochs", "-2",
                                     expect=("--epochs", "an integer >= 0")),
    "search-cpus-per-trial-zero": case(*SEARCH_DIGITS, "--cpus-per-trial", "0",
                                       expect=("--cpus-per-trial", "a number > 0")),
    "search-cpus-per-trial-nan": case(*SEARCH_DIGITS, "--cpus-per-trial", "nan",
                                      expect=("--cpus-per-trial", "'nan'")),
    "search-cpus-per-trial-beyond-machine": case(
        *SEARCH_DIGITS, "--cpus-per-trial", "4096",
        expect=("--cpus-per-trial 4096: this machine has", "allowed: at most")),
    "search-gpus-per-trial-negative": case(*SEARCH_DIGITS, "--gpus-per-trial", "-0.5",
                                           expect=("--gpus-per-trial", "a number >= 0")),
    "search-gpus-per-trial-beyond-machine": case(
        *SEARCH_DIGITS, "--gpus-per-trial", "64",
        expect=("--gpus-per-trial 64: this machine has", "allowed:")),
    "search-max-concurrent-zero": case(*SEARCH_DIGITS, "--max-concurrent", "0",
                                       expect="--max-concurrent"),
    "search-seed-negative": case(*SEARCH_DIGITS, "--seed", "-1", expect="--seed"),
    "search-unknown-sampler": case(*SEARCH_DIGITS, "--sampler", "cmaes",
                                   expect=("--sampler", "'cmaes'", "tpe")),
    "search-unknown-pruner": case(*SEARCH_DIGITS, "--pruner", "asha",
                                  expect=("--pruner", "'asha'", "hyperband")),
    "search-pruner-needs-options": case(*SEARCH_DIGITS, "--pruner", "percentile",
                                        expect=("--pruner percentile", "needs options")),
    "search-study-name-escapes-results": case(*SEARCH_DIGITS, "--study", "../../escape",
                                              expect=("--study ../../escape",
                                                      "not a usable study name")),
    "search-results-is-a-file": case(*SEARCH_DIGITS[:3], "--space", DIGITS_SPACE,
                                     "--results", "afile",
                                     expect=("--results", "not a writable folder"),
                                     files={"afile": "x\n"}),
    "dashboard-port-zero": case("dashboard", "--storage", "{db}", "--port", "0",
                                expect=("--port", "a port from 1 to 65535")),
    "dashboard-port-not-a-number": case("dashboard", "--storage", "{db}", "--port", "http",
                                        expect=("--port", "'http'")),
    "analyze-tolerance-above-one": case("analyze", "model.pt", "--tolerance", "1.5",
                                        expect=("--tolerance", "'1.5'")),
    "train-unknown-device": case("train", "--config", CANDIDATE, "--device", "tpu",
                                 expect=("--device", "'tpu'")),
    # --- datasets and data folders
    "search-unknown-dataset": case(*SEARCH_DIGITS, "--dataset", "imagenet",
                                   expect=("--dataset", "'imagenet'", "allowed: digits")),
    "analyze-unknown-dataset": case("analyze", "model.pt", "--dataset", "imagenet",
                                    expect=("--dataset", "'imagenet'"),
                                    files={"model.pt": _checkpoint}),
    "search-data-dir-missing": case(*SEARCH_DIGITS, "--data-dir", "no/such/dir",
                                    expect=("--data-dir no/such/dir", "no such folder")),
    "compress-data-dir-missing": case("compress", "model.pt", "--data-dir", "nodata",
                                      expect=("--data-dir nodata", "no such folder"),
                                      files={"model.pt": _checkpoint}),
    "search-cifar10-empty-data-dir": case(*SEARCH_DIGITS, "--dataset", "cifar10",
                                          "--data-dir", "data",
                                          expect=("cifar10 not found", "--download"),
                                          files={"data": _folder}),
    "train-mnist-empty-data-dir": case("train", "--config", CANDIDATE, "--dataset", "mnist",
                                       "--data-dir", "data",
                                       expect=("mnist not found", "--download"),
                                       files={"data": _folder}),
    "search-imagefolder-without-classes": case(*SEARCH_DIGITS, "--dataset", "imagefolder",
                                               "--data-dir", "data",
                                               expect=("imagefolder", "class subfolder"),
                                               files={"data": _folder}),
    # --- storages
    "search-storage-unknown-database": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}",
        "--storage", f"postgre://resnas:{PASSWORD}@db/nas",
        expect=("--storage postgre://resnas:***@db/nas", "unknown database 'postgre'")),
    "search-storage-sqlite-without-path": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}", "--storage", "sqlite://",
        expect=("--storage sqlite://", "needs a file")),
    "search-storage-sqlite-in-memory": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}",
        "--storage", "sqlite:///:memory:", expect=("sqlite:///:memory:", "needs a file")),
    "search-storage-empty": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}", "--storage", "",
        expect="--storage is empty"),
    "search-storage-is-a-folder": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}",
        "--storage", "sqlite:///{tmp}/db", expect=("--storage", "is a folder"),
        files={"db": _folder}),
    "search-storage-under-a-file": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}",
        "--storage", "sqlite:///{tmp}/afile/nas.db",
        expect=("--storage", "afile is not a writable folder"), files={"afile": "x\n"}),
    "search-storage-not-a-database": case(
        *SEARCH_DIGITS, expect=("--storage", "file is not a database"),
        files={"nas.db": "this is not a database\n" * 100}),
    "search-storage-server-refuses": case(
        "search", "--space", DIGITS_SPACE, "--results", "{results}",
        "--storage", f"postgresql://resnas:{PASSWORD}@127.0.0.1:1/nas",
        expect=("--storage postgresql://resnas:***@127.0.0.1:1/nas", "cannot open")),
    "studies-storage-driver-missing": case(
        "studies", "--storage", f"mysql+nosuchdriver://resnas:{PASSWORD}@db/nas",
        expect=("--storage mysql+nosuchdriver://resnas:***@db/nas",)),
    "studies-storage-missing-file": case(
        "studies", "--storage", "{db}", expect=("--storage", "no such database file")),
    "studies-no-default-storage": case("studies", expect="no storage at sqlite:///results/nas.db"),
    "studies-journal-is-a-folder": case(
        "studies", "--storage", "{tmp}/journal", expect=("--storage", "no such journal file"),
        files={"journal": _folder}),
    "report-storage-not-a-database": case(
        "report", "--storage", "{db}",
        expect=("--storage", "cannot open ((sqlite3.DatabaseError) file is not a database)"),
        files={"nas.db": "this is not a database\n" * 100}),
    "report-study-missing": case("report", "--storage", "{db}", "--study", "nope",
                                 expect=("--study nope: not in", "allowed: resnet-digits"),
                                 files={"nas.db": _storage}),
    "report-storage-without-studies": case("report", "--storage", "{db}",
                                           expect=("no study in", "run 'nas search' first"),
                                           files={"nas.db": _empty_storage}),
    "best-study-missing": case("best", "--storage", "{db}", "--study", "nope",
                               "--export", "best.yaml",
                               expect=("--study nope: not in", "allowed: resnet-digits"),
                               files={"nas.db": _storage}),
    "best-trial-missing": case("best", "--storage", "{db}", "--trial", "7",
                               expect=("--trial 7", "no complete trial 7"),
                               files={"nas.db": _storage}),
    "best-study-without-trials": case("best", "--storage", "{db}",
                                      expect=("study 'resnet-digits'", "no complete trial"),
                                      files={"nas.db": _storage}),
    "dashboard-study-missing": case("dashboard", "--storage", "{db}", "--study", "nope",
                                    expect=("--study nope: not in",),
                                    files={"nas.db": _storage}),
    # --- checkpoints
    "analyze-text-file": case("analyze", "notes.txt",
                              expect=("notes.txt", "not a resnas checkpoint"),
                              files={"notes.txt": "hello\n"}),
    "compress-yaml-file": case("compress", CANDIDATE,
                               expect=("resnet20.yaml", "not a resnas checkpoint")),
    "analyze-missing-checkpoint": case("analyze", "gone.pt", expect=("gone.pt",
                                                                     "checkpoint not found")),
    "analyze-folder-as-checkpoint": case("analyze", "ckpts", expect=("ckpts", "is a folder"),
                                         files={"ckpts": _folder}),
    "compress-evil-pickle": case("compress", "evil.pt", "--save", "small.pt",
                                 expect=("evil.pt", "not a resnas checkpoint"),
                                 files={"evil.pt": _evil_pickle}),
    "analyze-torch-file-not-ours": case("analyze", "other.pt",
                                        expect=("other.pt", "not a resnas checkpoint"),
                                        files={"other.pt": _torch_dict}),
    "verify-depth-missing-checkpoint": case("verify-depth", "gone.pt",
                                            expect=("gone.pt", "checkpoint not found")),
    "verify-depth-evil-pickle": case("verify-depth", "evil.pt",
                                     expect=("evil.pt", "not a resnas checkpoint"),
                                     files={"evil.pt": _evil_pickle}),
    "verify-depth-tolerance-negative": case("verify-depth", "model.pt", "--tolerance", "-0.1",
                                            expect=("--tolerance", "'-0.1'"),
                                            files={"model.pt": _checkpoint}),
    "analyze-checkpoint-for-other-data": case(
        "analyze", "model.pt", "--dataset", "synthetic",
        expect=("--dataset synthetic: 3 channels", "the checkpoint expects 1 channels"),
        files={"model.pt": _checkpoint}),
}
COMMANDS = {"search", "train", "report", "best", "studies", "dashboard", "analyze", "compress",
            "verify-depth"}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict[str, Path]:
    """Made once: a storage with one study, one without, a real checkpoint."""
    import optuna
    import torch

    from nas import data
    from nas.candidate import Candidate
    from nas.models.resnet import build_model
    from nas.study.storage import open_storage
    from nas.training.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("shared")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = {"storage": folder / "nas.db", "empty_storage": folder / "empty.db",
            "checkpoint": folder / "model.pt"}
    storage = open_storage(f"sqlite:///{made['storage']}")
    optuna.create_study(study_name="resnet-digits", storage=storage, direction="maximize")
    storage.engine.dispose()
    open_storage(f"sqlite:///{made['empty_storage']}").engine.dispose()
    candidate = Candidate(stages=1, blocks_per_stage=1, width=4)
    x, y = torch.zeros(3, 1, 16, 16), torch.arange(3) % 10
    splits = data.Splits("digits", x, y, x, y, x, y, num_classes=10, augment="crop")
    save_checkpoint(made["checkpoint"], build_model(candidate, 1, 10, 16), splits)
    return made


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A 'ray' that fails on import first on PYTHONPATH: bad input never gets near Ray."""
    return env_failing_import(tmp_path_factory.mktemp("fake_ray"), "ray",
                              "ray imported while checking bad input",
                              drop=("RESNAS_DEBUG", "RAY_ADDRESS", "RESNAS_HEARTBEAT_S"))


def snapshot(folder: Path) -> dict[str, str]:
    """Every path under ``folder`` with its file's SHA-256 (or its kind)."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            seen[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[str(path.relative_to(folder))] = f"mode {stat.S_IFMT(mode):o}"
    return seen


# --------------------------------------------------------------------------- tests


def test_corpus_covers_every_command_and_is_large_enough() -> None:
    assert len(CASES) >= 35
    assert {c.args[0] for c in CASES.values()} == COMMANDS


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_status_2_and_writes_nothing(
        name: str, tmp_path: Path, shared: dict, env: dict) -> None:
    spec = CASES[name]
    for file_name, content in spec.files:
        target = tmp_path / file_name
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif isinstance(content, str):
            target.write_text(content, encoding="utf-8")
        else:
            content(target, shared)
    made_storage = (tmp_path / "nas.db").exists()
    before = snapshot(tmp_path)
    places = {"{db}": f"sqlite:///{tmp_path / 'nas.db'}", "{results}": str(tmp_path / "results"),
              "{tmp}": str(tmp_path)}
    args = []
    for arg in spec.args:
        for key, value in places.items():
            arg = arg.replace(key, value)
        args.append(arg)

    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - started

    shown = f"{name} ({seconds:.1f}s): exit {proc.returncode}\nstdout: {proc.stdout!r}\n" \
            f"stderr: {proc.stderr!r}"
    assert "Traceback" not in proc.stdout + proc.stderr, shown
    assert proc.returncode == 2, shown
    assert proc.stdout == "", shown
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), shown
    line = lines[0]
    assert line.startswith("nas") and "error: " in line, shown
    for part in spec.expect:
        assert part in line, (part, shown)
    assert PASSWORD not in proc.stdout + proc.stderr, shown
    # Nothing written: no storage unless the case made one, and that one byte for byte as it
    # was (no study, no trial); no results, report, checkpoint or file an evil tag makes.
    assert (tmp_path / "nas.db").exists() == made_storage, shown
    assert snapshot(tmp_path) == before, shown


def test_checking_a_storage_creates_nothing(tmp_path: Path) -> None:
    """What 'nas search' checks before the data and Ray: a new file is only created later."""
    from nas.study.storage import check_storage

    assert check_storage(f"sqlite:///{tmp_path / 'deep' / 'nas.db'}") is False
    assert check_storage(str(tmp_path / "deep" / "journal.log")) is False
    assert list(tmp_path.iterdir()) == []  # not the file, not its folder
    (tmp_path / "nas.db").write_bytes(b"")
    assert check_storage(f"sqlite:///{tmp_path / 'nas.db'}") is True
    # a server is not reached here (no connection to 127.0.0.1:1 is tried)
    assert check_storage(f"postgresql://resnas:{PASSWORD}@127.0.0.1:1/nas") is True
