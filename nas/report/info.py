"""What each figure of the report shows, collected from a study apart from any drawing.

As in Optuna's visualization modules, collection (``..._info``) is kept apart from
drawing (``plot_...``) so tests check the data rather than a picture, and
``nas report --json`` prints exactly what the figures draw. The results are
TypedDicts: plain dicts at run time (so the JSON is unchanged), typed for readers.
"""

from __future__ import annotations

import math
from typing import TypedDict

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.study.queries import pareto_front


class HistoryInfo(TypedDict):
    trial: list[int]
    accuracy: list[float]
    best: list[float]


class IntermediateSeries(TypedDict):
    trial: int
    state: str
    label: str
    epochs: list[int]
    accuracy: list[float]
    stopped_at: int | None


class DepthInfo(TypedDict):
    trial: list[int]
    nominal: list[int]
    useful: list[int]
    # the 90% interval's ends (the point itself where a study recorded none)
    useful_low: list[int]
    useful_high: list[int]
    accuracy: list[float]
    label: list[str]


class BlockShortcutInfo(TypedDict):
    blocks: list[str]
    shortcuts: list[str]
    accuracy: list[list[float | None]]
    trial: list[list[int | None]]


class ParamsInfo(TypedDict):
    trial: list[int]
    params: list[int]
    accuracy: list[float]
    label: list[str]
    front: list[int]


class LesionInfo(TypedDict):
    trial: int
    label: str
    accuracy: float
    blocks: list[str]
    importance: list[float]
    essential: list[bool]
    removable: list[str]
    useful_layers: int | None
    total_layers: int | None
    # per block, None where undefined or where an older study recorded none
    loss_rise: list[float | None]
    influence: list[float | None]
    ratio: list[float | None]
    cka: list[float | None]


class DeletionSeries(TypedDict):
    trial: int
    label: str
    plain: bool
    k: list[int]
    mean: list[float]
    draws: list[list[float]]


class LesionCurveInfo(TypedDict):
    trial: int
    label: str
    removed: list[int]  # 0 (the full network) to every removable block
    blocks: list[str]   # the block removed at each step after the first
    selection: list[float]
    held_out: list[float]  # empty for a study recorded before the halves were
    useful_removed: int
    deletions: list[DeletionSeries]


class DepthSweepSeries(TypedDict):
    layers: list[int]
    accuracy: list[float]
    trial: list[int]


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    """Complete trials with a finite accuracy (their first value), in trial order."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in trials if t.values and math.isfinite(t.values[0])]


def _block_shortcut(trial: FrozenTrial) -> tuple[str, str]:
    candidate = trial.user_attrs.get("candidate", {})
    return candidate.get("block", "?"), candidate.get("shortcut", "?")


def _label(trial: FrozenTrial) -> str:
    block, shortcut = _block_shortcut(trial)
    return f"{block}/{shortcut}"


def history_info(study: optuna.Study) -> HistoryInfo:
    """Each complete trial's accuracy in trial order, and the best so far."""
    info: HistoryInfo = {"trial": [], "accuracy": [], "best": []}
    best = -math.inf
    for t in _complete(study):
        best = max(best, t.values[0])
        info["trial"].append(t.number)
        info["accuracy"].append(t.values[0])
        info["best"].append(best)
    return info


def intermediate_info(study: optuna.Study) -> list[IntermediateSeries]:
    """Per-epoch validation accuracy of every trial that reported one.

    ``stopped_at`` is the epoch a pruned trial stopped at (its last reported
    epoch), None for the others.
    """
    series: list[IntermediateSeries] = []
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


def depth_info(study: optuna.Study) -> DepthInfo:
    """Nominal against useful layers of every complete trial that was analysed."""
    info: DepthInfo = {"trial": [], "nominal": [], "useful": [], "useful_low": [],
                       "useful_high": [], "accuracy": [], "label": []}
    for t in _complete(study):
        attrs = t.user_attrs
        if "useful_layers" not in attrs or "total_layers" not in attrs:
            continue
        info["trial"].append(t.number)
        info["nominal"].append(attrs["total_layers"])
        info["useful"].append(attrs["useful_layers"])
        low, high = attrs.get("useful_layers_interval") or [attrs["useful_layers"]] * 2
        info["useful_low"].append(low)
        info["useful_high"].append(high)
        info["accuracy"].append(t.values[0])
        info["label"].append(_label(t))
    return info


