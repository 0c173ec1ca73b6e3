"""``nas train``: train one candidate network and report its accuracy."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from nas.cli.args import (
    add_device_arguments,
    check_data_args,
    non_negative_int,
    positive_int,
)
from nas.files import check_writable
from nas.names import DATASETS


def epoch_printer(epochs: int):
    """A training ``report`` callback that prints one line per epoch on stderr (never stops)."""
    def progress(epoch: int, metrics: dict[str, float]) -> bool:
        print(f"epoch {epoch:>3}/{epochs}  loss {metrics['train_loss']:.4f}  "
              f"train {metrics['train_accuracy']:6.2%}  val {metrics['val_accuracy']:6.2%}  "
              f"{metrics['images_per_second']:8.0f} img/s  {metrics['seconds']:5.1f}s",
              file=sys.stderr, flush=True)
        return False
    return progress


def register(commands) -> None:
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
                       help=f"override the file's dataset: {', '.join(DATASETS)}")
    train.add_argument("--data-dir", metavar="DIR",
                       help="where on-disk datasets live (torchvision layout; default ./data)")
    train.add_argument("--download", action="store_true",
                       help="fetch mnist/fashion-mnist/cifar data into --data-dir if missing")
    train.add_argument("--epochs", type=positive_int, metavar="N",
                       help="override the file's epochs")
    train.add_argument("--seed", type=non_negative_int, metavar="N",
                       help="override the file's seed (weights, batches and data split)")
    add_device_arguments(train)
    train.add_argument("--save", metavar="CKPT",
                       help="write a checkpoint (candidate + weights) to this path")
    train.add_argument("--json", action="store_true",
                       help="print one JSON object with the results instead of a summary")
    train.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from nas.space import load_candidate

    # Check every input before torch is even imported: bad input fails fast.
    candidate = load_candidate(args.config)
    overrides = {k: getattr(args, k) for k in ("dataset", "epochs", "seed")
                 if getattr(args, k) is not None}
    check_data_args(args)
    candidate = dataclasses.replace(candidate, **overrides)
    if args.save:
        check_writable(Path(args.save))

    from nas import data
    from nas.training.checkpoint import save_checkpoint
    from nas.training.device import resolve_device
    from nas.training.loop import train

    device = resolve_device(args.device)
    splits = data.load(candidate.dataset, data_dir=args.data_dir, download=args.download,
                       seed=candidate.seed, device=device, options=candidate.data)

    progress = epoch_printer(candidate.epochs)

    print(f"training {candidate.describe(training=False)} on {candidate.dataset} "
          f"({len(splits.train_x)} train / {len(splits.val_x)} val images) for "
          f"{candidate.epochs} epochs on {device}", file=sys.stderr, flush=True)
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
