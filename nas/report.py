"""Pictures of a study, read back from its storage.

As in Optuna's visualization modules, data collection (``..._info``)
is separate from drawing (``plot_...``), so tests check the data, not the
picture.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

DEPTH_FIGURE_ID = "resnas-useful-depth"


def depth_info(study: optuna.Study) -> dict[str, Any]:
    """Nominal against useful layers of every complete trial that was analysed."""
    info: dict[str, list] = {"trial": [], "nominal": [], "useful": [], "accuracy": [],
                             "label": []}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        attrs = t.user_attrs
        if "useful_layers" not in attrs or "total_layers" not in attrs:
            continue
        candidate = attrs.get("candidate", {})
        info["trial"].append(t.number)
        info["nominal"].append(attrs["total_layers"])
        info["useful"].append(attrs["useful_layers"])
        info["accuracy"].append(t.values[0] if t.values else None)
        info["label"].append(f"{candidate.get('block', '?')}/{candidate.get('shortcut', '?')}")
    return info


def plot_depth(info: dict[str, Any]):
    """Scatter of useful against nominal layers; points on the diagonal use all their depth."""
    import plotly.graph_objects as go

    top = max(info["nominal"], default=1)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="all layers useful",
                                line={"dash": "dot", "color": "gray"}))
    figure.add_trace(go.Scatter(
        x=info["nominal"], y=info["useful"], mode="markers", name="trials",
        marker={"color": info["accuracy"], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "val accuracy"}},
        text=[f"trial {n}: {label}" for n, label in zip(info["trial"], info["label"],
                                                          strict=True)],
        hovertemplate="%{text}<br>%{x} layers, %{y} useful<extra></extra>"))
    figure.update_layout(title="Nominal against useful depth", xaxis_title="layers (nominal)",
                         yaxis_title="useful layers")
    return figure


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
