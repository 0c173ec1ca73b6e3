"""Does the measured useful depth predict how deep a network needs to be? (issue 14, item 6)

For each network and seed: train it (search_spaces/resnet56.yaml: ResNet-56, basic
blocks, identity shortcuts; the same with 18 blocks a stage, ResNet-110; the same
56-layer network without shortcuts, plain), measure its useful depth
(``nas.depth.lesion.analyze``, tolerance 0.01), then train a network of that depth
from scratch with the same settings and seed (``nas.depth.verify.verify_depth``) and
compare the two. Then the opposite check (issue 30): a uniform network of fewer blocks
than the useful depth's 90% interval starts at, trained the same way, which should lose
more than the tolerance if the figure says more than "shallower is as good". Prints a
markdown table, one row per (network, seed), and a summary line per network.

``--space`` takes another file whose networks differ only in ``blocks_per_stage`` and
``shortcut`` (``search_spaces/degradation-fashion.yaml``: the same three networks on
Fashion-MNIST, width 8); its rows go to their own ``--out``.

Each finished pair is appended to ``--out`` as one JSON line at once, so an interrupted
run loses at most the pair in progress; pairs already there are skipped on a rerun.

    python scripts/verify_depth_table.py [--out results/verify_depth.jsonl] [--seeds 0 1 2]
    python scripts/verify_depth_table.py --space search_spaces/degradation-fashion.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = "search_spaces/resnet56.yaml"
NETWORKS = ("resnet56", "resnet110", "plain56")


def candidates(config: str = CONFIG) -> dict[str, Any]:
    """The three networks, from a candidate file or a space file whose searched values
    are at most the depth and the shortcut (the other values are the file's)."""
    from nas.space import load_space

    space = load_space(ROOT / config)
    return {name: space.candidate({"blocks_per_stage": blocks, "shortcut": shortcut})
            for name, blocks, shortcut in (("resnet56", 9, "identity"),
                                           ("resnet110", 18, "identity"),
                                           ("plain56", 9, "none"))}


def shallower_than(candidate, low_layers: int):
    """The deepest uniform network of ``candidate``'s kind with fewer layers than
    ``low_layers`` (the interval's lower end), or None when even one block a stage is not."""
    from nas.models.resnet import build_model
    from nas.study.costs import input_shape

    channels, size, classes = input_shape(candidate)
    for blocks in range(candidate.stage_depths[0], 0, -1):
        shallow = dataclasses.replace(candidate, blocks_per_stage=blocks)
        if build_model(shallow, channels, classes, size).num_layers < low_layers:
            return shallow
    return None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_pair(network: str, candidate, seed: int, tolerance: float, threads: int) -> dict:
    """Train, analyse and verify one network on one seed; the row to record."""
    from nas import data
    from nas.depth.lesion import analyze
    from nas.depth.verify import verify_depth
    from nas.training.loop import train

    candidate = dataclasses.replace(candidate, seed=seed)
    splits = data.load(candidate.dataset, seed=seed, options=candidate.data)
    started = time.perf_counter()
    full = train(candidate, splits, threads=threads)
    log(f"  trained {full.layers} layers in {full.seconds:.0f}s: val {full.val_accuracy:.2%}")
    report = analyze(full.model, splits.val_x, splits.val_y, tolerance=tolerance)
    log(f"  {report.summary()}")
    result = verify_depth(full.model, splits, report, threads=threads)
    log(f"  from scratch {'x'.join(map(str, result.useful['stage_depths']))}: val "
        f"{result.useful['val_accuracy']:.2%} ({result.val_difference_pp:+.2f} pp)"
        + ("" if result.trained else " (nothing removable, not trained)"))
    shallow = _shallower_row(candidate, splits, report, result, threads) if (
        candidate.shortcut != "none") else {}
    return {**shallow,
        "network": network, "seed": seed, "tolerance": tolerance,
        "full_layers": report.total_layers, "useful_layers": report.useful_layers,
        "useful_layers_interval": list(report.useful_layers_interval),
        "removed": len(report.removable), "kept_for_shape": result.kept_for_shape,
        "trained": result.trained, "scratch_layers": result.useful["layers"],
        "scratch_stage_depths": result.useful["stage_depths"],
        "full_val": result.full["val_accuracy"], "full_test": result.full["test_accuracy"],
        "scratch_val": result.useful["val_accuracy"],
        "scratch_test": result.useful["test_accuracy"],
        "val_difference_pp": result.val_difference_pp,
        "test_difference_pp": result.test_difference_pp,
        "within_tolerance": result.within_tolerance,
        "test_within_tolerance": result.test_within_tolerance, "summary": report.summary(),
        "seconds": time.perf_counter() - started,
    }


def _shallower_row(candidate, splits, report, result, threads: int) -> dict:
    """The opposite check: fewer blocks than the interval's lower end, trained the same
    way; it should fall outside the tolerance."""
    from nas.training.loop import train

    shallow = shallower_than(candidate, report.useful_layers_interval[0])
    if shallow is None:
        return {}
    trained = train(shallow, splits, threads=threads)
    val_pp = 100 * (trained.val_accuracy - result.full["val_accuracy"])
    test_pp = 100 * (trained.test_accuracy - result.full["test_accuracy"])
    log(f"  shallower {trained.layers} layers: val {trained.val_accuracy:.2%} "
        f"({val_pp:+.2f} pp), test {trained.test_accuracy:.2%} ({test_pp:+.2f} pp)")
    return {"shallow_layers": trained.layers, "shallow_val": trained.val_accuracy,
            "shallow_test": trained.test_accuracy, "shallow_val_difference_pp": val_pp,
            "shallow_test_difference_pp": test_pp,
            "shallow_outside": val_pp < -100 * report.tolerance - 1e-7}


def table(rows: list[dict]) -> str:
    lines = ["| network | seed | full layers | useful layers (90% interval) | scratch layers "
             "| full val / test | from-scratch val / test | val diff (pp) | within tolerance "
             "(val) | test diff (pp) | within tolerance (test) | shallower: layers, val diff "
             "(pp), outside? |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["useful_layers_interval"]
        lines.append(
            f"| {r['network']} | {r['seed']} | {r['full_layers']} | {r['useful_layers']} "
            f"({low}-{high}) | {r['scratch_layers']}{'' if r['trained'] else ' (not trained)'} "
            f"| {r['full_val']:.2%} / {r['full_test']:.2%} "
            f"| {r['scratch_val']:.2%} / {r['scratch_test']:.2%} "
            f"| {r['val_difference_pp']:+.2f} | {'yes' if r['within_tolerance'] else 'no'} "
            f"| {r['test_difference_pp']:+.2f} | {_test_within(r)} | {_shallow(r)} |")
    return "\n".join(lines)


def _shallow(row: dict) -> str:
    if "shallow_layers" not in row:
        return "-"
    return (f"{row['shallow_layers']}, {row['shallow_val_difference_pp']:+.2f}, "
            f"{'yes' if row['shallow_outside'] else 'no'}")


def _test_within(row: dict) -> str:
    """The test verdict; rows recorded before it existed get it from their difference."""
    within = row.get("test_within_tolerance")
    if within is None:
        within = row["test_difference_pp"] >= -100 * row["tolerance"] - 1e-7
    return "yes" if within else "no"


def summary(network: str, rows: list[dict]) -> str:
    val = [r["val_difference_pp"] for r in rows]
    test = [r["test_difference_pp"] for r in rows]
    within = sum(r["within_tolerance"] for r in rows)
    emptied = sum(bool(r["kept_for_shape"]) for r in rows)
    useful = statistics.mean(r["useful_layers"] for r in rows)
    scratch = statistics.mean(r["scratch_layers"] for r in rows)
    test_within = sum(_test_within(r) == "yes" for r in rows)
    shallow = [r for r in rows if "shallow_layers" in r]
    outside = sum(r["shallow_outside"] for r in shallow)
    return (f"{network}: within the {rows[0]['tolerance'] * 100:.2f} pp tolerance on "
            f"{within}/{len(rows)} seeds on val (the split it judges), {test_within}/{len(rows)} "
            f"on test; useful layers {useful:.1f} of "
            f"{rows[0]['full_layers']} (from scratch {scratch:.1f}); val difference mean "
            f"{statistics.mean(val):+.2f} pp (min {min(val):+.2f}, max {max(val):+.2f}), test "
            f"mean {statistics.mean(test):+.2f} pp"
            + (f"; a stage emptied (one block kept) on {emptied} seeds" if emptied else "")
            + (f"; the shallower network fell outside the tolerance on {outside}/{len(shallow)}"
               if shallow else ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=CONFIG,
                        help="the file the three networks come from (default: ResNet-56's "
                             "candidate file, digits)")
    parser.add_argument("--out", help="JSON lines, one per (network, seed); pairs there are "
                                      "skipped (default: results/verify_depth.jsonl, or "
                                      "verify_depth-<space>.jsonl for another --space)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    out = Path(args.out or ("results/verify_depth.jsonl" if args.space == CONFIG
                            else f"results/verify_depth-{Path(args.space).stem}.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    done: dict[tuple[str, int], dict] = {}
    if out.is_file():
        for line in out.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[(row["network"], row["seed"])] = row
    nets = candidates(args.space)
    started = time.perf_counter()
    for network in args.networks:
        for seed in args.seeds:
            if (network, seed) in done:
                log(f"{network} seed {seed}: already in {out}, skipped")
                continue
            log(f"{network} seed {seed}: training ({time.perf_counter() - started:.0f}s in)")
            row = run_pair(network, nets[network], seed, args.tolerance, args.threads)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            done[(network, seed)] = row
    rows = [done[(n, s)] for n in args.networks for s in args.seeds]
    print(table(rows))
    print()
    for network in args.networks:
        print(summary(network, [r for r in rows if r["network"] == network]))
    log(f"done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
