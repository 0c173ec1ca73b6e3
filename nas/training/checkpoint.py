"""Files that outlive a process: checkpoints of trained networks, and training states.

A checkpoint holds the candidate, the input shape and the weights, and is loaded
weights-only: resnas never runs code a file carries. A training state (weights,
optimizer, schedule, RNG, history after an epoch) is written with its SHA-256 so
that a trial resumed after its node was lost never continues from a damaged copy.
Torch only.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from nas.candidate import Candidate
from nas.data import Splits
from nas.disk import write_bytes
from nas.errors import NasError, one_line
from nas.models.resnet import ResNet, build_model

CHECKPOINT_FORMAT = 1
STATE_FILE = "training-state.pt"
DIGEST_FILE = "training-state.sha256"


def save_checkpoint(path: str | Path, model: ResNet, splits: Splits,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write the candidate, the input shape and the weights, loadable weights-only.

    Args:
        path: the file to write (its folder is created).
        model: the trained network.
        splits: the data it was trained on (its input shape is recorded).
        extra: more JSON-ready metadata to keep beside it.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "candidate": model.candidate.to_dict(),
        "input": {"in_channels": splits.in_channels, "num_classes": splits.num_classes,
                  "image_size": splits.image_size, "dataset": splits.name},
        "removed": list(model.removed),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": extra or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    # never half a checkpoint under the real name; a full disk fails as OSError(ENOSPC)
    write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(path: str | Path,
                    device: str | torch.device = "cpu") -> tuple[ResNet, dict[str, Any]]:
    """Rebuild a network from a checkpoint.

    Args:
        path: a file ``nas train --save``, ``nas compress --save`` or a search trial wrote.
        device: where the weights go.

    Returns:
        The network (eval mode) and the checkpoint's metadata (``input``: dataset,
        channels, classes, image size; anything saved as ``extra``).

    Raises:
        NasError: not a file, or not a resnas checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise NasError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        if not isinstance(payload, dict):
            raise TypeError(f"holds a {type(payload).__name__}, not a resnas checkpoint")
        candidate = Candidate.from_dict(payload["candidate"])
        shape = payload["input"]
        model = build_model(candidate, shape["in_channels"], shape["num_classes"],
                            shape["image_size"])
        model.remove_blocks(list(payload.get("removed", [])))
        model.load_state_dict(payload["state_dict"])
    except Exception as exc:  # noqa: BLE001 - whatever the file holds, it is not ours
        raise NasError(f"{path}: not a resnas checkpoint or corrupt ({load_failure(exc)}); "
                       "allowed: a file written by 'nas train --save'") from None
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(device), meta


def load_failure(exc: Exception) -> str:
    """Why torch could not load a file, in a few words and without torch's advice.

    torch's weights-only refusal suggests retrying with ``weights_only=False``,
    which would run whatever code the file carries; resnas never does that,
    so the reason names what the file asked to import instead.
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        wanted = re.search(r"unsupported GLOBAL (\S+)", text)
        if wanted:
            return (f"it holds Python objects ({wanted.group(1)}) that only unsafe loading "
                    "would build; refused")
        return "not a weights-only PyTorch file"
    first = one_line(text.strip().splitlines()[0]) if text.strip() else ""
    return first.split(". ")[0].rstrip(".")[:200] or type(exc).__name__


# --- training states ------------------------------------------------------------


def write_state(folder: Path, state: dict[str, Any]) -> None:
    """The training state and its SHA-256, so a damaged copy is never loaded as good."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    (folder / STATE_FILE).write_bytes(data)
    (folder / DIGEST_FILE).write_text(hashlib.sha256(data).hexdigest())


def read_state(folder: Path) -> dict[str, Any]:
    """A state :func:`write_state` wrote; raises ValueError when it is not intact."""
    state_file, digest_file = folder / STATE_FILE, folder / DIGEST_FILE
    if not state_file.is_file() or not digest_file.is_file():
        raise ValueError(f"{STATE_FILE} or its digest is missing")
    data = state_file.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest_file.read_text().strip():
        raise ValueError(f"{STATE_FILE} does not match its SHA-256 ({len(data)} bytes)")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - intact bytes torch still cannot read
        raise ValueError(load_failure(exc)) from None
