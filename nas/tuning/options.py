"""A search's one typed entry: :func:`prepare` checks every input and gives the
:class:`SearchOptions` that :func:`nas.tuning.driver.run` searches with.

``nas search`` (:mod:`nas.cli.search`) parses its flags into :func:`prepare`'s keywords
and ``nas.search()`` (:mod:`nas.api`) passes its own: the rules of a search (overrides,
the default storage, data preparation, resources, the Ray address) live here once, and
an error names the input as its caller wrote it (``--storage`` or ``storage``). Torch- and
Ray-free at import, so a bad input fails before anything heavy is loaded.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from nas.errors import NasError, option
from nas.files import check_data_inputs, check_writable
from nas.names import (
    DEFAULT_RESULTS,
    DEFAULT_SPACE,
    PRUNERS,
    SAMPLERS,
    STUDY_NAME,
    STUDY_NAME_ALLOWED,
)
from nas.space import SearchSpace, load_space
from nas.study.storage import check_storage, is_url, open_storage, storage_for_search
from nas.tuning.progress import (
    JsonProgress,
    LineProgress,
    Progress,
    QuietProgress,
    check_progress_kind,
)

# Results every trial reports with its last epoch and that the study keeps.
TRIAL_ATTRS = ("epochs", "layers", "blocks", "params", "seconds", "images_per_second", "node",
               "test_accuracy", "checkpoint", "device", "gpu", "resumed_from", "restarted",
               "latency_ms", "latency_batch_ms")


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
    # What the search shows while it runs (nas.tuning.progress).
    progress: Progress = field(default_factory=QuietProgress, repr=False)
    _opened: Any = field(default=None, repr=False, compare=False)

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
    """What a search leaves: the study, the trials this run finished, whether it was
    stopped early (and by SIGTERM), where its files are, and the line saying where its
    report is."""

    study: optuna.Study
    ran: int
    interrupted: bool
    checkpoints: str
    tune_dir: str
    report: str = ""
    report_failed: bool = False
    terminated: bool = False  # stopped by SIGTERM (a scheduler, 'ray job stop'), not Ctrl-C


def prepare(space: str | Path | SearchSpace | None = None, *, trials: int | None = None,
            study: str | None = None, storage: str | None = None,
            results: str | Path = DEFAULT_RESULTS, seed: int | None = None,
            epochs: int | None = None, dataset: str | None = None,
            data_dir: str | Path | None = None, download: bool = False,
            sampler: str | None = None, pruner: str | None = None,
            cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
            max_concurrent: int | None = None, max_failures: int = 2,
            address: str | None = None,
            progress: str | Progress = "quiet",
            ignore_disk_space: bool = False) -> SearchOptions:
    """Every input checked, the data prepared, an existing storage opened: the options a
    search runs with. Arguments as :func:`nas.search` documents them (None: the space
    file's value); ``space`` None is the shipped default space.

    Nothing is written before every input is checked: the storage's form first (a new
    SQLite or journal file is created by the search itself, after Ray has started and found
    the resources), then the data and the resources, then an existing storage is opened.
    """
    for name, value, low in (("trials", trials, 1), ("seed", seed, 0), ("epochs", epochs, 1),
                             ("max_concurrent", max_concurrent, 1),
                             ("max_failures", max_failures, 0)):
        _check_whole(name, value, low)
    _check_number("cpus_per_trial", cpus_per_trial, above=0.0)
    _check_number("gpus_per_trial", gpus_per_trial, at_least=0.0)
    for name, value, allowed in (("sampler", sampler, SAMPLERS), ("pruner", pruner, PRUNERS)):
        if value is not None and value not in allowed:
            raise NasError(f"{option(name)}: got {value!r}; allowed: {', '.join(allowed)}")
    if isinstance(progress, str):
        check_progress_kind(progress)  # now; the display itself starts once all is checked
    check_data_inputs(dataset, data_dir)
    if not isinstance(space, SearchSpace):
        space = load_space(space if space is not None else _default_space())
    space = space.with_overrides(dataset=dataset, epochs=epochs, seed=seed,
                                 sampler=sampler, pruner=pruner)
    if study is not None and not STUDY_NAME.fullmatch(study):
        raise NasError(f"{option('study')} {study}: not a usable study name; allowed: "
                       f"{STUDY_NAME_ALLOWED} (it names a folder under {option('results')})")
    results = str(results)
    if not is_url(results):  # a URI (s3://, gs://, ...) is checked by Ray Tune itself
        check_writable(Path(results) / ".probe", option("results"))
    storage = storage_for_search(storage, results)
    storage_exists = check_storage(storage)
    opts = SearchOptions(
        space=space, study_name=study or space.name, storage=storage,
        results_dir=results if is_url(results) else Path(results),
        trials=trials or space.trials, data_dir=None if data_dir is None else str(data_dir),
        download=bool(download),
        cpus_per_trial=float(cpus_per_trial or space.trial_resources["cpu"]),
        gpus_per_trial=float(gpus_per_trial if gpus_per_trial is not None
                             else space.trial_resources["gpu"]),
        max_concurrent=max_concurrent, address=address, max_failures=max_failures,
    )
    _check_latency_device(opts)
    from nas.tuning.cluster import callers_ray, check_address

    if opts.ray_address and not callers_ray():
        check_address(opts.ray_address)  # a cluster that answers, before anything is written
    if not opts.ray_address:
        from nas import data

        # The data, once, here: not a failed trial per worker (a cluster's workers may
        # see other folders than the driver, so there each trial finds its own).
        data.prepare(space.dataset, data_dir=opts.data_dir, download=opts.download,
                     options=space.data)
        _check_local_resources(opts, from_space=(cpus_per_trial is None,
                                                 gpus_per_trial is None))
    if storage_exists:
        opts.open_storage()  # a server or an existing file: a bad one fails before Ray starts
    opts.progress = make_progress(progress) if isinstance(progress, str) else progress
    if not is_url(results):
        _check_disk(opts, storage_exists, ignore_disk_space)
    return opts


def _check_latency_device(opts: SearchOptions) -> None:
    """A latency objective needs a device each trial has to itself: a share of a GPU or of
    a CPU core would time the neighbours' work too."""
    if "latency" not in opts.space.objectives:
        return
    gpus, cpus = opts.gpus_per_trial, opts.cpus_per_trial
    if 0 < gpus < 1 or (gpus == 0 and cpus < 1) or not float(gpus).is_integer():
        share = f"{gpus:g} GPU" if gpus else f"{cpus:g} CPU"
        raise NasError(f"objectives: latency is timed on the trial's own device and "
                       f"{option('gpus_per_trial') if gpus else option('cpus_per_trial')} "
                       f"gives each trial {share}, a share that would time its neighbours "
                       "too; allowed: a whole GPU per trial (1, 2, ...) or, on CPUs, 1 or "
                       "more CPUs per trial")


