"""Cost of the useful-depth analysis against training, same run, same network.

Trains ResNet-56 (3 stages x 9 basic blocks, identity shortcuts, width 16)
on the bundled digits with the shipped ResNet-20 training settings (batch 64,
lr 0.2, 10 epochs), then times ``nas.depth.analyze`` on the val split. The
goal is an analysis that costs at most 10% of the training it follows. Needs
torch and scikit-learn only; under 5 minutes on 2 CPU cores. The last line
printed is ``ratio=<analysis seconds / training seconds>``.

    python benchmarks/depth_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas import data  # noqa: E402
from nas.candidate import Candidate  # noqa: E402
from nas.depth.lesion import analyze  # noqa: E402
from nas.training.device import available_cpus, resolve_device, synchronize  # noqa: E402
from nas.training.loop import train  # noqa: E402


def main() -> None:
    device = resolve_device("auto")
    threads = available_cpus()
    splits = data.load("digits", seed=0)
    candidate = Candidate(blocks_per_stage=9, block="basic", shortcut="identity", width=16,
                          batch_size=64, lr=0.2, weight_decay=5e-4, epochs=10)
    print(f"device={device} threads={threads} model=ResNet-56 (basic, identity, width 16) "
          f"dataset=digits train={len(splits.train_x)} val={len(splits.val_x)} "
          f"epochs={candidate.epochs} batch={candidate.batch_size} lr={candidate.lr}",
          flush=True)

    started = time.perf_counter()
    result = train(candidate, splits, device=device, threads=threads)
    train_seconds = time.perf_counter() - started
    print(f"training: {train_seconds:.2f} s, val accuracy {result.val_accuracy:.4f}", flush=True)

    model = result.model
    val_x, val_y = splits.val_x.to(device), splits.val_y.to(device)
    synchronize(device)
    started = time.perf_counter()
    report = analyze(model, val_x, val_y, tolerance=0.01)
    analysis_seconds = time.perf_counter() - started
    print(f"analysis: {analysis_seconds:.2f} s "
          f"({len(report.lesion_curve)} greedy steps, {report.total_blocks} single lesions)")
    print(report.summary())
    print(f"ratio={analysis_seconds / train_seconds:.4f}")


if __name__ == "__main__":
    main()
