"""How stable is an inference-speed comparison? Two copies of one network, many times.

``nas compress`` prints the compressed network's images/s against the full one's. The
old measurement (best of 3 timings of each network, one network after the other) read
two identical networks as 0.83x. This benchmark times two copies of one ResNet-20 on the
bundled digits' test split ``--runs`` times with each routine:

- baseline: the old routine (best of 3 single passes, the first network, then the second);
- resnas: ``nas.training.speed.compare_speed`` (warm-up, timings of at least 20 ms,
  alternating order, median of paired ratios, their central 80% as the spread),
  for several repeat counts, to choose how many it uses by default.

For each it prints the spread of the ratios over the runs (ideal: all 1.00), how often
the printed spread contains 1.0 (resnas only; the baseline prints none) and the seconds
one comparison takes. The last line is ``ratio=<std of resnas's ratios at its default
repeats / std of the baseline's>`` (below 1: steadier).

    python benchmarks/speed_stability.py [--runs 20]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nas import data  # noqa: E402
from nas.candidate import Candidate  # noqa: E402
from nas.models.resnet import build_model  # noqa: E402
from nas.training.loop import evaluate  # noqa: E402
from nas.training.speed import REPEATS, compare_speed  # noqa: E402


def old_ratio(first, second, x: torch.Tensor) -> float:
    """The routine nas compress used before: best of 3, one network after the other."""
    def rate(model) -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            evaluate(model, x, torch.zeros(len(x), dtype=torch.long))
            best = min(best, time.perf_counter() - start)
        return len(x) / best

    return rate(second) / rate(first)


def summary(name: str, ratios: list[float], seconds: float, contains: int | None) -> str:
    inside = f"{contains}/{len(ratios)}" if contains is not None else "-"
    return (f"{name:<22} {min(ratios):>6.3f} {max(ratios):>6.3f} "
            f"{statistics.pstdev(ratios):>7.4f} {inside:>8} {seconds:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = data.load("digits")
    torch.manual_seed(0)
    model = build_model(Candidate(blocks_per_stage=3, width=16), splits.in_channels,
                        splits.num_classes, splits.image_size)
    twin = copy.deepcopy(model)
    x = splits.test_x
    print(f"two copies of ResNet-20 (width 16), {len(x)} test images, {args.threads} threads, "
          f"{args.runs} runs each")
    print(f"{'routine':<22} {'min':>6} {'max':>6} {'std':>7} {'spread∋1':>8} {'s/each':>8}")
    started = time.perf_counter()
    baseline = [old_ratio(model, twin, x) for _ in range(args.runs)]
    print(summary("baseline (best of 3)", baseline, (time.perf_counter() - started) / args.runs,
                  None))
    default_std = None
    for repeats in sorted({5, 9, REPEATS, 25}):
        started = time.perf_counter()
        runs = [compare_speed(model, twin, x, repeats=repeats) for _ in range(args.runs)]
        seconds = (time.perf_counter() - started) / args.runs
        ratios = [run.ratio for run in runs]
        contains = sum(run.low <= 1.0 <= run.high for run in runs)
        label = f"resnas, {repeats} repeats" + (" *" if repeats == REPEATS else "")
        print(summary(label, ratios, seconds, contains))
        if repeats == REPEATS:
            default_std = statistics.pstdev(ratios)
    print("* the default (nas.training.speed.REPEATS)")
    print(f"ratio={default_std / statistics.pstdev(baseline):.3f}")


if __name__ == "__main__":
    main()
