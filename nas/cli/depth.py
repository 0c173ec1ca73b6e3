"""``nas analyze``, ``nas compress`` and ``nas verify-depth``: how much of a trained
network's depth it uses, the network without the rest, and one that deep trained from
scratch."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from nas.cli.args import (
    add_checkpoint_arguments,
    check_data_args,
    non_negative_int,
)
from nas.errors import NasError
from nas.files import check_writable


def register(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="measure how many of a trained network's layers are useful",
        description="Lesion each residual block of a trained network (compute as if its "
                    "branch were zero) on half of the validation split, then remove blocks "
                    "one by one, smallest loss rise first; the useful depth is where "
                    "accuracy first falls more than --tolerance below the full network, "
                    "with a 90% bootstrap interval. The other half, which took no part in "
                    "choosing, reports what removing the blocks costs, and Veit et al.'s "
                    "random deletions. Prints the per-block table (with block influence "
                    "and CKA) and the useful depth.",
        epilog="example: nas train --config search_spaces/resnet20.yaml --save r20.pt && "
               "nas analyze r20.pt")
    add_checkpoint_arguments(analyze)
    analyze.add_argument("--curve", action="store_true",
                         help="also print the whole lesion curve: accuracy and loss after "
                              "each removal in the greedy order, until every removable "
                              "block is gone")
    analyze.set_defaults(run=run_analyze)

    compress = commands.add_parser(
        "compress", help="remove the removable blocks, fine-tune, compare with the full net",
        description="Build the network without the blocks 'nas analyze' finds removable and "
                    "fine-tune it; fine-tune a copy of the full network the same way (the "
                    "control, since fine-tuning alone gains accuracy); print the three "
                    "networks' accuracy and size, the cost of removal (compressed minus "
                    "control) and the inference speed ratio, timed in alternation with its "
                    "spread. With nothing removable it says so in one line and stops.")
    add_checkpoint_arguments(compress)
    compress.add_argument("--epochs", type=non_negative_int, default=3, metavar="N",
                          help="fine-tuning epochs (default: 3; 0 = none, and no control)")
    compress.add_argument("--save", metavar="OUT", help="write the compressed checkpoint here")
    compress.add_argument("--force", action="store_true",
                          help="fine-tune (and --save) a copy even when no block is removable")
    compress.set_defaults(run=run_compress)

    verify = commands.add_parser(
        "verify-depth", help="train a network of the measured useful depth from scratch and "
                             "compare it with the full one",
        description="Measure the useful depth as 'nas analyze' does, build the same candidate "
                    "with each stage shortened by its removable blocks (at least one block a "
                    "stage), train it from scratch with the checkpoint's own settings and seed "
                    "(epochs, lr, schedule, batch, data split), and print both networks' "
                    "validation and test accuracy: does a network of the useful depth learn "
                    "as well, within --tolerance?",
        epilog="example: nas train --config search_spaces/resnet56.yaml --save r56.pt && "
               "nas verify-depth r56.pt")
    add_checkpoint_arguments(verify)
    verify.set_defaults(run=run_verify)


def _load_for_analysis(args: argparse.Namespace):
    """The checkpoint's network and the splits it was trained on (same seed, same split)."""
    check_data_args(args)
    if Path(args.checkpoint).is_dir():  # these two before torch's seconds of importing
        raise NasError(f"{args.checkpoint}: is a folder; allowed: a checkpoint file")
    if not Path(args.checkpoint).is_file():
        raise NasError(f"{args.checkpoint}: checkpoint not found")
    from nas import data
    from nas.training.checkpoint import load_checkpoint
    from nas.training.device import default_threads, resolve_device

    device = resolve_device(args.device)
    torch_threads = args.threads or default_threads()
    import torch

    torch.set_num_threads(torch_threads)
    with warnings.catch_warnings():  # the error for a file that is not ours says enough
        warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
        model, meta = load_checkpoint(args.checkpoint, device=device)
    candidate = model.candidate
    dataset = args.dataset or meta["input"]["dataset"]
    splits = data.load(dataset, data_dir=args.data_dir, seed=candidate.seed, device=device,
                       options=candidate.data)
    shape = meta["input"]
    if (splits.in_channels, splits.num_classes) != (shape["in_channels"], shape["num_classes"]):
        raise NasError(f"--dataset {dataset}: {splits.in_channels} channels, "
                       f"{splits.num_classes} classes; the checkpoint expects "
                       f"{shape['in_channels']} channels, {shape['num_classes']} classes")
    return model, splits, device, torch_threads


def run_analyze(args: argparse.Namespace) -> int:
    model, splits, _, _ = _load_for_analysis(args)  # checks the input before torch loads
    from nas.depth.lesion import analyze

    report = analyze(model, splits.val_x, splits.val_y, tolerance=args.tolerance)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(report.table())  # the table ends with the summary line
        if args.curve:
            print()
            print(report.curve())
    return 0