def _check_disk(opts: SearchOptions, storage_exists: bool, ignore: bool) -> None:
    """Say how much the search will write into the results folder; refuse when that disk
    clearly lacks it. A resumed study counts only the trials still to run."""
    from nas.disk import check_search_disk
    from nas.study.queries import count_finished_in
    from nas.training.device import available_cpus

    finished = count_finished_in(opts.open_storage(), opts.study_name) if storage_exists else 0
    remaining = max(0, opts.trials - finished)
    if remaining == 0:
        return
    concurrent = opts.max_concurrent or max(1, int(available_cpus() // opts.cpus_per_trial))
    check_search_disk(opts.space, remaining, min(concurrent, remaining),
                      Path(opts.results_dir), opts.progress.message, ignore,
                      private_ray=not opts.ray_address)


def make_progress(kind: str) -> Progress:
    """The display a search gets by name (``--progress``, ``nas.search(progress=...)``):
    ``auto`` is live on a terminal that can redraw, else lines."""
    check_progress_kind(kind)
    if kind == "auto":
        terminal = sys.stderr.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
        kind = "live" if terminal else "lines"
    if kind == "live":
        from nas.tuning.live import LiveProgress

        return LiveProgress(out=sys.stderr)
    return {"lines": LineProgress, "json": JsonProgress, "quiet": QuietProgress}[kind]()


def _default_space() -> Path:
    """The shipped default space, found from the working folder or beside the package."""
    here = Path(DEFAULT_SPACE)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / DEFAULT_SPACE


def _check_local_resources(opts: SearchOptions, from_space: tuple[bool, bool]) -> None:
    """What a trial asks for against this machine, before a private Ray is started for it
    (Ray gets exactly these CPUs; its GPUs are the ones torch sees)."""
    import torch

    from nas.training.device import available_cpus

    path = opts.space.path
    check_resources(opts.cpus_per_trial, opts.gpus_per_trial, available_cpus(),
                    torch.cuda.device_count(), holder="this machine",
                    cpu_option=(f"{path}: trial_resources.cpu" if from_space[0]
                                else option("cpus_per_trial")),
                    gpu_option=(f"{path}: trial_resources.gpu" if from_space[1]
                                else option("gpus_per_trial")))


def _check_whole(name: str, value: Any, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < low):
        raise NasError(f"{option(name)}: got {value!r}; allowed: an integer >= {low}")


def _check_number(name: str, value: Any, above: float | None = None,
                  at_least: float | None = None) -> None:
    if value is None:
        return
    ok = (isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and (above is None or value > above)
          and (at_least is None or value >= at_least))
    if not ok:
        bound = f"> {above:g}" if above is not None else f">= {at_least:g}"
        raise NasError(f"{option(name)}: got {value!r}; allowed: a number {bound}")


def check_resources(cpus: float, gpus: float, have_cpus: float, have_gpus: float, *,
                    holder: str, cpu_option: str | None = None,
                    gpu_option: str | None = None) -> None:
    """What one trial asks for against what ``holder`` (this machine, the Ray cluster) has;
    the options name where the request came from (a flag or the space file)."""
    cpu_option = cpu_option or option("cpus_per_trial")
    gpu_option = gpu_option or option("gpus_per_trial")
    if cpus > have_cpus:
        raise NasError(f"{cpu_option} {cpus:g}: {holder} has {have_cpus:g} CPU(s) for resnas; "
                       f"allowed: at most {have_cpus:g}")
    if gpus > have_gpus:
        raise NasError(f"{gpu_option} {gpus:g}: {holder} has {have_gpus:g} GPU(s); allowed: "
                       + (f"at most {have_gpus:g}" if have_gpus else
                          "0 on a machine without one"))


def concurrency(opts: SearchOptions, cluster: dict[str, float]) -> int:
    """How many trials run at once: what fits the cluster, capped by ``max_concurrent``."""
    check_resources(opts.cpus_per_trial, opts.gpus_per_trial, cluster.get("CPU", 0),
                    cluster.get("GPU", 0), holder="the Ray cluster")
    if opts.max_concurrent:
        return max(1, min(opts.max_concurrent, opts.trials))
    fits = int(cluster.get("CPU", 1) // opts.cpus_per_trial)
    if opts.gpus_per_trial > 0:
        fits = min(fits, int(cluster.get("GPU", 0) // opts.gpus_per_trial))
    return max(1, min(fits, opts.trials))
