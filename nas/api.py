"""``nas.search()``: the search of ``nas search``, from Python (a notebook, a script).

It checks its input exactly as the command line does (the same code,
:func:`nas.cli.search.prepare_search`), runs the same driver, writes the same report,
and returns the Optuna study. Unlike the command it never exits the interpreter (a
mistake raises :class:`nas.NasError`), prints nothing unless ``progress`` asks, leaves
the process's signal handlers, warning filters, environment and log levels as they
were, and uses a Ray the caller already started (``ray.init()`` in the notebook) instead
of starting its own.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NasError
from nas.names import PROGRESS_CHOICES

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
           progress: str | Progress = "quiet") -> optuna.Study:
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

    Returns:
        The ``optuna.Study``, with every trial it holds: per-epoch values, the useful depth
        of each complete one as user attributes (see the README), the report written.
        Its storage (an RDB one) records heartbeats for running trials, as the search
        needs; for your own ask-and-tell on the same study, load it with
        ``optuna.load_study(study_name=..., storage=URL)`` (no heartbeats, no warning).

    Raises:
        NasError: a bad argument, space file, storage or data folder (one line: what is
            wrong and what is allowed).
        KeyboardInterrupt: interrupted; finished trials are kept, calling again resumes.
    """
    from nas.cli import build_parser
    from nas.cli.search import make_progress, prepare_search, write_search_report
    from nas.space import SearchSpace

    args = build_parser().parse_args(["search"])  # the command line's defaults
    loaded = space if isinstance(space, SearchSpace) else None
    args.space = None if loaded else str(space)
    for name, value, low in (("trials", trials, 1), ("seed", seed, 0), ("epochs", epochs, 1),
                             ("max_concurrent", max_concurrent, 1)):
        setattr(args, name, _whole(name, value, low))
    args.cpus_per_trial = _number("cpus_per_trial", cpus_per_trial, above=0.0)
    args.gpus_per_trial = _number("gpus_per_trial", gpus_per_trial, at_least=0.0)
    args.study, args.dataset, args.sampler, args.pruner = study, dataset, sampler, pruner
    args.storage = storage
    args.results = str(results) if results is not None else args.results
    args.data_dir = str(data_dir) if data_dir is not None else None
    args.download, args.address = bool(download), address
    if isinstance(progress, str) and progress not in PROGRESS_CHOICES:
        raise NasError(f"progress: got {progress!r}; allowed: {', '.join(PROGRESS_CHOICES)} "
                       "or a nas.tuning.progress.Progress")
    opts = prepare_search(args, space=loaded)
    opts.progress = make_progress(progress) if isinstance(progress, str) else progress

    from nas.tuning.driver import run_search

    with _optuna_quiet():
        outcome = run_search(opts)
        line, _ = write_search_report(opts, outcome.study)
    opts.progress.message(line)  # where the report is (quiet: nothing)
    if outcome.interrupted:
        raise KeyboardInterrupt("search interrupted: finished trials are kept in the study; "
                                "call nas.search again to resume")
    return outcome.study


@contextlib.contextmanager
def _optuna_quiet() -> Iterator[None]:
    """Optuna's per-trial INFO lines off for the search, the caller's level back after."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(level, optuna.logging.WARNING))
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _whole(name: str, value: Any, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise NasError(f"{name}: got {value!r}; allowed: an integer >= {low}")
    return value


def _number(name: str, value: Any, above: float | None = None,
            at_least: float | None = None) -> float | None:
    if value is None:
        return None
    ok = (isinstance(value, int | float) and not isinstance(value, bool)
          and math.isfinite(value) and (above is None or value > above)
          and (at_least is None or value >= at_least))
    if not ok:
        bound = f"> {above:g}" if above is not None else f">= {at_least:g}"
        raise NasError(f"{name}: got {value!r}; allowed: a number {bound}")
    return float(value)