def run_compress(args: argparse.Namespace) -> int:
    if args.save:
        check_writable(Path(args.save))
    model, splits, device, threads = _load_for_analysis(args)  # checks input before torch
    from nas.depth.compress import compress
    from nas.depth.lesion import analyze
    from nas.training.checkpoint import save_checkpoint

    report = analyze(model, splits.val_x, splits.val_y, tolerance=args.tolerance)
    if not report.removable and not args.force:
        line = (f"nothing to remove: all {report.total_blocks} blocks are useful "
                f"({report.total_layers} layers, tolerance {report.tolerance * 100:.2f} pp); "
                "nothing fine-tuned" + (", no checkpoint written" if args.save else "")
                + " (--force fine-tunes a copy anyway)")
        print(json.dumps({"removed": [], "nothing_removable": True, "message": line})
              if args.json else line)
        return 0
    print(report.summary(), file=sys.stderr, flush=True)
    result = compress(model, splits, report, epochs=args.epochs, threads=threads, device=device)
    if args.save:
        save_checkpoint(args.save, result.model, splits,
                        extra={"compressed_from": str(args.checkpoint),
                               "removed": result.removed})
    if args.json:
        print(json.dumps({**result.to_dict(), "fine_tune_epochs": args.epochs}))
        return 0
    print(_compress_table(result, args.epochs))
    if args.save:
        print(f"checkpoint: {args.save}")
    return 0


def _compress_table(result, epochs: int) -> str:
    """The three rows (full, control, compressed) and the line that says what removal cost."""
    rows = [("full", result.full)]
    if result.control is not None:
        rows.append(("full, fine-tuned", result.control))
    rows.append(("compressed" + (", fine-tuned" if epochs else ""), result.compressed))
    lines = [f"{'':<24} {'blocks':>6} {'layers':>6} {'params':>10} {'val':>7} {'test':>7} "
             f"{'images/s':>9}"]
    for label, row in rows:
        rate = row.get("images_per_second")
        lines.append(f"{label:<24} {row['blocks']:>6} {row['layers']:>6} {row['params']:>10,} "
                     f"{row['val_accuracy']:>7.2%} {row['test_accuracy']:>7.2%} "
                     f"{f'{rate:,.0f}' if rate else '-':>9}")
    against = (f"compressed minus full, both fine-tuned {epochs} epoch{'s' * (epochs != 1)}"
               if epochs
               else "compressed minus full, no fine-tuning")
    speed = f"; {result.speed.describe()} the images/s" if result.speed else ""
    lines.append(f"removed {len(result.removed)} blocks: cost of removal ({against}) val "
                 f"{result.cost_pp('val'):+.2f} pp, test {result.cost_pp('test'):+.2f} pp; "
                 f"{result.compressed['params'] / result.full['params']:.0%} of the "
                 f"parameters{speed}")
    return "\n".join(lines)


def run_verify(args: argparse.Namespace) -> int:
    model, splits, device, threads = _load_for_analysis(args)  # checks input before torch
    from nas.cli.train import epoch_printer
    from nas.depth.lesion import analyze
    from nas.depth.verify import verify_depth

    report = analyze(model, splits.val_x, splits.val_y, tolerance=args.tolerance)
    print(report.summary(), file=sys.stderr, flush=True)
    epochs = model.candidate.epochs
    if report.removable or model.removed:
        print(f"training the useful depth from scratch: {epochs} epochs, seed "
              f"{model.candidate.seed}", file=sys.stderr, flush=True)
    result = verify_depth(model, splits, report, threads=threads, device=device,
                          progress=epoch_printer(epochs))
    if args.json:
        print(json.dumps({**result.to_dict(), "summary": report.summary()}))
        return 0
    print(f"{'':<28} {'stage depths':>14} {'layers':>6} {'params':>10} {'val':>7} {'test':>7}")
    for label, row in (("full (checkpoint)", result.full),
                       ("useful depth (from scratch)", result.useful)):
        depths = "x".join(map(str, row["stage_depths"]))
        print(f"{label:<28} {depths:>14} {row['layers']:>6} {row['params']:>10,} "
              f"{row['val_accuracy']:>7.2%} {row['test_accuracy']:>7.2%}")
    if result.kept_for_shape:
        print(f"every block of stage {', '.join(map(str, result.kept_for_shape))} was "
              "removable; one kept (it sets the stage's stride and width)")
    what = ("useful depth trained from scratch" if result.trained
            else "nothing removable, the useful network is the full one")
    print(f"{what}, against the full network: val {result.val_difference_pp:+.2f} pp, "
          f"{_verdict(result.within_tolerance)}; test {result.test_difference_pp:+.2f} pp, "
          f"{_verdict(result.test_within_tolerance)} (the {result.tolerance * 100:.2f} pp "
          "tolerance judges val, where the depth was chosen; test is images neither saw)")
    return 0


def _verdict(within: bool) -> str:
    return "within the tolerance" if within else "OUTSIDE the tolerance"
