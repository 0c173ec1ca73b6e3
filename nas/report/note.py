"""What the Optuna dashboard shows beside a trial once its useful depth is known.

``nas search`` saves this note and the depth figure into the study as each analysed
trial ends, so the dashboard shows them live; kept here, apart from the HTML page,
because it is markdown for one trial, not a picture of the study.
"""

from __future__ import annotations

from typing import Any

# The id the dashboard stores the nominal-against-useful depth figure under.
DEPTH_FIGURE_ID = "resnas-useful-depth"


def _interval(bounds: list[int] | None) -> str:
    """' (90% interval a-b)', or nothing for a study recorded before intervals were."""
    return f" (90% interval {bounds[0]}-{bounds[1]})" if bounds else ""


def depth_note(number: int, attrs: dict[str, Any]) -> str:
    """Markdown for a trial's dashboard note: the per-block lesion table."""
    gates = dict(attrs.get("gate_means", []))
    alphas = dict(attrs.get("alphas", []))
    removable = set(attrs.get("removable", []))
    lines = [
        f"## Trial {number}: useful depth",
        "",
        f"{attrs['useful_layers']} of {attrs['total_layers']} layers useful"
        f"{_interval(attrs.get('useful_layers_interval'))} "
        f"({attrs['useful_blocks']} of {attrs['total_blocks']} blocks).",
        "",
        "| block | importance (pp) | loss rise | gate / alpha | kept |",
        "|---|---|---|---|---|",
    ]
    # Studies recorded before the loss rise was measured have none: shown empty there.
    rises = attrs.get("block_loss_increase") or [None] * len(attrs["block_names"])
    for name, importance, rise, essential in zip(attrs["block_names"], attrs["block_importance"],
                                                 rises, attrs["essential"], strict=True):
        extra = gates.get(name, alphas.get(name))
        shown = f"{extra:.3f}" if extra is not None else ""
        loss = f"{rise:+.4f}" if rise is not None else ""
        kept = "essential" if essential else ("removable" if name in removable else "kept")
        lines.append(f"| {name} | {importance * 100:.2f} | {loss} | {shown} | {kept} |")
    return "\n".join(lines) + "\n"
