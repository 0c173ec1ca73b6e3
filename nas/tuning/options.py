"""What a search needs beyond its space file, and what it hands back.

Torch- and Ray-free, so the command line can build and check a search's
options (resources included) before anything heavy is imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from nas.errors import NasError
from nas.space import SearchSpace
from nas.study.storage import is_url, open_storage
from nas.tuning.progress import LineProgress

# Results every trial reports with its last epoch and that the study keeps.
TRIAL_ATTRS = ("epochs", "layers", "blocks", "params", "seconds", "images_per_second", "node",
               "test_accuracy", "checkpoint", "device", "gpu", "resumed_from", "restarted")
# The useful-depth analysis of a complete trial (nas.depth), kept beside them.
DEPTH_ATTRS = ("useful_blocks", "total_blocks", "useful_layers", "total_layers",
               "useful_blocks_interval", "useful_layers_interval", "block_names",
               "block_importance", "block_loss_increase", "essential", "removable",
               "lesion_curve", "loss_curve", "gate_means", "alphas", "depth_seconds",
               "selection_images", "held_out_images", "selection_accuracy",
               "held_out_accuracy", "accuracy_without_removable", "held_out_curve",
               "block_influence", "block_cka", "branch_ratio", "random_deletions")


@dataclass
class SearchOptions:
    """Everything ``nas search`` needs beyond the space file."""

    space: SearchSpace
    study_name: str
    storage: str
    results_dir: str | Path  # a folder (shared by every node on a cluster) or a storage URI
    trials: int
    data_dir: str | None = None
    download: bool = False
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    address: str | None = None
    max_failures: int = 2
    out: Any = field(default=sys.stderr, repr=False)
    # What the search shows while it runs (nas.tuning.progress); None: lines on ``out``.
    progress: Any = field(default=None, repr=False)
    _opened: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = LineProgress(out=self.out)

    @property
    def ray_address(self) -> str | None:
        """The Ray cluster to join; None for a private local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def results(self, *parts: str) -> str:
        """A location under ``results_dir/<study>/``: an absolute path, or a URI."""
        if is_url(str(self.results_dir)):
            return "/".join([str(self.results_dir).rstrip("/"), self.study_name, *parts])
        return str(Path(self.results_dir).resolve().joinpath(self.study_name, *parts))

    def open_storage(self) -> optuna.storages.BaseStorage:
        """The study's storage, opened once: the command line opens an existing one to check
        it before Ray starts, and the search then uses that same connection."""
        if self._opened is None:
            self._opened = open_storage(self.storage, heartbeats=True)
        return self._opened


@dataclass
class SearchOutcome:
    study: optuna.Study
    ran: int
    interrupted: bool
    checkpoints: str
    tune_dir: str


def check_resources(cpus: float, gpus: float, have_cpus: float, have_gpus: float, *,
                    holder: str, cpu_option: str = "--cpus-per-trial",
                    gpu_option: str = "--gpus-per-trial") -> None:
    """What one trial asks for against what ``holder`` (this machine, the Ray cluster) has;
    the options name where the request came from (a flag or the space file)."""
    if cpus > have_cpus:
        raise NasError(f"{cpu_option} {cpus:g}: {holder} has {have_cpus:g} CPU(s) for resnas; "
                       f"allowed: at most {have_cpus:g}")
    if gpus > have_gpus:
        raise NasError(f"{gpu_option} {gpus:g}: {holder} has {have_gpus:g} GPU(s); allowed: "
                       + (f"at most {have_gpus:g}" if have_gpus else
                          "0 on a machine without one"))


def concurrency(opts: SearchOptions, cluster: dict[str, float]) -> int:
    """How many trials run at once: what fits the cluster, capped by --max-concurrent."""
    check_resources(opts.cpus_per_trial, opts.gpus_per_trial, cluster.get("CPU", 0),
                    cluster.get("GPU", 0), holder="the Ray cluster")
    if opts.max_concurrent:
        return max(1, min(opts.max_concurrent, opts.trials))
    fits = int(cluster.get("CPU", 1) // opts.cpus_per_trial)
    if opts.gpus_per_trial > 0:
        fits = min(fits, int(cluster.get("GPU", 0) // opts.gpus_per_trial))
    return max(1, min(fits, opts.trials))
