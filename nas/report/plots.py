"""Drawing of the report's figures from data the collectors in ``nas.report.info`` gathered.

Each ``plot_...`` takes one collector's result and returns a plotly figure; none reads
the study itself. plotly is imported inside each function so that reading studies,
``nas search`` and the dashboard note never pay for it unless a figure is drawn.
"""

from __future__ import annotations

from typing import Any

from nas.report.info import (
    BlockShortcutInfo,
    DepthInfo,
    DepthSweepSeries,
    HistoryInfo,
    IntermediateSeries,
    LesionCurveInfo,
    LesionInfo,
    ParamsInfo,
)

_ACCURACY_COLORBAR = {"title": "val accuracy", "tickformat": ".0%"}


def _figure(title: str, x_title: str, y_title: str, percent_y: bool = True) -> Any:
    import plotly.graph_objects as go

    figure = go.Figure()
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title,
                         template="plotly_white", margin={"t": 60, "r": 30},
                         legend={"orientation": "h", "yanchor": "top", "y": -0.2})
    if percent_y:
        figure.update_yaxes(tickformat=".0%")
    return figure


def _trial_labels(info: DepthInfo | ParamsInfo) -> list[str]:
    """Hover text of each point: its trial number and block/shortcut."""
    return [f"trial {n}: {label}" for n, label in zip(info["trial"], info["label"], strict=True)]


def plot_history(info: HistoryInfo) -> Any:
    import plotly.graph_objects as go

    figure = _figure("Optimisation history", "trial", "val accuracy")
    figure.add_trace(go.Scatter(x=info["trial"], y=info["accuracy"], mode="markers",
                                name="complete trial"))
    figure.add_trace(go.Scatter(x=info["trial"], y=info["best"], mode="lines",
                                name="best so far", line={"shape": "hv"}))
    return figure


def plot_intermediate(series: list[IntermediateSeries]) -> Any:
    """One line per trial, drawn as one trace per state and block/shortcut (lines apart at
    NaN gaps, numbers as typed arrays): at 2,000 trials a trace each made 0.9 MB of page."""
    import numpy as np
    import plotly.graph_objects as go

    figure = _figure("Validation accuracy per epoch (x: where a pruned trial stopped)",
                     "epoch", "val accuracy")
    colors = {"COMPLETE": "#1f77b4", "PRUNED": "#d62728", "FAIL": "#7f7f7f",
              "RUNNING": "#2ca02c"}
    groups: dict[tuple[str, str], list[IntermediateSeries]] = {}
    for s in series:
        groups.setdefault((s["state"], s["label"]), []).append(s)
    for (state, label), members in sorted(groups.items()):
        x = [v for s in members for v in (*s["epochs"], np.nan)]
        y = [v for s in members for v in (*s["accuracy"], np.nan)]
        trial = [s["trial"] for s in members for _ in range(len(s["epochs"]) + 1)]
        figure.add_trace(go.Scatter(
            x=np.array(x, dtype=float), y=np.array(y, dtype=float),
            customdata=np.array(trial), mode="lines", name=f"{label}, {state.lower()}",
            legendgroup=state, connectgaps=False,
            line={"color": colors.get(state, "#9467bd"), "width": 1},
            hovertemplate=f"trial %{{customdata}} ({label}, {state.lower()})"
                          "<br>epoch %{x}: %{y:.2%}<extra></extra>", showlegend=False))
    pruned = [s for s in series if s["stopped_at"] is not None]
    figure.add_trace(go.Scatter(
        x=[s["stopped_at"] for s in pruned], y=[s["accuracy"][-1] for s in pruned],
        mode="markers", name="pruned here", marker={"symbol": "x", "size": 9,
                                                    "color": colors["PRUNED"]},
        text=[f"trial {s['trial']}" for s in pruned],
        hovertemplate="%{text} pruned after epoch %{x}<extra></extra>"))
    return figure


def plot_depth(info: DepthInfo) -> Any:
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
                "colorbar": _ACCURACY_COLORBAR, "size": 9},
        # the bars: the useful depth's 90% bootstrap interval over validation images
        error_y={"type": "data", "symmetric": False, "thickness": 1, "color": "gray",
                 "array": [h - u for h, u in zip(info["useful_high"], info["useful"],
                                                 strict=True)],
                 "arrayminus": [u - lo for u, lo in zip(info["useful"], info["useful_low"],
                                                        strict=True)]},
        text=_trial_labels(info),
        customdata=list(zip(info["useful_low"], info["useful_high"], strict=True)),
        hovertemplate="%{text}<br>%{x} layers, %{y} useful (90% interval "
                      "%{customdata[0]}-%{customdata[1]})<extra></extra>"))
    return figure


def plot_block_shortcut(info: BlockShortcutInfo) -> Any:
    import plotly.graph_objects as go

    figure = _figure("Best val accuracy by block and shortcut", "shortcut", "block",
                     percent_y=False)
    text = [[f"{v:.1%}" if v is not None else "" for v in row] for row in info["accuracy"]]
    figure.add_trace(go.Heatmap(
        z=info["accuracy"], x=info["shortcuts"], y=info["blocks"], text=text,
        texttemplate="%{text}", colorscale="Viridis", colorbar=_ACCURACY_COLORBAR,
        hovertemplate="%{y}/%{x}: %{z:.2%}<extra></extra>"))
    return figure


