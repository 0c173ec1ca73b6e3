"""Train one candidate on tensors that already sit on the device.

As in airbench, there is no DataLoader: each split is one tensor on the
training device, batches are index slices of a per-epoch permutation, and
augmentation runs batched where the data is. Progress leaves through a plain
``report(epoch, metrics) -> bool`` callback (true = stop), which is where
Ray Tune and Optuna plug in; this module imports torch only.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.candidate import Candidate
from nas.data import Splits, augment_batch
from nas.errors import Diverged
from nas.models.resnet import ResNet, build_model
from nas.training.device import autocast, default_threads, resolve_device, synchronize

Report = Callable[[int, dict[str, float]], bool]
EVAL_BATCH = 1024


@dataclass
class TrainResult:
    """What a training run measured; ``model`` is the trained network."""

    val_accuracy: float
    test_accuracy: float
    epochs: int
    params: int
    layers: int
    blocks: int
    seconds: float
    images_per_second: float
    stopped_early: bool = False
    history: list[dict[str, float]] = field(default_factory=list)
    model: ResNet | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "model"}


def make_optimizer(model: nn.Module, c: Candidate) -> torch.optim.Optimizer:
    """Weight decay on weights only; norms, biases and rezero alphas are left free."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": c.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if c.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=c.lr)
    return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.momentum > 0)


def make_schedule(optimizer: torch.optim.Optimizer, c: Candidate,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule over the whole budget of ``c.epochs``."""
    if c.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=c.lr, total_steps=total_steps, pct_start=0.25,
            cycle_momentum=False, anneal_strategy="linear")
    if c.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


@torch.inference_mode()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = EVAL_BATCH) -> tuple[float, float]:
    """Mean loss and accuracy in eval mode, in large batches.

    Args:
        model: the network.
        x, y: images and their labels (e.g. ``splits.val_x``, ``splits.val_y``).
        batch_size: images per forward pass.

    Returns:
        ``(mean cross-entropy, accuracy)``; the model's training mode is restored.
    """
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    with autocast(x.device):
        for start in range(0, len(x), batch_size):
            logits = model(x[start:start + batch_size]).float()
            target = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits, target, reduction="sum")
            correct += (logits.argmax(1) == target).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return float(loss_sum) / n, float(correct) / n


def train(candidate: Candidate, splits: Splits, report: Report | None = None,
          device: str | torch.device | None = None, threads: int | None = None,
          model: ResNet | None = None, resume: dict[str, Any] | None = None,
          on_state: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``candidate`` for ``candidate.epochs`` epochs on ``splits``.

    Validation accuracy is measured every epoch and passed to ``report``;
    test accuracy once at the end (never used for selection). A non-finite
    training loss raises :class:`Diverged` naming the epoch. ``model``
    continues training an existing network (fine-tuning) instead of
    building a fresh one from the candidate.

    ``on_state`` receives the whole training state after every epoch, before
    ``report`` sees the epoch, and ``resume`` takes such a state back: the run
    goes on from the epoch after it with the same weights, optimizer, schedule
    and batch order, as if it had never stopped (a trial lost with its node).

    Args:
        candidate: the network and its settings (``nas.load_candidate``).
        splits: the data (``nas.load_data("digits", seed=candidate.seed)``).
        report: called as ``report(epoch, metrics)`` after every epoch; true stops.
        device: ``"cpu"``, ``"cuda"``, or None for the best there is.
        threads: torch's CPU threads (default: ``$OMP_NUM_THREADS``, else every CPU).
        model, resume, on_state: fine-tuning and resuming, as above.

    Returns:
        A ``TrainResult``: val and test accuracy, epochs, sizes, seconds, images/second,
        the per-epoch history, and ``model``, the trained network.

    Raises:
        Diverged: the training loss stopped being finite.
    """
    started = time.perf_counter()
    device = resolve_device(device)
    torch.set_num_threads(threads or default_threads())
    torch.manual_seed(candidate.seed)
    generator = torch.Generator(device=device).manual_seed(candidate.seed)
    splits = splits.to(device)

    if model is None:
        model = build_model(candidate, splits.in_channels, splits.num_classes, splits.image_size)
    # channels_last suits cuDNN's tensor-core kernels. On the CPU it was ~20% faster
    # too, but torch 2.13's CPU backward then corrupts memory with projection
    # shortcuts (free(): invalid next size), so the CPU keeps the default layout.
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    train_x = splits.train_x.contiguous(memory_format=memory_format)
    train_y = splits.train_y
    n = len(train_x)
    batch = min(candidate.batch_for(n), n)
    # Keep a short last batch unless it is too small for batch norm.
    steps_per_epoch = n // batch + (1 if n % batch >= 2 else 0)
    optimizer = make_optimizer(model, candidate)
    schedule = make_schedule(optimizer, candidate, candidate.epochs * steps_per_epoch)
    augment = splits.augment if candidate.augment else "none"

    history: list[dict[str, float]] = []
    train_seconds = 0.0
    images = 0
    stopped = False
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        schedule.load_state_dict(resume["schedule"])
        generator.set_state(resume["generator"].cpu())  # RNG states live on the CPU
        history = list(resume["history"])
        train_seconds, images = float(resume["train_seconds"]), int(resume["images"])
        first_epoch = int(resume["epoch"]) + 1
    for epoch in range(first_epoch, candidate.epochs + 1):
        model.train()
        synchronize(device)
        epoch_start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=generator)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        for step in range(steps_per_epoch):
            idx = order[step * batch:(step + 1) * batch]
            xb = augment_batch(train_x[idx], augment, generator)
            yb = train_y[idx]
            with autocast(device):
                logits = model(xb)
                loss = F.cross_entropy(logits.float(), yb,
                                       label_smoothing=candidate.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            schedule.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += len(idx)
        synchronize(device)
        epoch_train_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_train_seconds
        images += seen
        train_loss = float(loss_sum) / seen
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        val_loss, val_accuracy = evaluate(model, splits.val_x, splits.val_y)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "train_accuracy": float(correct) / seen,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "lr": lr,
            "seconds": time.perf_counter() - epoch_start,
            "images_per_second": seen / epoch_train_seconds,
        }
        history.append(metrics)
        if on_state is not None:  # a copy: state_dict() tensors are the live parameters
            on_state(copy.deepcopy({
                "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "generator": generator.get_state(),
                "history": history, "train_seconds": train_seconds, "images": images}))
        if report is not None and report(epoch, metrics):
            stopped = epoch < candidate.epochs
            break

    _, test_accuracy = evaluate(model, splits.test_x, splits.test_y)
    return TrainResult(
        val_accuracy=history[-1]["val_accuracy"],
        test_accuracy=test_accuracy,
        epochs=len(history),
        params=model.num_params,
        layers=model.num_layers,
        blocks=len(model.blocks),
        seconds=time.perf_counter() - started,
        images_per_second=images / train_seconds if train_seconds else 0.0,
        stopped_early=stopped,
        history=history,
        model=model,
    )
