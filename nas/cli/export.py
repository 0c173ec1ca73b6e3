"""``nas export``: a checkpoint's network as a file that torch or ONNX Runtime runs without
resnas, for deployment."""

from __future__ import annotations

import argparse
import importlib.util
import warnings
from pathlib import Path

from nas.errors import NasError
from nas.files import check_writable

# Kept beside nas.training.export's own checks: these run before torch is imported.
ONNX_PACKAGES = ("onnx", "onnxscript")
ONNX_INSTALL = "pip install -e '.[onnx]' (the Makefile's .venv has it)"

DESCRIPTION = """\
Write a trained network (a checkpoint from 'nas train --save', 'nas compress --save' or
'nas search') as a file that runs without resnas:

  pt2   a torch.export program; needs only torch:
          torch.export.load(FILE).module()(x)
  onnx  an ONNX model (needs the onnx extra: pip install -e '.[onnx]'); runs in
        ONNX Runtime or any ONNX runtime:
          onnxruntime.InferenceSession(FILE).run(None, {'images': x})[0]

x is a float32 batch N x C x H x W of the checkpoint's image shape, normalised as
resnas normalises its data (each channel by the training split's mean and std); any
batch size N runs (where a network pins it, the line printed says so). The output is
N x classes logits (softmax gives probabilities). The network is exported in eval mode,
on the CPU."""


def register(commands) -> None:
    export = commands.add_parser(
        "export", help="write a trained network as a torch.export (.pt2) or ONNX file",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: nas train --config search_spaces/resnet20.yaml --save r20.pt && "
               "nas export r20.pt --format onnx --out r20.onnx")
    export.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint written by 'nas train --save', "
                             "'nas compress --save' or 'nas search'")
    export.add_argument("--format", required=True, choices=("pt2", "onnx"),
                        help="pt2 (torch.export, file name *.pt2) or onnx")
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    export.set_defaults(run=run_export)


def check_export_args(args: argparse.Namespace) -> None:
    """Every mistake a user can make here, found before torch's seconds of importing."""
    checkpoint, out = Path(args.checkpoint), Path(args.out)
    if checkpoint.is_dir():
        raise NasError(f"{checkpoint}: is a folder; allowed: a checkpoint file")
    if not checkpoint.is_file():
        raise NasError(f"{checkpoint}: checkpoint not found")
    check_writable(out, "--out")
    if out.resolve() == checkpoint.resolve():
        raise NasError(f"--out {out}: is the checkpoint itself; allowed: a new file")
    if args.format == "pt2" and out.suffix != ".pt2":
        raise NasError(f"--out {out}: a pt2 file's name must end in .pt2 "
                       "(torch.export.load expects it)")
    if args.format == "onnx":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise NasError(f"--format onnx needs {' and '.join(missing)}, not installed: "
                           f"{ONNX_INSTALL}")


def file_size(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    return f"{size / 1e3:.1f} KB" if size < 1e6 else f"{size / 1e6:.1f} MB"


def run_export(args: argparse.Namespace) -> int:
    check_export_args(args)
    from nas.training.checkpoint import load_checkpoint
    from nas.training.export import export_model

    with warnings.catch_warnings():  # the error for a file that is not ours says enough
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        model, meta = load_checkpoint(args.checkpoint, device="cpu")
    shape = meta["input"]
    size = shape["image_size"]
    result = export_model(model, args.out, args.format,
                          example_input_shape=(1, shape["in_channels"], size, size))
    dims = ", ".join(map(str, result.input_shape))
    batch = ("any batch size" if result.dynamic_batch
             else f"batch fixed at {result.input_shape[0]}: {result.fixed_batch_reason}")
    print(f"wrote {result.path} ({args.format}, {file_size(result.size)}): input float32 "
          f"[{dims}] ({batch}), output {result.output_shape[-1]} logits; "
          f"load: {result.how_to_load}")
    return 0
