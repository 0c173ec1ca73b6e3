"""Disk space: telling a full disk from other failures, and how much a search will write.

A full disk is the fault a long search meets most (checkpoints, Ray's session folder,
the study, TensorBoard files), and it reaches resnas in many shapes: ``OSError`` with
``ENOSPC`` from Python, SQLite's "database or disk is full" inside SQLAlchemy inside
Optuna's ``StorageInternalError``, PostgreSQL's SQLSTATE 53100, torch's writer failing
mid-file, a Ray worker's traceback as text. :func:`disk_full` reads them all, so each
place that writes can turn them into one :class:`nas.errors.DiskFull` line.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nas.errors import DiskFull, DiskShort, human_bytes, option
from nas.files import nearest_existing, shown_path

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
# What the layers above the OS say instead: SQLite, PostgreSQL, the C library's text.
_FULL_TEXT = re.compile(r"database or disk is full|no space left on device|"
                        r"could not extend file|disk quota exceeded|\[Errno 28\]",
                        re.IGNORECASE)
_PG_DISK_FULL = "53100"
NEARLY_FULL = 1_000_000  # bytes: less free than this, and a write of a search fails
RAY_TEMP_NEEDS = 200_000_000  # a private Ray's session logs for a search: tens of MB


def disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an exception behind it, says a disk is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if _PG_DISK_FULL in (getattr(exc, "pgcode", None), getattr(exc, "sqlstate", None)):
            return True
        if _FULL_TEXT.search(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
    return False


def free_bytes(path: str | Path) -> int | None:
    """Free space on the filesystem that holds ``path`` (or would); None if unknown."""
    try:
        return shutil.disk_usage(nearest_existing(Path(path).absolute())).free
    except OSError:
        return None


def full_error(exc: BaseException, suspects: Sequence[tuple[str, str | Path | None]],
               shown: str = "a folder resnas writes to") -> DiskFull:
    """The :class:`DiskFull` for ``exc``, naming the full place.

    ``suspects`` are the places the failed work writes to, as (what, path): the file the
    OS named when it names one (said as the suspect that holds it), else the suspect whose
    disk has the least space free (a Ray worker that died for want of space says nothing
    of where; the fullest disk is where). ``shown`` when none is a local path.
    """
    if isinstance(exc, DiskFull):
        return exc
    local = [(what, Path(path)) for what, path in suspects if path is not None]
    named = _named_file(exc)
    if named is not None:
        what = next((w for w, p in local if Path(named).is_relative_to(p)),
                    local[0][0] if local else suspects[0][0])
        return DiskFull(what, shown_path(named), free_bytes(named))
    if not local:
        return DiskFull(suspects[0][0] if suspects else "a folder", shown)
    free = [(free_bytes(path), what, path) for what, path in local]
    known = [row for row in free if row[0] is not None]
    left, what, path = min(known, key=lambda row: row[0]) if known else free[0]
    return DiskFull(what, shown_path(path), left)


def ray_temp_folder() -> Path:
    """Ray's temporary folder, by Ray's rule (``RAY_TMPDIR``, else ``TMPDIR`` on Linux, else
    /tmp; then ``ray/``): its session logs and spilled objects land there."""
    if os.environ.get("RAY_TMPDIR"):
        temp = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        temp = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        temp = "/tmp"
    else:
        temp = tempfile.gettempdir()
    return Path(temp, "ray")


def _named_file(exc: BaseException | None) -> str | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.filename:
            return str(exc.filename)
        exc = exc.__cause__ or exc.__context__
    return None


def write_bytes(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through Python's own file calls, never half under its name.

    torch's file writer reports a full disk as "unexpected pos" (a RuntimeError); a
    buffer written here fails as ``OSError(ENOSPC)``, which :func:`disk_full` knows. The
    partial temporary file is removed, so the free space then said is the real one.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# --- how much a search writes ---------------------------------------------------------
# Measured on a digits search (benchmarks/RESULTS.md, "Disk a search writes"): a trial's
# checkpoint is its weights and batch-norm statistics, ~4.8 bytes a parameter; its training
# state (weights, momentum, RNG) ~9.5, kept until the trial ends; Tune writes ~45 kB a
# trial (its experiment state, params, results) and ~8 kB an epoch (result.json,
# progress.csv, TensorBoard events); the study ~10 kB a trial; the report 2.1 MB (its
# figures draw at most 2,000 trials each: 2.8 MB at 10,000 trials).
CHECKPOINT_BYTES_PER_PARAM = 4.8
STATE_BYTES_PER_PARAM = 9.5
TRIAL_BYTES = 16_000 + 45_000 + 10_000
EPOCH_BYTES = 8_000
REPORT_BYTES = 3_000_000
SAMPLED = 8  # candidates drawn to size the networks; enough for "roughly"
DISK_CHECK_FLAG = "ignore_disk_space"


def search_disk_estimate(space, trials: int, concurrent: int) -> int:
    """Roughly the bytes a search of ``trials`` more trials writes, the most it holds at
    once: checkpoints, Tune's logs, the study, the report, and the training states of the
    ``concurrent`` trials that run at once (each trial's are removed when it ends)."""
    params = _mean_params(space)
    per_trial = CHECKPOINT_BYTES_PER_PARAM * params + TRIAL_BYTES + EPOCH_BYTES * space.epochs
    running = concurrent * STATE_BYTES_PER_PARAM * params
    return int(trials * per_trial + running + REPORT_BYTES)


def _mean_params(space) -> float:
    """Mean parameter count of a few random candidates of the space (seeded, so the same
    line each time), built on the CPU in a few milliseconds each."""
    import optuna

    from nas.models.resnet import build_model

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        draft = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=space.seed))
    finally:
        optuna.logging.set_verbosity(level)
    counts = []
    for _ in range(SAMPLED if space.searched else 1):
        candidate = space.suggest(draft.ask())
        counts.append(build_model(candidate, 3, 10, 32).num_params)
    return sum(counts) / len(counts)


def check_search_disk(space, trials: int, concurrent: int, folder: str | Path,
                      say, ignore: bool = False, private_ray: bool = True) -> None:
    """Say what the search will write into ``folder``; refuse with :class:`DiskShort`,
    one line, when the folder's disk clearly lacks it, or when a private Ray's temporary
    folder has too little for its session logs (``ignore``: say, never refuse)."""
    ray_temp = ray_temp_folder()
    ray_free = free_bytes(ray_temp)
    if private_ray and ray_free is not None and ray_free < RAY_TEMP_NEEDS and not ignore:
        raise DiskShort(f"Ray's temporary folder {ray_temp} has {human_bytes(ray_free)} "
                        f"free and Ray's logs need about {human_bytes(RAY_TEMP_NEEDS)}; free "
                        "space, point RAY_TMPDIR at a folder with room, or pass "
                        f"{option(DISK_CHECK_FLAG)} to start anyway")
    needed = search_disk_estimate(space, trials, concurrent)
    free = free_bytes(folder)
    shown = shown_path(folder)
    if free is None:
        say(f"disk: the search writes about {human_bytes(needed)} into {shown}")
        return
    if free < needed and not ignore:
        raise DiskShort(f"{shown} has {human_bytes(free)} free and the search writes about "
                        f"{human_bytes(needed)} ({trials} trials); free space, or pass "
                        f"{option(DISK_CHECK_FLAG)} to start anyway")
    say(f"disk: the search writes about {human_bytes(needed)} into {shown} "
        f"({human_bytes(free)} free)")
