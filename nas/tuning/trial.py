"""One trial, as it runs on a Ray worker: train a candidate, report every epoch.

Only Ray workers run this module's :func:`run_trial`. It loads the data once
per worker, trains through :mod:`nas.training`, checkpoints the training state
into Ray Tune's storage after every epoch (with its SHA-256, so a damaged copy
is never loaded), writes the trained network where ``--results`` says, and
reports the useful-depth analysis with its last result.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray import tune

from nas.candidate import Candidate
from nas.disk import disk_full, full_error, ray_temp_folder
from nas.errors import Diverged, one_line
from nas.study.recovery import DISK_FULL
from nas.study.storage import is_url
from nas.testing import faults


def run_trial(config: dict[str, Any]) -> None:
    """Ray Tune function trainable: train one candidate, report every epoch.

    The last epoch is reported after training returns, together with the test
    accuracy and the checkpoint path, so Ray's reported epochs and Optuna's
    intermediate values stay one-to-one. Failures are reported, not raised:
    the study records their reason, and the search goes on.
    """
    from nas.training.checkpoint import STATE_FILE, write_state
    from nas.training.loop import train

    started = time.perf_counter()
    candidate = Candidate.from_dict(config["candidate"])
    node = ray.get_runtime_context().get_node_id()
    number = config["trial_number"]
    resume, unreadable = _restored_state()  # a state when Tune restarts a trial lost with its node
    static = {"node": node, "device": config["device"]}
    if config["device"] == "cuda":  # which GPU: Ray sets CUDA_VISIBLE_DEVICES to the trial's
        import torch

        static["gpu"] = torch.cuda.get_device_name(torch.cuda.current_device())
    if resume is not None:
        static["resumed_from"] = int(resume["epoch"])
    if unreadable:
        static["restarted"] = unreadable
    if config.get("latency_batch"):  # the latency objective: timed here, on the trial's device
        static.update(_latency(candidate, config))
    last: dict[str, Any] = {}
    state_dir = Path(tempfile.mkdtemp(prefix="resnas-state-"))

    restarted = resume is not None or bool(unreadable)

    def save_state(state: dict[str, Any]) -> None:
        if state["epoch"] >= candidate.epochs:
            return  # training is done: no checkpoint goes with the last epoch's result
        faults.before_state_saved(number, state["epoch"], restarted)
        write_state(state_dir, state)
        faults.after_state_saved(number, state["epoch"], restarted, state_dir, STATE_FILE)

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        last.clear()
        last.update(metrics, epoch=epoch, **static)
        if epoch < candidate.epochs:
            # Each epoch's state goes with its result into Tune's storage; a trial whose
            # node dies is restarted there from it (FailureConfig.max_failures).
            tune.report(dict(last), checkpoint=tune.Checkpoint.from_directory(str(state_dir)))
        return False

    try:
        faults.before_training(number)
        splits = _cached_splits(candidate, config)
        result = train(candidate, splits, report=report, device=config["device"],
                       threads=config["threads"], resume=resume, on_state=save_state)
        faults.before_checkpoint(number, config["checkpoint_dir"])
        path = save_trial_checkpoint(config, result, splits)
        final = {**last, "test_accuracy": result.test_accuracy, "epochs": result.epochs,
                 "layers": result.layers, "blocks": result.blocks, "params": result.params,
                 "seconds": time.perf_counter() - started,
                 "images_per_second": result.images_per_second, "checkpoint": str(path)}
        if config["usefulness"]["enabled"]:
            bar = config.get("deletions_from")  # None: record them whatever the accuracy
            final.update(depth_figures(
                result.model, splits, config["usefulness"]["tolerance"],
                with_deletions=bar is None or result.val_accuracy >= bar))
        tune.report(final)
    except Diverged as exc:
        tune.report({**static, "epoch": exc.epoch, "val_accuracy": math.nan,
                     "error": str(exc), "fail_reason": "diverged"})
    except Exception as exc:  # noqa: BLE001 - any trial failure is recorded, not raised
        if disk_full(exc):  # not the candidate's fault: the search stops, the trial reruns
            full = full_error(exc, _trial_writes(number, config["checkpoint_dir"]))
            tune.report({**static, "val_accuracy": math.nan, "error": str(full),
                         "fail_reason": DISK_FULL,
                         # flat: Tune flattens a nested dict into "disk_full/what"...
                         "disk_full_what": full.what, "disk_full_where": full.where,
                         "disk_full_free": -1 if full.free is None else full.free})
            return
        message = one_line(f"{type(exc).__name__}: {exc}", 500)
        # val_accuracy is there because Tune insists every result carries the metric.
        tune.report({**static, "val_accuracy": math.nan, "error": message,
                     "fail_reason": failure_reason(exc)})
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def _latency(candidate: Candidate, config: dict[str, Any]) -> dict[str, float]:
    """The untrained network's latency on this trial's device (the architecture decides
    it, not the weights), before training claims the device."""
    from nas.models.resnet import build_model
    from nas.study.costs import input_shape
    from nas.training.device import resolve_device
    from nas.training.speed import latency

    channels, size, classes = input_shape(candidate)
    model = build_model(candidate, channels, classes, size)
    return latency(model, channels, size, int(config["latency_batch"]),
                   resolve_device(config["device"]), int(config["threads"]))


def _trial_writes(number: int, checkpoint_dir: str) -> list[tuple[str, str | None]]:
    """Where a trial writes: its checkpoint, its training state, Ray's session logs."""
    return [(f"trial {number}'s checkpoint", None if is_url(checkpoint_dir) else checkpoint_dir),
            (f"trial {number}'s training state", tempfile.gettempdir()),
            ("Ray's temporary folder", str(ray_temp_folder()))]


