"""The ``nas`` command line.

Every user mistake (a bad file, flag, path) ends as one line on stderr and
exit status 2; a traceback reaching the user is a bug, so unexpected errors
are shortened to one line too unless ``RESNAS_DEBUG=1`` asks for the trace.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import __version__
from nas.errors import Diverged, NasError

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the flag and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: an integer >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: an integer >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: an integer >= 0")
    return value


def device_name(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or text.startswith("cuda:"):
        return text
    raise argparse.ArgumentTypeError(f"got '{text}'; allowed: auto, cpu, cuda, cuda:N")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nas",
        description="Neural-architecture search for residual networks that measures how many "
                    "of each network's layers are actually useful.",
        epilog="Run 'nas COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"resnas {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", help="train one candidate network and report its accuracy",
        description="Train the network a candidate file describes (a space file whose values "
                    "are all fixed) and print its validation and test accuracy. Progress goes "
                    "to stderr, one line per epoch.",
        epilog="example: nas train --config search_spaces/resnet20.yaml --epochs 10 "
               "--save results/resnet20.pt",
    )
    train.add_argument("--config", required=True, metavar="FILE",
                       help="candidate YAML file (every value under space: fixed)")
    train.add_argument("--dataset", metavar="NAME",
                       help="override the file's dataset: digits, synthetic, mnist, "
                            "fashion-mnist, cifar10, cifar100, imagefolder")
    train.add_argument("--data-dir", metavar="DIR",
                       help="where on-disk datasets live (torchvision layout; default ./data)")
    train.add_argument("--download", action="store_true",
                       help="fetch mnist/fashion-mnist/cifar data into --data-dir if missing")
    train.add_argument("--epochs", type=positive_int, metavar="N",
                       help="override the file's epochs")
    train.add_argument("--seed", type=non_negative_int, metavar="N",
                       help="override the file's seed (weights, batches and data split)")
    train.add_argument("--device", type=device_name, default="auto",
                       help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N "
                            "(default: auto)")
    train.add_argument("--threads", type=positive_int, metavar="N",
                       help="CPU threads for torch (default: the CPUs this process may use)")
    train.add_argument("--save", metavar="CKPT",
                       help="write a checkpoint (candidate + weights) to this path")
    train.add_argument("--json", action="store_true",
                       help="print one JSON object with the results instead of a summary")
    train.set_defaults(run=run_train)
    return parser


def run_train(args: argparse.Namespace) -> int:
    from nas.space import DATASET_NAMES, load_candidate

    # Check every input before torch is even imported: bad input fails fast.
    candidate = load_candidate(args.config)
    overrides = {k: getattr(args, k) for k in ("dataset", "epochs", "seed")
                 if getattr(args, k) is not None}
    if args.dataset is not None and args.dataset not in DATASET_NAMES:
        raise NasError(f"--dataset: got '{args.dataset}'; allowed: {', '.join(DATASET_NAMES)}")
    candidate = dataclasses.replace(candidate, **overrides)
    if args.save:
        _check_writable(Path(args.save))
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise NasError(f"--data-dir {args.data_dir}: no such folder")

    from nas import data
    from nas.train import resolve_device, save_checkpoint, train

    device = resolve_device(args.device)
    splits = data.load(candidate.dataset, data_dir=args.data_dir, download=args.download,
                       seed=candidate.seed, device=device, options=candidate.data)

    def progress(epoch: int, metrics: dict[str, float]) -> bool:
        print(f"epoch {epoch:>3}/{candidate.epochs}  loss {metrics['train_loss']:.4f}  "
              f"train {metrics['train_accuracy']:6.2%}  val {metrics['val_accuracy']:6.2%}  "
              f"{metrics['images_per_second']:8.0f} img/s  {metrics['seconds']:5.1f}s",
              file=sys.stderr, flush=True)
        return False

    print(f"training {candidate.block}/{candidate.shortcut} "
          f"{'x'.join(map(str, candidate.stage_depths))} blocks, width {candidate.width} on "
          f"{candidate.dataset} ({len(splits.train_x)} train / {len(splits.val_x)} val images) "
          f"for {candidate.epochs} epochs on {device}", file=sys.stderr, flush=True)
    result = train(candidate, splits, report=progress, device=device, threads=args.threads)
    if args.save:
        save_checkpoint(args.save, result.model, splits, extra={"result": result.to_dict()})
    if args.json:
        out = result.to_dict()
        out["device"] = str(device)
        out["candidate"] = candidate.to_dict()
        print(json.dumps(out))
    else:
        print(f"{result.layers} layers, {result.blocks} blocks, {result.params:,} parameters: "
              f"val {result.val_accuracy:.2%}, test {result.test_accuracy:.2%} after "
              f"{result.epochs} epochs in {result.seconds:.1f}s "
              f"({result.images_per_second:,.0f} images/s)")
        if args.save:
            print(f"checkpoint: {args.save}")
    return 0


def _check_writable(path: Path) -> None:
    """Fail before training, not after, when the checkpoint cannot be written."""
    folder = path.parent if str(path.parent) else Path(".")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if path.is_dir():
        raise NasError(f"--save {path}: is a folder; allowed: a file path")
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        raise NasError(f"--save {path}: {probe} is not a writable folder")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Diverged as exc:
        print(f"nas: {exc}; try a lower lr or a smaller network", file=sys.stderr)
        return 1
    except NasError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in resnas: keep it to one line unless asked
        if os.environ.get("RESNAS_DEBUG"):
            raise
        message = " ".join(str(exc).split())[:300]
        print(f"nas: internal error: {type(exc).__name__}: {message} "
              "(set RESNAS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
