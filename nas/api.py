"""``nas.search()``: the search of ``nas search``, from Python (a notebook, a script).

It is the command's search exactly: the same typed entry checks the input
(:func:`nas.tuning.options.prepare`), the same driver runs it and writes the report
(:func:`nas.tuning.driver.run`), and it returns the Optuna study. Unlike the command it
never exits the interpreter (a mistake raises :class:`nas.NasError` naming the
parameter as you wrote it), prints nothing unless ``progress`` asks, leaves the
process's signal handlers, warning filters, environment and log levels as they were,
and uses a Ray the caller already started (``ray.init()`` in the notebook) instead of
starting its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nas.names import DEFAULT_RESULTS

if TYPE_CHECKING:
    import optuna

    from nas.space import SearchSpace
    from nas.tuning.progress import Progress


def search(space: str | Path | SearchSpace, *, trials: int | None = None,
           study: str | None = None, storage: str | None = None,
           results: str | Path | None = None, seed: int | None = None,
           epochs: int | None = None, dataset: str | None = None,
           data_dir: str | Path | None = None, download: bool = False,
           sampler: str | None = None, pruner: str | None = None,
           cpus_per_trial: float | None = None, gpus_per_trial: float | None = None,
           max_concurrent: int | None = None, address: str | None = None,
           progress: str | Progress = "quiet",
           ignore_disk_space: bool = False) -> optuna.Study:
    """Search a space: Ray Tune runs the trials, an Optuna study samples, prunes and keeps them.

    Args:
        space: a space file's path, or a ``SearchSpace`` from :func:`nas.load_space`.
        trials: finished trials the study should hold (default: the space's ``trials``);
            running it again on the same study resumes up to that many.
        study: the study's name (default: the space's ``name``).
        storage: an SQLAlchemy URL or an Optuna journal file (default:
            ``sqlite:///<results>/nas.db``).
        results: where checkpoints, Ray Tune's logs and the report go (default: ``results``).
        seed: seeds the sampler, the weights and the data split.
        epochs, dataset, data_dir, download, sampler, pruner: override the space's.
        cpus_per_trial, gpus_per_trial: what each trial holds (default: the space's
            ``trial_resources``); ``gpus_per_trial=0.25`` packs four trials on a GPU.
        max_concurrent: most trials at once (default: as many as the resources fit).
        address: a Ray cluster to join (``"auto"``, ``host:port``); without it a Ray the
            caller started is used, else a private one on 127.0.0.1 is started and stopped.
        progress: ``"quiet"`` (default), ``"lines"`` (stderr), ``"live"``, ``"json"``
            (stdout), or a :class:`nas.tuning.progress.Progress` of your own.
        ignore_disk_space: start even when the results folder's disk clearly lacks the
            space the search would write (``DiskShort`` otherwise).

    Returns:
        The ``optuna.Study``, with every trial it holds: per-epoch values, the useful depth
        of each complete one as user attributes (docs/useful-depth.md, "What a search
        records"), the report written.
        Its storage (an RDB one) records heartbeats for running trials, as the search
        needs; for your own ask-and-tell on the same study, load it with
        ``optuna.load_study(study_name=..., storage=URL)`` (no heartbeats, no warning).

    Raises:
        NasError: a bad argument, space file, storage or data folder (one line: what is
            wrong and what is allowed). Its kinds ``DiskShort`` (refused before it starts)
            and ``DiskFull`` (a disk filled up while it ran: finished trials are kept,
            running ones queued again; calling again once space is freed resumes) name the
            full place and the space free there.
        KeyboardInterrupt: interrupted; finished trials are kept, calling again resumes.
    """
    from nas.tuning.driver import run
    from nas.tuning.options import prepare

    opts = prepare(space, trials=trials, study=study, storage=storage,
                   results=DEFAULT_RESULTS if results is None else results, seed=seed,
                   epochs=epochs, dataset=dataset, data_dir=data_dir, download=download,
                   sampler=sampler, pruner=pruner, cpus_per_trial=cpus_per_trial,
                   gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent,
                   address=address, progress=progress, ignore_disk_space=ignore_disk_space)
    outcome = run(opts)
    opts.progress.message(outcome.report)  # where the report is (quiet: nothing)
    if outcome.interrupted:
        raise KeyboardInterrupt("search interrupted: finished trials are kept in the study; "
                                "call nas.search again to resume")
    return outcome.study
