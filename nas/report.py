"""Pictures of a study, read back from its storage, and the HTML report that holds them.

As in Optuna's visualization modules, data collection (``..._info``) is separate
from drawing (``plot_...``), so tests check the data, not the picture. Every
collector takes a study and returns plain lists and dicts.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.storage import mask
from nas.studies import describe, pareto_front, state_counts, trial_candidate

DEPTH_FIGURE_ID = "resnas-useful-depth"


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials with a finite accuracy (their first value), in trial order."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in trials if t.values and math.isfinite(t.values[0])]


def _label(trial: FrozenTrial) -> str:
    candidate = trial.user_attrs.get("candidate", {})
    return f"{candidate.get('block', '?')}/{candidate.get('shortcut', '?')}"


# --- collectors ------------------------------------------------------------------------------


def history_info(study: optuna.Study) -> dict[str, list]:
    """Each complete trial's accuracy in trial order, and the best so far."""
    info: dict[str, list] = {"trial": [], "accuracy": [], "best": []}
    best = -math.inf
    for t in _complete(study):
        best = max(best, t.values[0])
        info["trial"].append(t.number)
        info["accuracy"].append(t.values[0])
        info["best"].append(best)
    return info


def intermediate_info(study: optuna.Study) -> list[dict[str, Any]]:
    """Per-epoch validation accuracy of every trial that reported one.

    ``stopped_at`` is the epoch a pruned trial stopped at (its last reported
    epoch), None for the others.
    """
    series = []
    for t in study.get_trials(deepcopy=False):
        if not t.intermediate_values:
            continue
        epochs = sorted(t.intermediate_values)
        series.append({
            "trial": t.number, "state": t.state.name, "label": _label(t), "epochs": epochs,
            "accuracy": [t.intermediate_values[e] for e in epochs],
            "stopped_at": epochs[-1] if t.state == TrialState.PRUNED else None,
        })
    return series


def depth_info(study: optuna.Study) -> dict[str, Any]:
    """Nominal against useful layers of every complete trial that was analysed."""
    info: dict[str, list] = {"trial": [], "nominal": [], "useful": [], "accuracy": [],
                             "label": []}
    for t in _complete(study):
        attrs = t.user_attrs
        if "useful_layers" not in attrs or "total_layers" not in attrs:
            continue
        info["trial"].append(t.number)
        info["nominal"].append(attrs["total_layers"])
        info["useful"].append(attrs["useful_layers"])
        info["accuracy"].append(t.values[0])
        info["label"].append(_label(t))
    return info


def block_shortcut_info(study: optuna.Study) -> dict[str, Any]:
    """Best accuracy (and the trial that reached it) for each block × shortcut pair tried."""
    best: dict[tuple[str, str], FrozenTrial] = {}
    for t in _complete(study):
        candidate = t.user_attrs.get("candidate", {})
        key = (candidate.get("block", "?"), candidate.get("shortcut", "?"))
        if key not in best or t.values[0] > best[key].values[0]:
            best[key] = t
    blocks = sorted({b for b, _ in best})
    shortcuts = sorted({s for _, s in best})
    return {
        "blocks": blocks, "shortcuts": shortcuts,
        "accuracy": [[best[b, s].values[0] if (b, s) in best else None for s in shortcuts]
                     for b in blocks],
        "trial": [[best[b, s].number if (b, s) in best else None for s in shortcuts]
                  for b in blocks],
    }


def params_info(study: optuna.Study) -> dict[str, list]:
    """Accuracy against parameters; ``front`` lists the Pareto-optimal trials by size.

    A trial is on the front when no other trial is at least as accurate with at
    most as many parameters and better in one of the two.
    """
    points = [(t.number, t.user_attrs["params"], t.values[0], _label(t))
              for t in _complete(study) if "params" in t.user_attrs]
    front = []
    best_accuracy = -math.inf
    # Fewest parameters first, most accurate first among equals: a point is on the front
    # when it beats every smaller network's accuracy.
    for number, _size, accuracy, _ in sorted(points, key=lambda p: (p[1], -p[2])):
        if accuracy > best_accuracy:
            front.append(number)
            best_accuracy = accuracy
    return {"trial": [p[0] for p in points], "params": [p[1] for p in points],
            "accuracy": [p[2] for p in points], "label": [p[3] for p in points],
            "front": front}


