"""Inference speed that two networks can be compared by.

One timing of a small network on a small split is a few milliseconds and moves by
tens of percent with whatever else the machine does; measured one after the other,
two networks then differ by the noise of the moment (two copies of one network read
0.83x). Here each network is warmed up, each timing runs enough passes over the
images to last ``MIN_TIMING_S``, the two networks are timed in alternating order
(AB, BA, AB ...) so that drift falls on both, and the ratio is the median of the
per-repeat ratios, with the range of their central 80% (10th to 90th percentile) as
its spread. The interquartile range was tried first: over 15 repeats it holds the
true median only about 94% of the time, so two copies of one network would read
"not 1.00x" on one run in sixteen; the central 80% of 15 holds it 99.9% of the
time. On two copies of one network the spread contains 1.0
(``tests/unit/training/test_speed.py``); ``REPEATS`` is what made the median
stable on a 2-core machine (``benchmarks/RESULTS.md``, "speed_stability.py").
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from nas.training.device import autocast, synchronize
from nas.training.loop import EVAL_BATCH

REPEATS = 15  # paired timings after the warm-up
WARMUP = 2  # timings of each network that are thrown away (allocator, caches, lazy init)
MIN_TIMING_S = 0.02  # each timing lasts at least this long: timer and scheduler noise


@dataclass(frozen=True)
class Speed:
    """Images per second: the median over ``repeats`` timings and the range of their central
    80% (``low``, ``high``)."""

    images_per_second: float
    low: float
    high: float
    repeats: int

    def to_dict(self) -> dict[str, float | int]:
        return {"images_per_second": self.images_per_second, "low": self.low,
                "high": self.high, "repeats": self.repeats}


@dataclass(frozen=True)
class SpeedRatio:
    """How many times faster ``second`` runs than ``first``: the median of paired ratios,
    with the range of their central 80% (``low``, ``high``)."""

    ratio: float
    low: float
    high: float
    first: Speed
    second: Speed

    @property
    def repeats(self) -> int:
        return self.first.repeats

    def describe(self) -> str:
        """``1.02x (0.97-1.06 in 80% of 15 paired repeats)``."""
        return (f"{self.ratio:.2f}x ({self.low:.2f}-{self.high:.2f} in 80% of {self.repeats} "
                "paired repeats)")

    def to_dict(self) -> dict[str, object]:
        return {"ratio": self.ratio, "low": self.low, "high": self.high,
                "first": self.first.to_dict(), "second": self.second.to_dict()}


def inference_speed(model: nn.Module, x: torch.Tensor, repeats: int = REPEATS,
                    warmup: int = WARMUP) -> Speed:
    """Eval-mode images per second of ``model`` over ``x``."""
    passes = _passes_per_timing([model], x, warmup)
    rates = [len(x) * passes / _timed(model, x, passes) for _ in range(repeats)]
    return _speed(rates)


def compare_speed(first: nn.Module, second: nn.Module, x: torch.Tensor,
                  repeats: int = REPEATS, warmup: int = WARMUP) -> SpeedRatio:
    """``second``'s inference speed against ``first``'s over ``x``, timed in alternation."""
    passes = _passes_per_timing([first, second], x, warmup)
    seconds: dict[int, list[float]] = {0: [], 1: []}
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            seconds[which].append(_timed((first, second)[which], x, passes))
    ratios = [a / b for a, b in zip(seconds[0], seconds[1], strict=True)]
    low, median, high = _spread(ratios)
    images = len(x) * passes
    return SpeedRatio(median, low, high, _speed([images / s for s in seconds[0]]),
                      _speed([images / s for s in seconds[1]]))


def _passes_per_timing(models: list[nn.Module], x: torch.Tensor, warmup: int) -> int:
    """Passes over ``x`` that make the slowest model's timing last MIN_TIMING_S."""
    slowest = 0.0
    for _ in range(max(1, warmup)):
        for model in models:
            slowest = max(slowest, _timed(model, x, 1))
    return max(1, math.ceil(MIN_TIMING_S / max(slowest, 1e-6)))


@torch.inference_mode()
def _timed(model: nn.Module, x: torch.Tensor, passes: int) -> float:
    was_training = model.training
    model.eval()
    try:
        synchronize(x.device)
        start = time.perf_counter()
        with autocast(x.device):
            for _ in range(passes):
                for begin in range(0, len(x), EVAL_BATCH):
                    model(x[begin:begin + EVAL_BATCH])
        synchronize(x.device)
        return time.perf_counter() - start
    finally:
        model.train(was_training)


def _spread(values: list[float]) -> tuple[float, float, float]:
    """10th percentile, median, 90th percentile."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return deciles[0], statistics.median(values), deciles[8]


def _speed(rates: list[float]) -> Speed:
    low, median, high = _spread(rates)
    return Speed(median, low, high, len(rates))


LATENCY_REPEATS = 7  # a trial's latency is timed as it starts: about 0.3 s per batch size


def latency(model: nn.Module, channels: int, size: int, batch: int,
            device: torch.device, threads: int) -> dict[str, float]:
    """Milliseconds per image of ``model`` on ``device`` at batch 1 (``latency_ms``, the
    latency objective: one image, as a deployed network sees it) and at ``batch``
    (``latency_batch_ms``, per image), each the median of :data:`LATENCY_REPEATS` timings
    of :data:`MIN_TIMING_S` or more after a warm-up, with ``threads`` CPU threads."""
    torch.set_num_threads(threads)
    model = model.to(device)
    out = {}
    for key, count in (("latency_ms", 1), ("latency_batch_ms", batch)):
        x = torch.zeros(count, channels, size, size, device=device)
        speed = inference_speed(model, x, repeats=LATENCY_REPEATS)
        out[key] = 1000.0 / speed.images_per_second
    return out
