"""Packing concurrent trainings on one GPU: aggregate images/second of 1, 2 and 4 at once.

Each training is its own OS process (what Ray runs for trials packed with
``--gpus-per-trial 0.25``), started with multiprocessing's 'spawn', and
trains ResNet-20 on 3x32x32 synthetic data (10 classes) with nas.training as
it is: data on the device, bf16 autocast and channels_last on CUDA, no
augmentation, constant learning rate. Every process trains one warm-up
epoch, then all wait on a Barrier; the timed part runs from the barrier to
the end of the last process, and the aggregate rate is all images trained
after the barrier over that wall time. Needs torch only. The last line
printed is ``ratio=<aggregate of the largest count / aggregate of 1>``
(with the default counts 1,2,4: the 4-trial packing gain).

    python benchmarks/gpu_packing.py                                   # CUDA
    python benchmarks/gpu_packing.py --device cpu --images 256 --epochs 1 --counts 1,2
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import queue
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas import data  # noqa: E402
from nas.candidate import Candidate  # noqa: E402
from nas.training.device import available_cpus, resolve_device  # noqa: E402
from nas.training.loop import train  # noqa: E402

EVAL_IMAGES = 256  # per-epoch validation runs inside the timed part: keep it small
BARRIER_TIMEOUT = 600.0


def synthetic_splits(images: int, seed: int) -> data.Splits:
    """``images`` training images; val and test are small slices, only to keep train() whole."""
    s = data.load("synthetic", seed=seed,
                  options={"channels": 3, "image_size": 32, "classes": 10, "samples": images})
    return dataclasses.replace(
        s, train_x=torch.cat([s.train_x, s.val_x, s.test_x]),
        train_y=torch.cat([s.train_y, s.val_y, s.test_y]),
        val_x=s.val_x[:EVAL_IMAGES], val_y=s.val_y[:EVAL_IMAGES],
        test_x=s.test_x[:EVAL_IMAGES], test_y=s.test_y[:EVAL_IMAGES])


def worker(rank: int, args: argparse.Namespace, threads: int, barrier: Any, results: Any) -> None:
    """Train one candidate; after the warm-up epoch wait for the others, then time the rest."""
    splits = synthetic_splits(args.images, seed=rank)
    candidate = Candidate(dataset="synthetic", epochs=args.epochs + 1, batch_size=args.batch_size,
                          augment=False, schedule="constant", seed=rank)
    marks: dict[str, float] = {}

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        if epoch == 1:  # warm-up done (train() synchronised the device before reporting)
            barrier.wait(BARRIER_TIMEOUT)
            marks["start"] = time.monotonic()
        return False

    result = train(candidate, splits, report=report, device=args.device, threads=threads)
    end = time.monotonic()  # train() ends with a test evaluation read back to the host
    n = len(splits.train_x)
    batch = min(candidate.batch_size, n)
    per_epoch = n - (1 if n % batch == 1 else 0)  # train() drops a last batch of one image
    results.put((rank, marks["start"], end, per_epoch * (result.epochs - 1)))


def run(count: int, args: argparse.Namespace, threads: int) -> tuple[float, float]:
    """Aggregate images/second of ``count`` concurrent processes, and their mean each."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(count), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(r, args, threads, barrier, results))
             for r in range(count)]
    for p in procs:
        p.start()
    rows = []
    while len(rows) < count:
        if any(p.exitcode not in (None, 0) for p in procs):
            barrier.abort()  # release the others instead of waiting out the timeout
            for p in procs:
                p.join()
            raise SystemExit(f"{count} trial(s): a worker failed "
                             f"(exit codes {[p.exitcode for p in procs]})")
        try:
            rows.append(results.get(timeout=0.5))
        except queue.Empty:  # nothing yet: keep watching the workers
            continue
    for p in procs:
        p.join()
    wall = max(r[2] for r in rows) - min(r[1] for r in rows)
    per_trial = [r[3] / (r[2] - r[1]) for r in rows]
    return sum(r[3] for r in rows) / wall, sum(per_trial) / len(per_trial)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--images", type=int, default=50000, help="training images per process")
    parser.add_argument("--epochs", type=int, default=3,
                        help="timed epochs per process (after one warm-up epoch)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--counts", default="1,2,4", help="concurrent trainings to measure")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads per process (default: CPUs / count)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    if args.images < 30 or args.epochs < 1 or min(counts) < 1:
        parser.error("need --images >= 30, --epochs >= 1 and counts >= 1")

    device = resolve_device(args.device)
    args.device = str(device)
    print(f"device={device} images={args.images}x3x32x32 per process model=ResNet-20 "
          f"batch={args.batch_size} epochs=1 warm-up + {args.epochs} timed "
          f"cpus={available_cpus()} torch={torch.__version__}")
    if device.type == "cuda":
        print(f"gpu={torch.cuda.get_device_name(device)}")
    rates: dict[int, float] = {}
    for count in counts:
        threads = args.threads or max(1, available_cpus() // count)
        start = time.perf_counter()
        rates[count], each = run(count, args, threads)
        print(f"{count} trial(s): {rates[count]:9.0f} img/s aggregate, {each:9.0f} img/s each "
              f"({rates[count] / rates[counts[0]]:.2f}x of {counts[0]}), threads {threads}, "
              f"{time.perf_counter() - start:.1f}s in all", flush=True)
    print(f"ratio={rates[max(counts)] / rates[min(counts)]:.3f}")


if __name__ == "__main__":
    main()