def lesion_info(study: optuna.Study) -> dict[str, Any] | None:
    """The block-by-block lesion profile of the best analysed trial, or None."""
    analysed = [t for t in _complete(study) if "block_importance" in t.user_attrs]
    if not analysed:
        return None
    front = [t.number for t in pareto_front(study)]
    trial = max(analysed, key=lambda t: (t.number in front[:1], t.values[0], -t.number))
    attrs = trial.user_attrs
    return {"trial": trial.number, "label": _label(trial), "accuracy": trial.values[0],
            "blocks": list(attrs["block_names"]), "importance": list(attrs["block_importance"]),
            "essential": list(attrs["essential"]), "removable": list(attrs["removable"]),
            "useful_layers": attrs.get("useful_layers"), "total_layers": attrs.get("total_layers")}


def depth_sweep_info(study: optuna.Study) -> dict[str, dict[str, list]]:
    """Best accuracy at each depth, one series per shortcut style (block/shortcut when the
    study tried several block types). Empty unless some series covers two depths or more."""
    complete = [t for t in _complete(study) if "layers" in t.user_attrs]
    several_blocks = len({t.user_attrs.get("candidate", {}).get("block") for t in complete}) > 1
    best: dict[str, dict[int, FrozenTrial]] = {}
    for t in complete:
        candidate = t.user_attrs.get("candidate", {})
        name = _label(t) if several_blocks else candidate.get("shortcut", "?")
        layers = t.user_attrs["layers"]
        by_depth = best.setdefault(name, {})
        if layers not in by_depth or t.values[0] > by_depth[layers].values[0]:
            by_depth[layers] = t
    if all(len(by_depth) < 2 for by_depth in best.values()):
        return {}
    return {name: {"layers": sorted(by_depth),
                   "accuracy": [by_depth[d].values[0] for d in sorted(by_depth)],
                   "trial": [by_depth[d].number for d in sorted(by_depth)]}
            for name, by_depth in sorted(best.items())}


# --- figures ---------------------------------------------------------------------------------


def _figure(title: str, x_title: str, y_title: str, percent_y: bool = True):
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                         template="plotly_white", margin={"t": 60, "r": 30},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.2})
    if percent_y:
        figure.update_yaxes(tickformat=".0%")
    return figure


def plot_history(info: dict[str, list]):
    import plotly.graph_objects as go

    figure = _figure("Optimisation history", "trial", "val accuracy")
    figure.add_trace(go.Scatter(x=info["trial"], y=info["accuracy"], mode="markers",
                                name="complete trial"))
    figure.add_trace(go.Scatter(x=info["trial"], y=info["best"], mode="lines",
                                name="best so far", line={"shape": "hv"}))
    return figure


def plot_intermediate(series: list[dict[str, Any]]):
    import plotly.graph_objects as go

    figure = _figure("Validation accuracy per epoch (x: where a pruned trial stopped)",
                     "epoch", "val accuracy")
    colors = {"COMPLETE": "#1f77b4", "PRUNED": "#d62728", "FAIL": "#7f7f7f",
              "RUNNING": "#2ca02c"}
    for s in series:
        figure.add_trace(go.Scatter(
            x=s["epochs"], y=s["accuracy"], mode="lines", name=f"trial {s['trial']}",
            legendgroup=s["state"], line={"color": colors.get(s["state"], "#9467bd"),
                                          "width": 1},
            hovertemplate=f"trial {s['trial']} ({s['label']}, {s['state'].lower()})"
                          "<br>epoch %{x}: %{y:.2%}<extra></extra>", showlegend=False))
    pruned = [s for s in series if s["stopped_at"] is not None]
    figure.add_trace(go.Scatter(
        x=[s["stopped_at"] for s in pruned], y=[s["accuracy"][-1] for s in pruned],
        mode="markers", name="pruned here", marker={"symbol": "x", "size": 9,
                                                    "color": colors["PRUNED"]},
        text=[f"trial {s['trial']}" for s in pruned],
        hovertemplate="%{text} pruned after epoch %{x}<extra></extra>"))
    return figure