def _restored_state() -> tuple[dict[str, Any] | None, str]:
    """The training state of the trial's last checkpoint when Tune restored the trial,
    or why it cannot be used (then the trial trains again from scratch)."""
    from nas.training.checkpoint import read_state

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None, ""
    try:
        with checkpoint.as_directory() as folder:
            return read_state(Path(folder)), ""
    except Exception as exc:  # noqa: BLE001 - a damaged state is never loaded half-way
        reason = one_line(exc, 200)
        return None, f"its last checkpoint is unreadable ({reason})"


def save_trial_checkpoint(config: dict[str, Any], result, splits) -> str:
    """The trained network, as ``nas train --save`` writes it, where ``--results`` says.

    A local or shared folder is written directly; a URI (``s3://``, ``gs://`` …)
    through pyarrow's filesystems, as Ray Tune writes its own storage.
    """
    from nas.training.checkpoint import save_checkpoint

    name = f"trial-{config['trial_number']}.pt"
    target = config["checkpoint_dir"]
    if not is_url(target):
        path = save_checkpoint(Path(target) / name, result.model, splits,
                               extra={"result": result.to_dict()})
        return str(path)
    import pyarrow.fs

    with tempfile.TemporaryDirectory(prefix="resnas-ckpt-") as folder:
        local = save_checkpoint(Path(folder) / name, result.model, splits,
                                extra={"result": result.to_dict()})
        uri = f"{target.rstrip('/')}/{name}"
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pyarrow.fs.copy_files(str(local), path, destination_filesystem=filesystem)
    return uri


def depth_figures(model, splits, tolerance: float, with_deletions: bool = True
                  ) -> dict[str, Any]:
    """Useful depth on the validation split, as flat values a Tune result can carry
    (``DepthReport.to_result``; its keys are ``nas.depth.report.RESULT_KEYS``).

    ``with_deletions``: Veit et al.'s random deletions too. The search's report draws them
    for the best residual and the best plain network only, so the searcher asks for them
    (``config["deletions_from"]``) only from a trial that may end up one of those: one
    whose val accuracy reaches the best of its kind that recorded them so far."""
    from nas.depth.lesion import analyze

    return analyze(model, splits.val_x, splits.val_y, tolerance=tolerance,
                   with_deletions=with_deletions).to_result()


_SPLITS: dict[tuple, Any] = {}


def _cached_splits(candidate: Candidate, config: dict[str, Any]):
    """Load the data once per worker: with reused actors, later trials skip the load."""
    from nas import data

    key = (candidate.dataset, config["data_dir"], candidate.seed, config["device"],
           tuple(sorted(candidate.data.items())))
    if key not in _SPLITS:
        _SPLITS.clear()  # one dataset at a time is all a worker needs
        _SPLITS[key] = data.load(candidate.dataset, data_dir=config["data_dir"],
                                 download=config["download"], seed=candidate.seed,
                                 device=config["device"], options=candidate.data)
    return _SPLITS[key]


def failure_reason(exc: Exception) -> str:
    """The short reason a study records for a trial that raised."""
    import torch

    if isinstance(exc, MemoryError | torch.OutOfMemoryError):
        return "out of memory"
    return "error"
