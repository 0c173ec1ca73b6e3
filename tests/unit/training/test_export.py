"""Exported networks run where resnas is not, and compute what the checkpoint computes.

Real networks trained on the digits (one of each kind the issue names, and a compressed
one through its checkpoint) are exported, then run by a Python that has torch and ONNX
Runtime but cannot import resnas, at batch sizes other than the traced one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, THREADS
from torch import nn

from nas.candidate import Candidate
from nas.errors import NasError
from nas.training.checkpoint import load_checkpoint, save_checkpoint
from nas.training.export import Exported, export_model
from nas.training.loop import train

TINY = Candidate(blocks_per_stage=1, width=8, epochs=1, batch_size=64, lr=0.1, augment=False)
KINDS = {"basic-identity": ("basic", "identity"), "highway-rezero": ("highway", "rezero"),
         "bottleneck-projection": ("bottleneck", "projection")}
SHAPE = (1, 1, 16, 16)  # one digit: what the CLI passes
BATCHES = (1, 13)  # neither is the traced batch (2)
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
NO_ONNX = "the onnx extra (onnx, onnxscript, onnxruntime) is not installed"
# Python's -S skips site-packages and its .pth files (resnas's editable install is one);
# the child puts back only the folder torch and onnxruntime live in, so `import nas` fails.
CHILD = """
import sys
sys.path[:0] = [sys.argv[1]]
try:
    import nas
except ImportError:
    pass
else:
    sys.exit(f"resnas is importable here: {nas.__file__}")
import torch
batches = torch.load(sys.argv[2], weights_only=True)
for exported in sys.argv[3:]:
    if exported.endswith(".pt2"):
        net = torch.export.load(exported).module()
        outputs = [net(x) for x in batches]
    else:
        import onnxruntime
        session = onnxruntime.InferenceSession(exported)
        outputs = [torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
                   for x in batches]
    torch.save([o.detach() for o in outputs], exported + ".out")