def plot_depth(info: dict[str, Any]):
    """Scatter of useful against nominal layers; points on the diagonal use all their depth."""
    import plotly.graph_objects as go

    top = max(info["nominal"], default=1)
    figure = _figure("Nominal against useful depth", "layers (nominal)", "useful layers",
                     percent_y=False)
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="all layers useful",
                                line={"dash": "dot", "color": "gray"}))
    figure.add_trace(go.Scatter(
        x=info["nominal"], y=info["useful"], mode="markers", name="trials",
        marker={"color": info["accuracy"], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "val accuracy", "tickformat": ".0%"}, "size": 9},
        text=[f"trial {n}: {label}" for n, label in zip(info["trial"], info["label"],
                                                          strict=True)],
        hovertemplate="%{text}<br>%{x} layers, %{y} useful<extra></extra>"))
    return figure


def plot_block_shortcut(info: dict[str, Any]):
    import plotly.graph_objects as go

    figure = _figure("Best val accuracy by block and shortcut", "shortcut", "block",
                     percent_y=False)
    text = [[f"{v:.1%}" if v is not None else "" for v in row] for row in info["accuracy"]]
    figure.add_trace(go.Heatmap(
        z=info["accuracy"], x=info["shortcuts"], y=info["blocks"], text=text,
        texttemplate="%{text}", colorscale="Viridis",
        colorbar={"title": "val accuracy", "tickformat": ".0%"},
        hovertemplate="%{y}/%{x}: %{z:.2%}<extra></extra>"))
    return figure


def plot_params(info: dict[str, list]):
    import plotly.graph_objects as go

    figure = _figure("Accuracy against parameters", "parameters", "val accuracy")
    figure.update_xaxes(type="log")
    figure.add_trace(go.Scatter(
        x=info["params"], y=info["accuracy"], mode="markers", name="complete trial",
        text=[f"trial {n}: {label}" for n, label in zip(info["trial"], info["label"],
                                                          strict=True)],
        hovertemplate="%{text}<br>%{x:,} parameters: %{y:.2%}<extra></extra>"))
    where = {n: i for i, n in enumerate(info["trial"])}
    front = [where[n] for n in info["front"]]
    figure.add_trace(go.Scatter(
        x=[info["params"][i] for i in front], y=[info["accuracy"][i] for i in front],
        mode="lines+markers", name="Pareto front", line={"shape": "hv", "color": "#d62728"},
        marker={"size": 10, "symbol": "circle-open"}, hoverinfo="skip"))
    return figure


def plot_lesion(info: dict[str, Any]):
    import plotly.graph_objects as go

    figure = _figure(f"Lesion profile of trial {info['trial']} ({info['label']}, "
                     f"{info['useful_layers']} of {info['total_layers']} layers useful)",
                     "block", "accuracy lost when lesioned alone (pp)", percent_y=False)
    removable = set(info["removable"])
    colors = ["#7f7f7f" if essential else "#d62728" if name in removable else "#1f77b4"
              for name, essential in zip(info["blocks"], info["essential"], strict=True)]
    figure.add_trace(go.Bar(
        x=info["blocks"], y=[v * 100 for v in info["importance"]], marker={"color": colors},
        name="importance",
        hovertemplate="%{x}: %{y:.2f} pp<extra></extra>"))
    figure.add_annotation(text="blue: kept · red: removable · gray: essential (changes shape)",
                          xref="paper", yref="paper", x=0, y=1.08, showarrow=False)
    return figure


def plot_depth_sweep(info: dict[str, dict[str, list]]):
    import plotly.graph_objects as go

    figure = _figure("Accuracy against depth", "layers", "best val accuracy")
    for name, series in info.items():
        shown = f"{name} (plain network)" if name.endswith("none") else name
        figure.add_trace(go.Scatter(
            x=series["layers"], y=series["accuracy"], mode="lines+markers", name=shown,
            text=[f"trial {n}" for n in series["trial"]],
            hovertemplate=f"{name}, %{{x}} layers: %{{y:.2%}} (%{{text}})<extra></extra>"))
    return figure