def plot_params(info: ParamsInfo) -> Any:
    import plotly.graph_objects as go

    figure = _figure("Accuracy against parameters", "parameters", "val accuracy")
    figure.update_xaxes(type="log")
    figure.add_trace(go.Scatter(
        x=info["params"], y=info["accuracy"], mode="markers", name="complete trial",
        text=_trial_labels(info),
        hovertemplate="%{text}<br>%{x:,} parameters: %{y:.2%}<extra></extra>"))
    where = {n: i for i, n in enumerate(info["trial"])}
    front = [where[n] for n in info["front"]]
    figure.add_trace(go.Scatter(
        x=[info["params"][i] for i in front], y=[info["accuracy"][i] for i in front],
        mode="lines+markers", name="Pareto front", line={"shape": "hv", "color": "#d62728"},
        marker={"size": 10, "symbol": "circle-open"}, hoverinfo="skip"))
    return figure


def plot_lesion(info: LesionInfo) -> Any:
    """Lesion importance per block, and under it the one-pass measures on the same blocks:
    where they agree with the lesion and where they do not."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           row_heights=[0.55, 0.45])
    figure.update_layout(
        title=f"Lesion profile of trial {info['trial']} ({info['label']}, "
              f"{info['useful_layers']} of {info['total_layers']} layers useful)",
        template="plotly_white", margin={"t": 90, "r": 30}, height=560,
        legend={"orientation": "h", "yanchor": "top", "y": -0.15})
    removable = set(info["removable"])
    colors = ["#7f7f7f" if essential else "#d62728" if name in removable else "#1f77b4"
              for name, essential in zip(info["blocks"], info["essential"], strict=True)]
    figure.add_trace(go.Bar(
        x=info["blocks"], y=[v * 100 for v in info["importance"]], marker={"color": colors},
        name="accuracy lost (pp)", customdata=info["loss_rise"],
        hovertemplate="%{x}: %{y:.2f} pp, loss rise %{customdata:.4f}<extra></extra>"),
        row=1, col=1)
    measures = (("influence", "influence 1 - cos(in, out)", "#2ca02c"),
                ("ratio", "‖R(x)‖ / ‖S(x)‖", "#ff7f0e"),
                ("cka", "CKA with the next block", "#9467bd"))
    for key, name, color in measures:
        if any(v is not None for v in info[key]):
            figure.add_trace(go.Scatter(
                x=info["blocks"], y=info[key], mode="lines+markers", name=name,
                line={"color": color}, connectgaps=False,
                hovertemplate=f"%{{x}}: {name} %{{y:.3f}}<extra></extra>"), row=2, col=1)
    figure.update_yaxes(title_text="accuracy lost alone (pp)", row=1, col=1)
    # a log axis: influence is hundredths, the ratio tenths, CKA near 1
    figure.update_yaxes(title_text="one-pass measures (log)", type="log", row=2, col=1)
    figure.add_annotation(text="blue: kept · red: removable · gray: essential (changes shape)",
                          xref="paper", yref="paper", x=0, y=1.07, showarrow=False)
    return figure


def plot_lesion_curve(info: LesionCurveInfo) -> Any:
    """Accuracy as blocks go, greedily (least loss first) and at random (Veit et al.)."""
    import plotly.graph_objects as go

    figure = _figure(f"Lesion curve of trial {info['trial']} ({info['label']}) and random "
                     "deletions", "blocks lesioned", "val accuracy")
    steps = ["(none)", *info["blocks"]]
    if info["held_out"]:
        figure.add_trace(go.Scatter(
            x=info["removed"], y=info["held_out"], mode="lines+markers",
            name="greedy order, held-out half", line={"color": "#1f77b4"}, text=steps,
            hovertemplate="%{x} removed (last: %{text}): %{y:.2%} held-out<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=info["removed"], y=info["selection"], mode="lines", text=steps,
        # a study recorded before the halves chose and measured on the same images
        name=("greedy order, selection half (chooses)" if info["held_out"]
              else "greedy order (chosen and measured on the same images)"),
        line={"color": "#1f77b4", "dash": "dot" if info["held_out"] else "solid"},
        hovertemplate="%{x} removed (last: %{text}): %{y:.2%} selection<extra></extra>"))
    for series, color in zip(info["deletions"], ("#d62728", "#7f7f7f", "#2ca02c"),
                             strict=False):
        kind = "plain" if series["plain"] else "residual"
        name = f"random deletions, {kind} (trial {series['trial']}, {series['label']})"
        figure.add_trace(go.Scatter(
            x=series["k"], y=series["mean"], mode="lines+markers", name=name,
            line={"color": color},
            hovertemplate=f"{kind}: %{{x}} random blocks lesioned, mean %{{y:.2%}}"
                          "<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[k for k, draws in zip(series["k"], series["draws"], strict=True) for _ in draws],
            y=[v for draws in series["draws"] for v in draws], mode="markers",
            marker={"color": color, "size": 5, "opacity": 0.45}, showlegend=False,
            hovertemplate=f"{kind}: one draw of %{{x}} blocks: %{{y:.2%}}<extra></extra>"))
    figure.add_vline(x=info["useful_removed"], line={"dash": "dash", "color": "gray"},
                     annotation_text=f"useful depth: {info['useful_removed']} removable",
                     annotation_position="top right")
    return figure


def plot_depth_sweep(info: dict[str, DepthSweepSeries]) -> Any:
    import plotly.graph_objects as go

    figure = _figure("Accuracy against depth", "layers", "best val accuracy")
    for name, series in info.items():
        shown = f"{name} (plain network)" if name.endswith("none") else name
        figure.add_trace(go.Scatter(
            x=series["layers"], y=series["accuracy"], mode="lines+markers", name=shown,
            text=[f"trial {n}" for n in series["trial"]],
            hovertemplate=f"{name}, %{{x}} layers: %{{y:.2%}} (%{{text}})<extra></extra>"))
    return figure
