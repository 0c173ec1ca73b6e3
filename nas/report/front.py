"""The report's figure of a two-objective study: its Pareto front as the search went, and
how many layers each network of the final front needs.

Collected from the study (``front_info``, lean: values, completion times and the useful
depth attributes) and drawn apart (``plot_front``), as the other figures are. A front is
of the complete trials only: a PRUNED trial keeps its values so far, which are not a
trained network's. Snapshots are the front after the first quarter, half, three quarters
and all of the complete trials, in the order they completed.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

from optuna.trial import FrozenTrial, TrialState

from nas.report.info import StudyLike, candidate_label
from nas.study._optuna import pareto_front_of

SNAPSHOTS = (0.25, 0.5, 0.75, 1.0)


class FrontInfo(TypedDict):
    objectives: list[str]
    snapshots: list[dict[str, Any]]  # share, trials, cost, accuracy (front, by cost)
    depth: dict[str, list[Any]]  # the final front: trial, cost, label, useful, total


def front_info(study: StudyLike) -> FrontInfo | None:
    """The front after each share of the complete trials, and the final front's useful
    depth; None for a one-objective study."""
    if len(study.directions) < 2:
        return None
    complete = sorted((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                       if t.values and all(math.isfinite(v) for v in t.values)),
                      key=lambda t: (t.datetime_complete is None, t.datetime_complete,
                                     t.number))
    if not complete:
        return None
    snapshots = []
    for share in SNAPSHOTS:
        seen = complete[:max(1, math.ceil(share * len(complete)))]
        front = sorted(pareto_front_of(seen, study.directions), key=lambda t: t.values[1])
        snapshots.append({"share": share, "trials": len(seen),
                          "trial": [t.number for t in front],
                          "cost": [t.values[1] for t in front],
                          "accuracy": [t.values[0] for t in front]})
    final = sorted(pareto_front_of(complete, study.directions), key=lambda t: t.values[1])
    objectives = list(study.user_attrs.get("objectives") or ["val_accuracy", "cost"])
    return {"objectives": objectives, "snapshots": snapshots,
            "depth": {"trial": [t.number for t in final], "cost": [t.values[1] for t in final],
                      "label": [candidate_label(t.user_attrs.get("candidate", {})) for t in final],
                      "useful": [_attr(t, "useful_layers") for t in final],
                      "total": [_attr(t, "total_layers") or _attr(t, "layers")
                                for t in final]}}


def _attr(trial: FrozenTrial, key: str) -> int | None:
    value = trial.user_attrs.get(key)
    return int(value) if isinstance(value, int | float) else None


def plot_front(info: FrontInfo) -> Any:
    """Left: the front after each share of the trials (later: darker). Right: each final
    front network's layers, useful and the rest."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cost_name = info["objectives"][1]
    figure = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], horizontal_spacing=0.1,
                           subplot_titles=("Pareto front as the search went",
                                           "Layers of each front network"))
    figure.update_layout(template="plotly_white", margin={"t": 70, "r": 30}, height=460,
                         legend={"orientation": "h", "yanchor": "top", "y": -0.2},
                         barmode="stack")
    shades = ["#c6dbef", "#6baed6", "#2171b5", "#08306b"]
    for snapshot, color in zip(info["snapshots"], shades, strict=False):
        figure.add_trace(go.Scatter(
            x=snapshot["cost"], y=snapshot["accuracy"], mode="lines+markers",
            line={"shape": "hv", "color": color}, marker={"color": color},
            name=f"after {snapshot['trials']} complete trials",
            text=[f"trial {n}" for n in snapshot["trial"]],
            hovertemplate=f"%{{text}}<br>{cost_name} %{{x:,.4g}}: %{{y:.2%}}<extra></extra>"),
            row=1, col=1)
    depth = info["depth"]
    names = [f"trial {n} ({label})" for n, label in zip(depth["trial"], depth["label"],
                                                         strict=True)]
    useful = [u if u is not None else 0 for u in depth["useful"]]
    rest = [max(0, (t or 0) - (u or 0)) if u is not None else (t or 0)
            for t, u in zip(depth["total"], depth["useful"], strict=True)]
    figure.add_trace(go.Bar(x=names, y=useful, name="useful layers", marker_color="#2ca02c"),
                     row=1, col=2)
    figure.add_trace(go.Bar(x=names, y=rest, name="layers not needed (or not analysed)",
                            marker_color="#d9d9d9"), row=1, col=2)
    figure.update_xaxes(title_text=cost_name, type="log" if cost_name in ("params", "macs")
                        else "linear", row=1, col=1)
    figure.update_yaxes(title_text="val accuracy", tickformat=".0%", row=1, col=1)
    figure.update_yaxes(title_text="layers", row=1, col=2)
    return figure