"""


def nas(*args: str, cwd: Path, code: str | None = None) -> subprocess.Popen:
    """``nas ARGS`` started as a user starts it; ``code`` runs first in that process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RESNAS_DEBUG", None)
    start = [sys.executable, "-m", "nas.cli"] if code is None else [
        sys.executable, "-c", f"{code}; import sys; from nas.cli import main; "
                              "sys.exit(main(sys.argv[1:]))"]
    return subprocess.Popen([*start, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def checkpoints(digits, tmp_path_factory) -> dict[str, Path]:
    """A trained checkpoint of each kind, and basic/identity without its stride-2 block."""
    folder = tmp_path_factory.mktemp("checkpoints")
    made = {}
    for name, (block, shortcut) in KINDS.items():
        candidate = dataclasses.replace(TINY, block=block, shortcut=shortcut)
        model = train(candidate, digits, threads=THREADS).model
        made[name] = save_checkpoint(folder / f"{name}.pt", model, digits)
        if name == "basic-identity":  # a Bypass of a zero-padding shortcut, as compress leaves
            smaller = copy.deepcopy(model).remove_blocks(["stages.1.0"])
            made["compressed"] = save_checkpoint(folder / "compressed.pt", smaller, digits)
    return made


@dataclasses.dataclass
class Exports:
    results: dict[tuple[str, str], Exported]  # (format, network): what export_model wrote
    command: subprocess.CompletedProcess  # `nas export` of "compressed" to out/compressed.pt2
    got: dict[tuple[str, str], list[torch.Tensor]]  # what the files computed, without resnas
    batches: list[torch.Tensor]


@pytest.fixture(scope="module")
def exports(checkpoints: dict[str, Path], digits, tmp_path_factory) -> Exports:
    """The three kinds in every format installed here, the compressed network through a
    ``nas export`` process (it runs while this one exports the rest), then all of the files
    run by one Python that lacks resnas."""
    folder = tmp_path_factory.mktemp("exports")
    shutil.copyfile(checkpoints["compressed"], folder / "compressed.pt")
    command = nas("export", "compressed.pt", "--format", "pt2", "--out", "out/compressed.pt2",
                  cwd=folder)
    results = {(fmt, name): export_model(load_checkpoint(checkpoints[name])[0],
                                         folder / f"{name}.{fmt}", fmt, SHAPE)
               for fmt in (["pt2", "onnx"] if HAVE_ONNX else ["pt2"]) for name in KINDS}
    done = finished(command)
    files = [folder / f"{name}.{fmt}" for fmt, name in results]
    files += [folder / "out" / "compressed.pt2"] if done.returncode == 0 else []
    batches = [digits.test_x[:n].contiguous() for n in BATCHES]
    torch.save(batches, folder / "inputs.pt")
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    site = str(Path(torch.__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, site,
                           str(folder / "inputs.pt"), *map(str, files)], cwd=elsewhere,
                          env=env, text=True, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {(f.suffix[1:], f.stem): torch.load(f.with_name(f.name + ".out"), weights_only=True)
           for f in files}
    return Exports(results, done, got, batches)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_exports_run_without_resnas_and_match_the_checkpoint(
        fmt: str, exports: Exports, checkpoints: dict[str, Path]) -> None:
    if fmt == "onnx" and not HAVE_ONNX:
        pytest.skip(NO_ONNX)
    for name in KINDS:
        result = exports.results[fmt, name]
        assert result.dynamic_batch, result.fixed_batch_reason
        assert result.input_shape == ("batch", 1, 16, 16)
        assert result.output_shape == ("batch", 10)
        assert result.size == result.path.stat().st_size > 0
        assert not list(result.path.parent.glob("*.tmp"))
    for name, path in checkpoints.items():
        if (fmt, name) == ("onnx", "compressed"):
            continue  # its ONNX file is written by test_export_command_onnx
        model, meta = load_checkpoint(path)
        assert bool(meta["removed"]) == (name == "compressed")
        with torch.no_grad():
            expected = [model.eval()(x) for x in exports.batches]
        for got, want in zip(exports.got[fmt, name], expected, strict=True):
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=name)


def test_every_block_of_the_exported_networks_does_work(checkpoints: dict[str, Path],
                                                        digits) -> None:
    """Each residual block changes the logits: none is still at its initial zero branch
    (rezero's alpha, a zero-initialised last norm), so matching outputs cover them all."""
    x = digits.test_x[:13]
    for name, path in checkpoints.items():
        model = load_checkpoint(path)[0].eval()
        with torch.no_grad():
            full = model(x)
            for block_name, block in model.blocks.items():
                block.lesioned = True
                change = (model(x) - full).abs().max().item()
                block.lesioned = False
                assert change > 1e-3, (name, block_name, change)


class PinnedBatch(nn.Module):
    """Flattens its logits with the batch size written in: no free batch can be traced."""

    def __init__(self, net: nn.Module, batch: int) -> None:
        super().__init__()
        self.net, self.batch = net, batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).reshape(self.batch, -1)


def test_a_network_that_pins_the_batch_is_exported_with_that_batch(
        checkpoints: dict[str, Path], digits, tmp_path: Path) -> None:
    model, _ = load_checkpoint(checkpoints["basic-identity"])
    pinned = PinnedBatch(model, 3).eval()
    result = export_model(pinned, tmp_path / "pinned.pt2", "pt2", (3, 1, 16, 16))
    assert not result.dynamic_batch
    assert "torch.export" in result.fixed_batch_reason and "(3)" in result.fixed_batch_reason
    assert result.input_shape == (3, 1, 16, 16) and result.output_shape == (3, 10)
    program = torch.export.load(result.path).module()
    x = digits.test_x[:3]
    with torch.no_grad():
        torch.testing.assert_close(program(x), pinned(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(Exception, match="3"):  # the file says which batch it takes
        program(digits.test_x[:4])


def test_a_path_that_cannot_be_written_is_one_error(checkpoints: dict[str, Path],
                                                   tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    model, _ = load_checkpoint(checkpoints["basic-identity"])
    with pytest.raises(NasError, match="notes.txt/net.pt2: cannot be written"):
        export_model(model, tmp_path / "notes.txt" / "net.pt2", "pt2", SHAPE)
    with pytest.raises(NasError, match="must end in .pt2"):
        export_model(model, tmp_path / "net.pt", "pt2", SHAPE)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# --------------------------------------------------------------------------- the command


def test_export_command_says_in_one_line_what_it_wrote(exports: Exports) -> None:
    proc = exports.command  # its file ran without resnas, as the checkpoint does
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and proc.stderr == "", proc
    file = exports.results["pt2", "basic-identity"].path.parent / "out" / "compressed.pt2"
    assert lines[0] == (
        f"wrote out/compressed.pt2 (pt2, {file.stat().st_size / 1e3:.1f} KB): input float32 "
        "[batch, 1, 16, 16] (any batch size), output 10 logits; "
        "load: torch.export.load('out/compressed.pt2').module()(x)")


def test_export_command_onnx(checkpoints: dict[str, Path], digits, tmp_path: Path,
                             monkeypatch, capfd) -> None:
    """In this process, to spare a second start of torch and the exporter; capfd still sees
    whatever the exporter prints, at the file-descriptor level."""
    if not HAVE_ONNX:
        pytest.skip(NO_ONNX)
    import onnxruntime

    from nas.cli import main

    shutil.copyfile(checkpoints["compressed"], tmp_path / "compressed.pt")
    monkeypatch.chdir(tmp_path)
    assert main(["export", "compressed.pt", "--format", "onnx", "--out", "c.onnx"]) == 0
    out, err = capfd.readouterr()
    size = (tmp_path / "c.onnx").stat().st_size
    assert err == "" and out == (
        f"wrote c.onnx (onnx, {size / 1e3:.1f} KB): input float32 [batch, 1, 16, 16] "
        "(any batch size), output 10 logits; "
        "load: onnxruntime.InferenceSession('c.onnx').run(None, {'images': x})[0]\n")
    session = onnxruntime.InferenceSession("c.onnx")
    model = load_checkpoint("compressed.pt")[0].eval()
    for n in BATCHES:
        x = digits.test_x[:n]
        with torch.no_grad():
            torch.testing.assert_close(
                torch.from_numpy(session.run(None, {"images": x.numpy()})[0]), model(x),
                atol=1e-5, rtol=1e-5)


def _text(path: Path) -> None:
    path.write_text("not a network\n")


def _folder(path: Path) -> None:
    path.mkdir()


def _torch_dict(path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)  # loads weights-only, but is not ours


BAD = {  # args, the fragments of the one error line, files made beforehand
    "unknown-format": (("net.pt", "--format", "tflite", "--out", "net.tflite"),
                       ("--format", "invalid choice: 'tflite'"), {}),
    "no-out": (("net.pt", "--format", "pt2"), ("required", "--out"), {}),
    "missing-checkpoint": (("gone.pt", "--format", "pt2", "--out", "net.pt2"),
                           ("gone.pt", "checkpoint not found"), {}),
    "folder-as-checkpoint": (("ckpts", "--format", "pt2", "--out", "net.pt2"),
                             ("ckpts", "is a folder"), {"ckpts": _folder}),
    "torch-file-not-ours": (("other.pt", "--format", "pt2", "--out", "net.pt2"),
                            ("other.pt", "not a resnas checkpoint"), {"other.pt": _torch_dict}),
    "out-under-a-file": (("net.pt", "--format", "pt2", "--out", "notes.txt/net.pt2"),
                         ("--out notes.txt/net.pt2", "not a writable folder"),
                         {"notes.txt": _text}),
    "out-is-a-folder": (("net.pt", "--format", "onnx", "--out", "built"),
                        ("--out built", "is a folder"), {"built": _folder}),
    "pt2-without-pt2-suffix": (("net.pt", "--format", "pt2", "--out", "net.bin"),
                               ("--out net.bin", "must end in .pt2"), {}),
    "out-is-the-checkpoint": (("net.pt2", "--format", "pt2", "--out", "./net.pt2"),
                              ("is the checkpoint itself",), {}),
}


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder" for p in sorted(folder.rglob("*"))}


def assert_refused(proc: subprocess.CompletedProcess, fragments: tuple[str, ...]) -> None:
    assert proc.returncode == 2, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and proc.stdout == "", proc
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_line_and_status_2(name: str, checkpoints: dict[str, Path],
                                            tmp_path: Path) -> None:
    args, fragments, files = BAD[name]
    for checkpoint in ("net.pt", "net.pt2"):  # a real one, under the names the cases use
        shutil.copyfile(checkpoints["basic-identity"], tmp_path / checkpoint)
    for file, make in files.items():
        make(tmp_path / file)
    before = snapshot(tmp_path)
    assert_refused(finished(nas("export", *args, cwd=tmp_path)), fragments)
    assert snapshot(tmp_path) == before


def test_onnx_without_the_extra_names_the_install(checkpoints: dict[str, Path],
                                                  tmp_path: Path) -> None:
    shutil.copyfile(checkpoints["basic-identity"], tmp_path / "net.pt")
    before = snapshot(tmp_path)
    # None in sys.modules is how Python marks a module that cannot be imported
    proc = finished(nas("export", "net.pt", "--format", "onnx", "--out", "net.onnx",
                        cwd=tmp_path, code="import sys; sys.modules['onnxscript'] = None"))
    assert_refused(proc, ("--format onnx needs onnxscript", "pip install -e '.[onnx]'"))
    assert snapshot(tmp_path) == before
