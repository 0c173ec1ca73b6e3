"""Training throughput of nas.training against a minimal PyTorch loop, same run, same model.

CPU (default): ResNet-20 on the bundled digits; the baseline is the shortest
loop that trains the same network on the same tensors (randperm, slice,
forward, backward, step), so the ratio shows what resnas's loop costs on top.
CUDA (``--device cuda``): ResNet-20 on 3x32x32 synthetic data; the baseline is
the common fp32 loop over a DataLoader, and ours keeps the data on the GPU
with bf16 autocast and channels_last, so the ratio is the speed-up.

Augmentation is off on both sides. Runs rotate their order over several
rounds and compare medians of per-epoch images/second (the first epoch of
each run is warm-up and not counted). Needs torch only (plus scikit-learn
for digits). The last line printed is ``ratio=<ours/baseline>``.

    python benchmarks/train_throughput.py                 # CPU, about 1 minute
    python benchmarks/train_throughput.py --device cuda   # GPU machine
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas import data  # noqa: E402
from nas.candidate import Candidate  # noqa: E402
from nas.models.resnet import build_model  # noqa: E402
from nas.training.device import available_cpus, resolve_device, synchronize  # noqa: E402
from nas.training.loop import train  # noqa: E402


def baseline_images_per_second(candidate: Candidate, splits: data.Splits,
                               device: torch.device, use_dataloader: bool) -> list[float]:
    """Per-epoch images/second of a minimal fp32 loop (DataLoader on CUDA)."""
    torch.manual_seed(candidate.seed)
    model = build_model(candidate, splits.in_channels, splits.num_classes,
                        splits.image_size).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=candidate.lr, momentum=0.9,
                                nesterov=True, weight_decay=candidate.weight_decay)
    if use_dataloader:
        dataset = torch.utils.data.TensorDataset(splits.train_x.cpu(), splits.train_y.cpu())
        loader = torch.utils.data.DataLoader(dataset, batch_size=candidate.batch_size,
                                             shuffle=True, drop_last=True, pin_memory=True)
    x, y = splits.train_x.to(device), splits.train_y.to(device)
    rates = []
    for _ in range(candidate.epochs):
        synchronize(device)
        start = time.perf_counter()
        seen = 0
        if use_dataloader:
            batches = ((xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
                       for xb, yb in loader)
        else:
            order = torch.randperm(len(x), device=device)
            batches = ((x[idx], y[idx]) for idx in order.split(candidate.batch_size)
                       if len(idx) > 1)
        for xb, yb in batches:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(xb)
        synchronize(device)
        rates.append(seen / (time.perf_counter() - start))
    return rates[1:]


def ours_images_per_second(candidate: Candidate, splits: data.Splits,
                           device: torch.device) -> list[float]:
    result = train(candidate, splits, device=device, threads=torch.get_num_threads())
    return [h["images_per_second"] for h in result.history[1:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--dataset", help="digits (CPU default) or synthetic (CUDA default)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run (first is warm-up)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating ours/baseline rounds")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()

    device = resolve_device(args.device)
    dataset = args.dataset or ("synthetic" if device.type == "cuda" else "digits")
    options = {"channels": 3, "image_size": 32, "samples": 20000} if dataset == "synthetic" else {}
    splits = data.load(dataset, seed=0, options=options)
    torch.set_num_threads(available_cpus())
    candidate = Candidate(dataset=dataset, epochs=max(args.epochs, 2),
                          batch_size=args.batch_size, augment=False, schedule="constant")
    on_gpu = device.type == "cuda"
    print(f"device={device} dataset={dataset} images={tuple(splits.train_x.shape)} "
          f"model=ResNet-20 batch={candidate.batch_size} threads={torch.get_num_threads()}")
    if on_gpu:
        print(f"gpu={torch.cuda.get_device_name(device)}")
    ours, base = [], []
    for r in range(args.rounds):
        run = dataclasses.replace(candidate, seed=r)
        measures = [
            lambda run=run: ours.extend(ours_images_per_second(run, splits, device)),
            lambda run=run: base.extend(
                baseline_images_per_second(run, splits, device, use_dataloader=on_gpu)),
        ]
        # Rotate who goes first: on a busy 2-core machine order alone moves figures by 5%.
        for i in range(len(measures)):
            measures[(i + r) % len(measures)]()
        print(f"round {r + 1}: ours {statistics.median(ours):9.0f} img/s   "
              f"baseline {statistics.median(base):9.0f} img/s", flush=True)
    ours_rate, base_rate = statistics.median(ours), statistics.median(base)
    label = "fp32 DataLoader loop" if on_gpu else "minimal loop"
    print(f"ours (nas.training{', bf16 + channels_last, data on GPU' if on_gpu else ''}): "
          f"{ours_rate:.0f} images/s")
    print(f"baseline ({label}): {base_rate:.0f} images/s")
    print(f"ratio={ours_rate / base_rate:.3f}")


if __name__ == "__main__":
    main()
