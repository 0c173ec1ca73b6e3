"""The self-contained HTML report of a study: a summary table, then one section per figure.

The page is what a person opens after a search, often offline, so plotly.js goes in
and nothing is fetched. It goes in gzipped (1.9 MB of base64 instead of 4.8 MB), and the
page unpacks it with the browser's DecompressionStream (every browser since 2023) before
drawing the figures from the JSON beside each one: a 16-trial report is ~2 MB instead of
5 MB, and one of 10,000 trials stays under 3 MB (issue 28). ``SECTIONS`` pairs each figure's
collector with its drawing, so ``collect`` (for ``nas report --json`` and tests) and
the page always cover the same figures.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from nas.disk import disk_full, full_error, write_bytes
from nas.errors import one_line
from nas.files import shown_path
from nas.report.front import front_info, plot_front
from nas.report.info import (
    Sampled,
    block_shortcut_info,
    depth_info,
    depth_sweep_info,
    history_info,
    intermediate_info,
    intermediate_sampled,
    lesion_curve_info,
    lesion_info,
    params_info,
    sampled_note,
)
from nas.report.plots import (
    plot_block_shortcut,
    plot_depth,
    plot_depth_sweep,
    plot_history,
    plot_intermediate,
    plot_lesion,
    plot_lesion_curve,
    plot_params,
)
from nas.study.config import mask
from nas.study.queries import LeanStudy, pareto_front, state_counts, trial_candidate


@dataclass(frozen=True)
class Section:
    """One figure of the report: its element id, how to read it, and its two halves."""

    id: str
    caption: str
    collect: Callable[[optuna.Study], Any]
    draw: Callable[[Any], Any]
    missing: str  # shown instead when the study has nothing to draw
    # what the figure left out past DRAWN_AT_MOST trials, where its data does not say
    sampled: Callable[[LeanStudy], Sampled | None] | None = None
    # whether the report of this study has the section at all (not: has it, empty)
    applies: Callable[[LeanStudy], bool] = lambda study: True


def _has_data(info: Any) -> bool:
    if isinstance(info, dict) and "trial" in info and isinstance(info["trial"], list):
        return bool(info["trial"])
    if isinstance(info, dict) and "blocks" in info and isinstance(info["blocks"], list):
        return bool(info["blocks"])
    return bool(info)


SECTIONS = (
    Section("history", "Each complete trial's validation accuracy, and the best so far.",
            history_info, plot_history, "no complete trial yet"),
    Section("intermediate", "Validation accuracy after every epoch. A cross marks the epoch "
            "at which the pruner stopped a trial.", intermediate_info, plot_intermediate,
            "no per-epoch values (a multi-objective study keeps none)",
            sampled=intermediate_sampled),
    Section("depth", "Layers each network has against the layers it needs to stay within "
            "the tolerance of its accuracy (useful depth). Points on the diagonal use all "
            "their depth.", depth_info, plot_depth, "no analysed trial"),
    Section("block-shortcut", "The best accuracy each block type reached with each shortcut "
            "style.", block_shortcut_info, plot_block_shortcut, "no complete trial yet"),
    Section("params", "Accuracy against size. The Pareto front joins the trials that no "
            "smaller network beats.", params_info, plot_params, "no complete trial yet"),
    Section("front", "Two objectives: the Pareto front of accuracy against the study's cost "
            "after a quarter, half, three quarters and all of its complete trials (pruned "
            "trials are never on it), and how many of each front network's layers are useful "
            "(green) out of its total.", front_info, plot_front,
            "no complete trial yet", applies=lambda study: len(study.directions) > 1),
    Section("lesion", "How much accuracy the best network loses when each block alone is "
            "lesioned (its branch zeroed, so it passes its input on), on the selection half "
            "of the validation images. Under it, measures from one forward pass: how far "
            "the block turns its input (1 - cos), how big its branch is against its "
            "shortcut, and how alike its output and the next block's are (linear CKA).",
            lesion_info, plot_lesion, "no analysed trial"),
    Section("lesion-curve", "Accuracy as the same network's blocks are removed one by one, "
            "least loss rise first, until every removable block is gone: chosen on the "
            "selection half (dotted), measured on the held-out half (solid); the useful "
            "depth is where the selection curve leaves the tolerance. Beside it Veit et al.'s "
            "experiment: k blocks lesioned at random (dots: draws, line: their mean), for "
            "the best residual and the best plain network.", lesion_curve_info,
            plot_lesion_curve, "no lesion curve recorded"),
    Section("depth-sweep", "The best accuracy at each depth, one line per shortcut style: "
            "plain networks (none) that get worse as they get deeper show the degradation "
            "problem residual connections solve.", depth_sweep_info, plot_depth_sweep,
            "not a depth sweep: no series covers two depths"),
)


def collect(study: optuna.Study | LeanStudy) -> dict[str, Any]:
    """Every section's data, by section id (what the report draws, for tests and --json)."""
    view = _lean(study)
    return {section.id: section.collect(view) for section in SECTIONS}


def _lean(study: optuna.Study | LeanStudy) -> LeanStudy:
    """The study read once, lean: at 10,000 trials the whole report then takes seconds."""
    return study if isinstance(study, LeanStudy) else LeanStudy(study)


def _sampled(section: Section, study: LeanStudy, info: Any) -> str | None:
    if section.sampled is not None:
        return sampled_note(section.sampled(study))
    return sampled_note(info.get("sampled")) if isinstance(info, dict) else None


