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
    ]
    if "held_out_accuracy" in attrs:
        cost = 100 * (attrs["held_out_accuracy"] - attrs["accuracy_without_removable"])
        lines.append(f"Chosen on {attrs['selection_images']} validation images; removing the "
                     f"{len(removable)} removable blocks costs {cost:.2f} pp on the other "
                     f"{attrs['held_out_images']}.")
    lines += ["", "| block | importance (pp) | loss rise | gate / alpha | influence "
                  "| CKA next | kept |", "|---|---|---|---|---|---|---|"]
    # Studies recorded before a measure was taken have none: shown empty there.
    blank = [None] * len(attrs["block_names"])
    columns = zip(attrs["block_names"], attrs["block_importance"],
                  attrs.get("block_loss_increase") or blank, attrs.get("block_influence") or blank,
                  attrs.get("block_cka") or blank, attrs["essential"], strict=True)
    for name, importance, rise, influence, cka, essential in columns:
        extra = gates.get(name, alphas.get(name))
        kept = "essential" if essential else ("removable" if name in removable else "kept")
        lines.append(f"| {name} | {importance * 100:.2f} | {_shown(rise, '+.4f')} | "
                     f"{_shown(extra, '.3f')} | {_shown(influence, '.3f')} | "
                     f"{_shown(cka, '.3f')} | {kept} |")
    return "\n".join(lines) + "\n"


def _shown(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)
