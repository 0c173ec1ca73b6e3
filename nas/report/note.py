"""What the Optuna dashboard shows beside a trial once its useful depth is known.

``nas search`` saves this note and the depth figure into the study as each analysed
trial ends, so the dashboard shows them live; kept here, apart from the HTML page,
because it is markdown for one trial, not a picture of the study.
"""

from __future__ import annotations

from typing import Any

# The id the dashboard stores the nominal-against-useful depth figure under.
DEPTH_FIGURE_ID = "resnas-useful-depth"


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
