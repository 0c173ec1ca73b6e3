"""Where training runs: CPUs, device choice, mixed precision and honest timings.

Training, evaluation, useful-depth analysis and the benchmarks all need the same
answers (which device ``auto`` means, when bf16 autocast is on); each lives here
once so that they cannot drift apart. Torch only.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext

import torch

from nas.errors import NasError


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """Torch's CPU threads when the user names none: ``OMP_NUM_THREADS`` where it is set to a
    positive integer (the convention torch and OpenMP follow), else every CPU this process
    may run on. Two processes that each spin a thread per core on the same cores run several
    times slower than one thread each, so a user (or a test runner) sharing the machine can
    say so once in the environment."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return available_cpus()


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` means CUDA where there is one, else the CPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NasError(f"device {device}: no CUDA GPU is visible; allowed here: cpu, auto")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise NasError(f"device {device}: this machine has {torch.cuda.device_count()} GPU(s); "
                       f"allowed: cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


def autocast(device: torch.device) -> AbstractContextManager[object]:
    """bf16 autocast on CUDA; full precision on the CPU, where it is not faster."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest; no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
