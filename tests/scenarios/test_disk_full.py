"""A disk that fills up under a search, on a real filesystem: one line, nothing lost.

Each case puts the study or the results folder on a size-limited tmpfs of its own (root
mounts it; elsewhere these tests skip) and lets the disk fill at one point of the search:
as the driver records a trial in the study, before a trial writes its checkpoint (the
``fill-disk-*`` faults of :mod:`nas.testing.faults` fill it there, so the writes that
follow meet a real full disk), and as the report is written (a disk the report does not
fit on). Each time: the documented exit status, one line and no traceback, the study
readable with Optuna and holding every finished trial; once space is freed, the same
command completes the study with no trial lost or doubled.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_faults import Search, assert_consistent, finished_snapshot

from nas.errors import DISK_FULL_EXIT
from nas.study.recovery import DISK_FULL
from nas.testing.faults import FILLER

pytestmark = pytest.mark.slow


class SmallDisk:
    """A tmpfs of ``size`` at ``path``, unmounted when the test ends."""

    def __init__(self, path: Path, size: str) -> None:
        self.path = path
        path.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                  str(path)], capture_output=True, text=True)
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")

    def grow(self, size: str) -> None:
        """Free space as a user would, by giving the filesystem more room."""
        subprocess.run(["mount", "-o", f"remount,size={size}", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disks: list[SmallDisk] = []

    def mount(name: str, size: str) -> SmallDisk:
        disks.append(SmallDisk(tmp_path / name, size))
        return disks[-1]

    yield mount
    for disk in disks:
        disk.unmount()


def one_line_stop(run: subprocess.CompletedProcess, what: str) -> str:
    """The run stopped with the disk-full status and one line naming ``what``."""
    assert run.returncode == DISK_FULL_EXIT, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"nas: no space left on the disk of {what}: "), last
    assert " free there); finished trials are kept: free space, then run again: nas search " \
        in last, last
    errors = [line for line in run.stderr.splitlines() if "rror" in line]
    assert errors == [], errors  # nothing else said something failed
    return last


def test_a_full_disk_under_the_study(tmp_path, small_disk) -> None:
    disk = small_disk("study-disk", "16m")
    search = Search(tmp_path)
    search.storage = f"sqlite:///{disk.path / 'nas.db'}"
    search.args[search.args.index("--storage") + 1] = search.storage
    stopped = search.run(RESNAS_INJECT_FAULTS="2:fill-disk-study")
    line = one_line_stop(stopped, "the study")
    assert str(disk.path / "nas.db") in line or "study-disk/nas.db" in line, line
    before = search.trials()  # readable with Optuna on the full disk
    kept = finished_snapshot(before)
    assert 2 not in kept  # the trial being recorded when the disk filled
    (disk.path / FILLER).unlink()
    rerun = search.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = search.trials()
    assert_consistent(after)
    assert {n: v for n, v in finished_snapshot(after).items() if n in kept} == kept


def test_a_full_disk_under_a_trials_checkpoint(tmp_path, small_disk) -> None:
    disk = small_disk("results-disk", "32m")
    search = Search(tmp_path)
    search.args[search.args.index("--results") + 1] = str(disk.path / "results")
    stopped = search.run(RESNAS_INJECT_FAULTS="1:fill-disk-checkpoint")
    one_line_stop(stopped, "trial 1's checkpoint")
    before = search.trials()
    kept = finished_snapshot(before)
    one = next(t for t in before if t.number == 1)
    # never COMPLETE without its checkpoint: failed for the disk, its candidate to run again
    assert one.state == TrialState.FAIL and one.user_attrs["fail_reason"] == DISK_FULL
    assert not (disk.path / "results" / "faults" / "checkpoints" / "trial-1.pt").exists()
    (disk.path / "results" / "faults" / "checkpoints" / FILLER).unlink()
    rerun = search.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    after = search.trials()
    assert_consistent(after)
    assert {n: v for n, v in finished_snapshot(after).items() if n in kept} == kept
    assert any(t.user_attrs.get("retry_of") == 1 and t.state == TrialState.COMPLETE
               for t in after)
    for trial in after:
        if trial.state == TrialState.COMPLETE:
            assert Path(trial.user_attrs["checkpoint"]).is_file(), trial.number
    # no training state left behind by any trial, whatever its end
    assert not list((disk.path / "results").rglob("checkpoint_0*"))


def test_a_full_disk_under_the_report_and_a_refused_start(tmp_path, small_disk) -> None:
    disk = small_disk("results-disk", "2m")  # the trials fit; the report (2.1 MB) does not
    search = Search(tmp_path)
    search.args[search.args.index("--results") + 1] = str(disk.path / "results")
    refused = search.run()
    assert refused.returncode == DISK_FULL_EXIT, refused.stderr[-3000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--ignore-disk-space" in lines[0], lines
    assert not (tmp_path / "nas.db").exists() and not (disk.path / "results").exists()

    search.args.append("--ignore-disk-space")
    stopped = search.run()
    one_line_stop(stopped, "the report")
    assert_consistent(search.trials())  # every trial finished before the report
    assert not list((disk.path / "results").rglob("report.html*"))  # no half report
    disk.grow("16m")
    rerun = search.run()
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "nothing to run" in rerun.stderr
    assert (disk.path / "results" / "faults" / "report.html").stat().st_size > 1_000_000
    assert len(optuna.load_study(study_name="faults", storage=search.storage).trials) == \
        len(search.trials())