def default_report_path(results_dir: str | Path, study_name: str) -> Path:
    return Path(results_dir) / study_name / "report.html"


def write_search_report(study: optuna.Study, results_dir: str | Path, study_name: str,
                        storage_url: str) -> tuple[str, bool]:
    """Write ``<results_dir>/<study>/report.html`` after a search; the line to show, and
    whether it failed (a failure here loses nothing already stored)."""
    path = default_report_path(results_dir, study_name)
    try:
        drawn = write_report(study, path, storage_url=storage_url)
    except Exception as exc:  # noqa: BLE001 - the study is safe in its storage; retry later
        if disk_full(exc):  # as any full disk of a search: one line, its own exit status
            raise full_error(exc, [("the report", path)]) from None
        return (f"warning: could not write the report ({type(exc).__name__}: "
                f"{one_line(exc, 200)}); the study is intact, retry with: nas report --study "
                f"{study_name}"), True
    return f"report: {shown_path(path)} ({len(drawn)} figures; open it in a browser)", False


def write_report(study: optuna.Study | LeanStudy, path: str | Path,
                 storage_url: str = "") -> list[str]:
    """Write the self-contained HTML report; return the ids of the figures drawn."""
    path = Path(path)
    study = _lean(study)
    parts = [_summary_html(study, storage_url)]
    drawn: list[str] = []
    for section in SECTIONS:
        if not section.applies(study):
            continue
        info = section.collect(study)
        parts.append(f'<section id="section-{section.id}">'
                     f"<p class=\"caption\">{html.escape(section.caption)}</p>")
        if _has_data(info):
            figure = section.draw(info)
            note = _sampled(section, study, info)
            if note:  # said on the figure itself, where a reader looks
                figure.update_layout(title_subtitle_text=note)
            # "</" never ends the script element early: JSON reads "<\/" as "</"
            data = figure.to_json().replace("</", "<\\/")
            parts.append(f'<div id="{section.id}" class="figure"></div>'
                         f'<script type="application/json" data-figure="{section.id}">'
                         f"{data}</script>")
            drawn.append(section.id)
        else:
            parts.append(f'<p class="missing">{html.escape(section.missing)}</p>')
        parts.append("</section>")
    title = html.escape(f"resnas report: {study.study_name}")
    scripts = (f'<script type="application/octet-stream" id="plotly-js">{_packed_plotly_js()}'
               f"</script><script>{_DRAW}</script>") if drawn else ""
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{title}</h1>{_STATUS if drawn else ''}{''.join(parts)}{scripts}"
            "</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, page.encode())  # a reader never sees half a report
    return drawn


@functools.lru_cache(maxsize=1)
def _packed_plotly_js() -> str:
    """The plotly.js of the installed plotly, gzipped (the same bytes each time) in base64."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode(), 6, mtime=0)).decode()


_STATUS = '<p id="report-status" class="missing">drawing the figures...</p>'
# Unpack plotly.js, run it, draw each figure from its JSON; then mark the page drawn
# (body data-figures) for whoever waits on it, or say on the page what went wrong.
_DRAW = """(async () => {
  const status = document.getElementById("report-status");
  try {
    if (typeof DecompressionStream === "undefined") {
      throw new Error("this browser has no DecompressionStream (every browser since 2023 has)");
    }
    const packed = Uint8Array.from(atob(document.getElementById("plotly-js").textContent),
                                   (c) => c.charCodeAt(0));
    const unpacked = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    const code = document.createElement("script");
    code.textContent = await new Response(unpacked).text();
    document.head.appendChild(code);
    for (const data of document.querySelectorAll("script[data-figure]")) {
      const figure = JSON.parse(data.textContent);
      await Plotly.newPlot(data.dataset.figure, figure.data, figure.layout,
                           {displaylogo: false, responsive: true});
    }
    status.remove();
    document.body.dataset.figures = "drawn";
  } catch (error) {
    status.textContent = "could not draw the figures: " + error.message;
    document.body.dataset.figures = "failed";
  }
})();"""

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;"
          "padding:0 1em;color:#222}section{margin:2em 0}.caption{color:#555}"
          ".missing{color:#999;font-style:italic}table{border-collapse:collapse}"
          "td,th{padding:2px 12px 2px 0;text-align:left}")


def _summary_html(study: LeanStudy, storage_url: str) -> str:
    counts = state_counts(study.get_trials(deepcopy=False))
    rows = [("dataset", study.user_attrs.get("dataset", "?")),
            ("trials", f"{counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
                       f"{counts['FAIL']} failed, {counts['RUNNING']} running")]
    if storage_url:
        rows.append(("storage", mask(storage_url)))
    front = pareto_front(study)
    if front:
        best = front[0]
        attrs = best.user_attrs
        text = f"trial {best.number}: val {best.values[0]:.2%}"
        if "test_accuracy" in attrs:
            text += f", test {attrs['test_accuracy']:.2%}"
        rows.append(("best", text))
        if "candidate" in attrs:
            rows.append(("candidate", trial_candidate(best).describe()))
        if "useful_layers" in attrs:
            rows.append(("useful depth", f"{attrs['useful_layers']} of {attrs['total_layers']} "
                                         f"layers ({attrs['useful_blocks']} of "
                                         f"{attrs['total_blocks']} blocks)"))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"