# --- the HTML report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One figure of the report: its element id, how to read it, and its two halves."""

    id: str
    caption: str
    collect: Callable[[optuna.Study], Any]
    draw: Callable[[Any], Any]
    missing: str  # shown instead when the study has nothing to draw


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
            "no per-epoch values (a multi-objective study keeps none)"),
    Section("depth", "Layers each network has against the layers it needs to stay within "
            "the tolerance of its accuracy (useful depth). Points on the diagonal use all "
            "their depth.", depth_info, plot_depth, "no analysed trial"),
    Section("block-shortcut", "The best accuracy each block type reached with each shortcut "
            "style.", block_shortcut_info, plot_block_shortcut, "no complete trial yet"),
    Section("params", "Accuracy against size. The Pareto front joins the trials that no "
            "smaller network beats.", params_info, plot_params, "no complete trial yet"),
    Section("lesion", "How much accuracy the best network loses when each block alone is "
            "lesioned (its branch zeroed, so it passes its input on).", lesion_info,
            plot_lesion, "no analysed trial"),
    Section("depth-sweep", "The best accuracy at each depth, one line per shortcut style: "
            "plain networks (none) that get worse as they get deeper show the degradation "
            "problem residual connections solve.", depth_sweep_info, plot_depth_sweep,
            "not a depth sweep: no series covers two depths"),
)


def collect(study: optuna.Study) -> dict[str, Any]:
    """Every section's data, by section id (what the report draws, for tests and --json)."""
    return {section.id: section.collect(study) for section in SECTIONS}


def default_report_path(results_dir: str | Path, study_name: str) -> Path:
    return Path(results_dir) / study_name / "report.html"


def write_report(study: optuna.Study, path: str | Path, storage_url: str = "") -> list[str]:
    """Write the self-contained HTML report; return the ids of the figures drawn."""
    path = Path(path)
    parts = [_summary_html(study, storage_url)]
    drawn: list[str] = []
    for section in SECTIONS:
        info = section.collect(study)
        parts.append(f'<section id="section-{section.id}">'
                     f"<p class=\"caption\">{html.escape(section.caption)}</p>")
        if _has_data(info):
            figure = section.draw(info)
            # plotly.js goes in once, with the first figure: the file opens offline.
            parts.append(figure.to_html(full_html=False, include_plotlyjs=not drawn,
                                        div_id=section.id, config={"displaylogo": False}))
            drawn.append(section.id)
        else:
            parts.append(f'<p class="missing">{html.escape(section.missing)}</p>')
        parts.append("</section>")
    title = html.escape(f"resnas report: {study.study_name}")
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            f"<h1>{title}</h1>{''.join(parts)}</body></html>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)  # a reader never sees half a report
    return drawn


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;"
          "padding:0 1em;color:#222}section{margin:2em 0}.caption{color:#555}"
          ".missing{color:#999;font-style:italic}table{border-collapse:collapse}"
          "td,th{padding:2px 12px 2px 0;text-align:left}")


def _summary_html(study: optuna.Study, storage_url: str) -> str:
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
            rows.append(("candidate", describe(trial_candidate(best))))
        if "useful_layers" in attrs:
            rows.append(("useful depth", f"{attrs['useful_layers']} of {attrs['total_layers']} "
                                         f"layers ({attrs['useful_blocks']} of "
                                         f"{attrs['total_blocks']} blocks)"))
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    return f"<table>{cells}</table>"


def depth_note(number: int, attrs: dict[str, Any]) -> str:
    """Markdown for a trial's dashboard note: the per-block lesion table."""
    gates = dict(attrs.get("gate_means", []))
    alphas = dict(attrs.get("alphas", []))
    removable = set(attrs.get("removable", []))
    lines = [
        f"## Trial {number}: useful depth",
        "",
        f"{attrs['useful_layers']} of {attrs['total_layers']} layers useful "
        f"({attrs['useful_blocks']} of {attrs['total_blocks']} blocks).",
        "",
        "| block | importance (pp) | gate / alpha | kept |",
        "|---|---|---|---|",
    ]
    for name, importance, essential in zip(attrs["block_names"], attrs["block_importance"],
                                           attrs["essential"], strict=True):
        extra = gates.get(name, alphas.get(name))
        shown = f"{extra:.3f}" if extra is not None else ""
        kept = "essential" if essential else ("removable" if name in removable else "kept")
        lines.append(f"| {name} | {importance * 100:.2f} | {shown} | {kept} |")
    return "\n".join(lines) + "\n"
