"""Pictures of a study, read back from its storage, and the HTML report that holds them.

Split as Optuna's visualization is: ``info`` collects each figure's data, ``plots``
draws it, ``page`` assembles the HTML report and ``note`` writes the dashboard's
per-trial note. This module re-exports what the search and the CLI use.
"""

from __future__ import annotations

from nas.report.info import depth_info
from nas.report.note import DEPTH_FIGURE_ID, depth_note
from nas.report.page import (
    SECTIONS,
    collect,
    default_report_path,
    write_report,
    write_search_report,
)
from nas.report.plots import plot_depth

__all__ = [
    "DEPTH_FIGURE_ID",
    "SECTIONS",
    "collect",
    "default_report_path",
    "depth_info",
    "depth_note",
    "plot_depth",
    "write_report",
    "write_search_report",
]
