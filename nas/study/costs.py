"""The cost objectives of a two-objective search, and when each is known.

``params`` and ``macs`` follow from the architecture and the data's shape, so the search
records them when a trial starts, before any training; ``latency`` is timed on the
trial's own device as the trial starts (:func:`nas.training.speed.latency`); the useful
depth only after training and the lesion analysis. The pareto pruner ranks trials on
their cost while they train, so it takes the first three and not the last.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nas.candidate import Candidate

BEFORE_TRAINING = ("params", "macs")
AS_TRAINING_STARTS = ("latency",)
# The user attribute each cost objective's value is recorded under (and, for latency,
# what a Tune result carries it as).
COST_ATTRS = {"params": "params", "macs": "macs", "latency": "latency_ms",
              "useful_layers": "useful_layers"}
# What a trial that times its latency reports with each epoch (nas.training.speed.latency).
TIMED_ATTRS = ("latency_ms", "latency_batch_ms")
# Channels, image size and classes of each dataset whose shape is fixed; the others take
# theirs from their options (imagefolder's classes are its folders: 10 stands in, which
# moves only the last layer's share).
_SHAPES = {"digits": (1, 8, 10), "mnist": (1, 28, 10), "fashion-mnist": (1, 28, 10),
           "cifar10": (3, 32, 10), "cifar100": (3, 32, 100)}


def input_shape(candidate: Candidate) -> tuple[int, int, int]:
    """(channels, image size, classes) of the candidate's data, without reading it."""
    if candidate.dataset in _SHAPES:
        return _SHAPES[candidate.dataset]
    from nas.data.options import check_options

    options = check_options(candidate.dataset, candidate.data)
    return (int(options["channels"]), int(options["image_size"]),
            int(options.get("classes") or 10))


def known_costs(candidate: Candidate) -> dict[str, int]:
    """The candidate's parameters and multiply-accumulates per image of its data (one
    small model built on the CPU: about 10 ms)."""
    from nas.models.resnet import build_model

    channels, size, classes = input_shape(candidate)
    model = build_model(candidate, channels, classes, size).eval()
    return {"params": int(model.num_params), "macs": count_macs(model, channels, size)}


def count_macs(model: Any, channels: int, size: int) -> int:
    """Multiply-accumulates of ``model``'s convolutions and linear layers for one image:
    the part of a forward pass that grows with depth and width."""
    import torch
    from torch import nn

    total = 0

    def count(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * kernel * module.in_channels // module.groups
        else:
            total += module.in_features * module.out_features

    hooks = [module.register_forward_hook(count) for module in model.modules()
             if isinstance(module, nn.Conv2d | nn.Linear)]
    try:
        with torch.inference_mode():
            model(torch.zeros(1, channels, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    return total
