"""Cost of the useful-depth analysis against training, same run, same network.

Trains ResNet-56 (3 stages x 9 basic blocks, identity shortcuts, width 16)
on the bundled digits with the shipped ResNet-20 training settings (batch 64,
lr 0.2, 10 epochs), then times ``nas.depth.analyze`` on the val split: every
single lesion, the whole greedy curve, the bootstrap interval, the random
deletions and the one-pass measures (influence, CKA). The goal is an analysis
that costs at most 15% of the training it follows. It also prints how well each
one-pass measure ranks the blocks as the lesion does (Spearman's rho with the
loss rise), the evidence for what docs/useful-depth.md says of them. Needs torch and
scikit-learn (scipy) only; under 5 minutes on 2 CPU cores. The last line printed
is ``ratio=<analysis seconds / training seconds>``.

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


def agreement(report) -> str:
    """Spearman's rho of each one-pass measure with the lesion's loss rise, over the blocks
    where both are defined. Positive: the measure ranks blocks as the lesion does
    (a block that turns its input more, or has a bigger branch, costs more when lesioned);
    for CKA a negative rho would say the same (a block its successor changes little)."""
    from scipy.stats import spearmanr

    ratio = [report.branch_ratio.get(name) for name in report.block_names]
    parts = []
    for label, values in (("influence", report.block_influence), ("|R|/|S|", ratio),
                          ("CKA next", report.block_cka)):
        pairs = [(v, rise) for v, rise in zip(values, report.block_loss_increase, strict=True)
                 if v is not None and rise is not None]
        measure, rise = [p[0] for p in pairs], [p[1] for p in pairs]
        rho = spearmanr(measure, rise).statistic if len(pairs) > 2 else float("nan")
        parts.append(f"{label} {rho:+.2f} ({len(pairs)} blocks)")
    return "Spearman with the loss rise: " + ", ".join(parts)


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
    draws = sum(len(accs) for _, accs in report.random_deletions or [])
    print(f"analysis: {analysis_seconds:.2f} s ({report.total_blocks} single lesions, "
          f"{len(report.lesion_curve)} greedy steps, {draws} random deletions)")
    print(report.summary())
    print(agreement(report))
    print(f"ratio={analysis_seconds / train_seconds:.4f}")


if __name__ == "__main__":
    main()
