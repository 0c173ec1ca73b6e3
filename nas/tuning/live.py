"""The live view of ``nas search`` on a terminal: a table redrawn in place with ``rich``.

One row per running trial (number, candidate, an epoch bar, the last validation
accuracy, its time), a header with the counts, the best so far, the elapsed time and
an estimate of what is left. Finished trials and messages print above the table, as
the lines a log gets, so the terminal keeps the whole story once the table is gone.
``rich`` draws it because it already handles redrawing, resizing and terminals that
cannot (it then prints nothing live; :class:`nas.tuning.progress.LineProgress` is
chosen for those anyway).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from nas.tuning.progress import Progress, TrialEnd

REFRESH_PER_SECOND = 2


@dataclass
class LiveProgress(Progress):
    """The table on ``out`` (stderr), redrawn twice a second and on every event."""

    out: IO[str] = field(default_factory=lambda: sys.stderr)
    _live: Live | None = None

    def __post_init__(self) -> None:
        self._console = Console(file=self.out, highlight=False)
        self._live = Live(get_renderable=self._render, console=self._console,
                          refresh_per_second=REFRESH_PER_SECOND, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def _render(self) -> Group:
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name, justify in (("trial", "right"), ("candidate", "left"), ("epoch", "left"),
                              ("", "right"), ("last val", "right"), ("time", "right")):
            table.add_column(name, justify=justify)
        now = time.monotonic()
        for row in sorted(self.running.values(), key=lambda r: r.number):
            table.add_row(str(row.number), row.candidate,
                          ProgressBar(total=max(1, self.epochs), completed=row.epoch, width=20),
                          f"{row.epoch}/{self.epochs}",
                          "-" if row.val is None else f"{row.val:.2%}",
                          f"{now - row.started:.0f}s")
        return Group(Text(self.header(), style="bold"), table)

    def _print(self, text: str) -> None:
        self._console.print(Text(text), soft_wrap=True)  # above the table, scrolls with it

    def show_message(self, text: str, event: dict[str, Any]) -> None:
        self._print(text)

    def show_trial_ended(self, end: TrialEnd, line: str) -> None:
        self._print(line)

    def show_epoch(self, number: int, epoch: int, val: float) -> None:
        if self._live is not None:
            self._live.refresh()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