def block_shortcut_info(study: optuna.Study) -> BlockShortcutInfo:
    """Best accuracy (and the trial that reached it) for each block × shortcut pair tried."""
    best: dict[tuple[str, str], FrozenTrial] = {}
    for t in _complete(study):
        key = _block_shortcut(t)
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


def params_info(study: optuna.Study) -> ParamsInfo:
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


def lesion_info(study: optuna.Study) -> LesionInfo | None:
    """The block-by-block lesion profile of the best analysed trial, or None."""
    analysed = [t for t in _complete(study) if "block_importance" in t.user_attrs]
    if not analysed:
        return None
    front = [t.number for t in pareto_front(study)]
    trial = max(analysed, key=lambda t: (t.number in front[:1], t.values[0], -t.number))
    attrs = trial.user_attrs
    blocks = list(attrs["block_names"])
    ratios = dict(attrs.get("branch_ratio") or [])

    def per_block(key: str) -> list[float | None]:
        return list(attrs.get(key) or [None] * len(blocks))

    return {"trial": trial.number, "label": _label(trial), "accuracy": trial.values[0],
            "blocks": blocks, "importance": list(attrs["block_importance"]),
            "essential": list(attrs["essential"]), "removable": list(attrs["removable"]),
            "useful_layers": attrs.get("useful_layers"), "total_layers": attrs.get("total_layers"),
            "loss_rise": per_block("block_loss_increase"),
            "influence": per_block("block_influence"),
            "ratio": [ratios.get(name) for name in blocks], "cka": per_block("block_cka")}


def _deletions(trial: FrozenTrial) -> DeletionSeries:
    pairs = trial.user_attrs["random_deletions"]
    return {"trial": trial.number, "label": _label(trial),
            "plain": _block_shortcut(trial)[1] == "none", "k": [k for k, _ in pairs],
            "mean": [sum(draws) / len(draws) for _, draws in pairs],
            "draws": [list(draws) for _, draws in pairs]}


def deletion_bars(study: optuna.Study) -> dict[bool, float]:
    """Per kind (plain: True, residual: False), the best val accuracy among the complete
    trials that recorded random deletions: :func:`lesion_curve_info` draws that trial's.
    A search asks a new trial for its random deletions only when it may beat this bar."""
    bars: dict[bool, float] = {}
    for t in _complete(study):
        if t.user_attrs.get("random_deletions"):
            plain = _block_shortcut(t)[1] == "none"
            bars[plain] = max(bars.get(plain, -math.inf), t.values[0])
    return bars


def lesion_curve_info(study: optuna.Study) -> LesionCurveInfo | None:
    """The whole lesion curve of the trial the lesion profile shows (on both halves of the
    validation images), and Veit et al.'s random deletions of the best residual and the
    best plain network that recorded them. None when no trial recorded a curve."""
    profiled = lesion_info(study)
    if profiled is None:
        return None
    trial = next(t for t in _complete(study) if t.number == profiled["trial"])
    attrs = trial.user_attrs
    curve = attrs.get("lesion_curve")
    if not curve:
        return None
    full = attrs.get("selection_accuracy", trial.values[0])
    held_out = attrs.get("held_out_curve")
    with_deletions = [t for t in _complete(study) if t.user_attrs.get("random_deletions")]
    deletions = []
    for plain in (False, True):
        kind = [t for t in with_deletions if (_block_shortcut(t)[1] == "none") == plain]
        if kind:
            deletions.append(_deletions(max(kind, key=lambda t: (t.number == trial.number,
                                                                  t.values[0], -t.number))))
    return {"trial": trial.number, "label": _label(trial),
            "removed": list(range(len(curve) + 1)), "blocks": [name for name, _ in curve],
            "selection": [full, *(acc for _, acc in curve)],
            "held_out": [attrs["held_out_accuracy"], *held_out] if held_out else [],
            "useful_removed": len(attrs["removable"]), "deletions": deletions}


def depth_sweep_info(study: optuna.Study) -> dict[str, DepthSweepSeries]:
    """Best accuracy at each depth, one series per shortcut style (block/shortcut when the
    study tried several block types). Empty unless some series covers two depths or more."""
    complete = [t for t in _complete(study) if "layers" in t.user_attrs]
    several_blocks = len({t.user_attrs.get("candidate", {}).get("block") for t in complete}) > 1
    best: dict[str, dict[int, FrozenTrial]] = {}
    for t in complete:
        name = _label(t) if several_blocks else _block_shortcut(t)[1]
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
