"""What each figure of the report shows, collected from a study apart from any drawing.

As in Optuna's visualization modules, collection (``..._info``) is kept apart from
drawing (``plot_...``) so tests check the data rather than a picture, and
``nas report --json`` prints exactly what the figures draw. The results are
TypedDicts: plain dicts at run time (so the JSON is unchanged), typed for readers.

A collector takes an ``optuna.Study`` or, as the report passes it, a
:class:`nas.study.queries.LeanStudy` (every trial read once, lean: issue 28). A figure of
one point or line per trial draws at most ``DRAWN_AT_MOST`` of them: beyond that a person
sees a cloud, and the page grows by megabytes. The rest are drawn at random (seeded, so a
report is the same twice), every best and Pareto trial kept, and its ``sampled`` says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TypedDict, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.study.queries import LeanStudy, pareto_front

StudyLike = optuna.Study | LeanStudy
DRAWN_AT_MOST = 2000
_T = TypeVar("_T")


class Sampled(TypedDict):
    """How many points a figure would have had, and how many it draws."""

    total: int
    drawn: int


class HistoryInfo(TypedDict):
    trial: list[int]
    accuracy: list[float]
    best: list[float]
    sampled: Sampled | None  # None: every point drawn


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
    sampled: Sampled | None


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
    sampled: Sampled | None


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


def _complete(study: StudyLike) -> list[FrozenTrial]:
    """Complete trials with a finite accuracy (their first value), in trial order."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in trials if t.values and math.isfinite(t.values[0])]


def _full(study: StudyLike, trial: FrozenTrial) -> FrozenTrial:
    """The trial with every attribute, where ``study`` was read lean."""
    return study.full_trial(trial) if isinstance(study, LeanStudy) else trial


def _best_numbers(study: StudyLike) -> set[int]:
    return {t.number for t in pareto_front(study)}


def sample(items: Sequence[_T], number_of: Callable[[_T], int], keep: set[int],
           limit: int = DRAWN_AT_MOST) -> tuple[list[_T], Sampled | None]:
    """``items`` (in their order) cut to ``limit``: every item whose trial number is in
    ``keep``, the rest drawn at random with a fixed seed; and how many of how many."""
    if len(items) <= limit:
        return list(items), None
    kept = [i for i, item in enumerate(items) if number_of(item) in keep]
    others = [i for i, item in enumerate(items) if number_of(item) not in keep]
    drawn = set(kept) | set(random.Random(0).sample(others, max(0, limit - len(kept))))
    chosen = [item for i, item in enumerate(items) if i in drawn]
    return chosen, {"total": len(items), "drawn": len(chosen)}


def _block_shortcut(trial: FrozenTrial) -> tuple[str, str]:
    candidate = trial.user_attrs.get("candidate", {})
    return candidate.get("block", "?"), candidate.get("shortcut", "?")


def _label(trial: FrozenTrial) -> str:
    return candidate_label(trial.user_attrs.get("candidate", {}))


def candidate_label(candidate: dict) -> str:
    """``block/shortcut``: how the figures name a candidate."""
    return f"{candidate.get('block', '?')}/{candidate.get('shortcut', '?')}"


def history_info(study: StudyLike) -> HistoryInfo:
    """Each complete trial's accuracy in trial order, and the best so far."""
    points, records = [], set()
    best = -math.inf
    for t in _complete(study):
        if t.values[0] > best:
            records.add(t.number)  # the best-so-far line steps here: always drawn
        best = max(best, t.values[0])
        points.append((t.number, t.values[0], best))
    points, sampled = sample(points, lambda p: p[0], records)
    return {"trial": [p[0] for p in points], "accuracy": [p[1] for p in points],
            "best": [p[2] for p in points], "sampled": sampled}


def intermediate_info(study: StudyLike) -> list[IntermediateSeries]:
    """Per-epoch validation accuracy of every trial that reported one.

    ``stopped_at`` is the epoch a pruned trial stopped at (its last reported
    epoch), None for the others.
    """
    series: list[IntermediateSeries] = []
    for t in _reported(study)[0]:
        epochs = sorted(t.intermediate_values)
        series.append({
            "trial": t.number, "state": t.state.name, "label": _label(t), "epochs": epochs,
            "accuracy": [t.intermediate_values[e] for e in epochs],
            "stopped_at": epochs[-1] if t.state == TrialState.PRUNED else None,
        })
    return series


def _reported(study: StudyLike) -> tuple[list[FrozenTrial], Sampled | None]:
    """The trials with per-epoch values that the figure draws."""
    reported = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    return sample(reported, lambda t: t.number, _best_numbers(study))


def intermediate_sampled(study: StudyLike) -> Sampled | None:
    """What :func:`intermediate_info` left out (it returns its list of series alone, as
    ``nas report --json`` always gave it)."""
    return _reported(study)[1]


def sampled_note(sampled: Sampled | None) -> str | None:
    """The line a sampled figure carries."""
    if sampled is None:
        return None
    return (f"{sampled['total']:,} trials, {sampled['drawn']:,} drawn at random "
            "(every best and Pareto trial kept)")


class DepthPoint(TypedDict):
    """One analysed trial in the depth figure."""

    trial: int
    nominal: int
    useful: int
    useful_low: int
    useful_high: int
    accuracy: float
    label: str


def depth_point(number: int, attrs: dict, accuracy: float, label: str) -> DepthPoint | None:
    """The depth figure's point of a trial, from its user attributes; None when the trial
    was not analysed. A search makes it from what it records (nas.tuning.dashboard)."""
    if "useful_layers" not in attrs or "total_layers" not in attrs:
        return None
    low, high = attrs.get("useful_layers_interval") or [attrs["useful_layers"]] * 2
    return {"trial": number, "nominal": attrs["total_layers"], "useful": attrs["useful_layers"],
            "useful_low": low, "useful_high": high, "accuracy": accuracy, "label": label}


def depth_points(study: StudyLike) -> list[DepthPoint]:
    """The depth figure's point of every complete analysed trial, in trial order."""
    points = (depth_point(t.number, t.user_attrs, t.values[0], _label(t))
              for t in _complete(study))
    return [p for p in points if p is not None]


def depth_info_of(points: Sequence[DepthPoint], keep: set[int]) -> DepthInfo:
    """The depth figure's columns from its points, sampled past ``DRAWN_AT_MOST`` (the
    trials in ``keep`` always drawn)."""
    drawn, sampled = sample(points, lambda p: p["trial"], keep)
    info: DepthInfo = {"trial": [], "nominal": [], "useful": [], "useful_low": [],
                       "useful_high": [], "accuracy": [], "label": [], "sampled": sampled}
    for point in drawn:
        for key, value in point.items():
            info[key].append(value)  # type: ignore[literal-required]
    return info


def depth_info(study: StudyLike) -> DepthInfo:
    """Nominal against useful layers of every complete trial that was analysed."""
    return depth_info_of(depth_points(study), _best_numbers(study))


def block_shortcut_info(study: StudyLike) -> BlockShortcutInfo:
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


def params_info(study: StudyLike) -> ParamsInfo:
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
    points, sampled = sample(points, lambda p: p[0], set(front) | _best_numbers(study))
    return {"trial": [p[0] for p in points], "params": [p[1] for p in points],
            "accuracy": [p[2] for p in points], "label": [p[3] for p in points],
            "front": front, "sampled": sampled}


def lesion_info(study: StudyLike) -> LesionInfo | None:
    """The block-by-block lesion profile of the best analysed trial, or None."""
    analysed = [t for t in _complete(study) if "block_importance" in t.user_attrs]
    if not analysed:
        return None
    front = [t.number for t in pareto_front(study)]
    trial = _full(study, max(analysed, key=lambda t: (t.number in front[:1], t.values[0],
                                                        -t.number)))
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


def deletion_bars(study: StudyLike) -> dict[bool, float]:
    """Per kind (plain: True, residual: False), the best val accuracy among the complete
    trials that recorded random deletions: :func:`lesion_curve_info` draws that trial's.
    A search asks a new trial for its random deletions only when it may beat this bar."""
    bars: dict[bool, float] = {}
    for t in _complete(study):
        if t.user_attrs.get("random_deletions"):
            plain = _block_shortcut(t)[1] == "none"
            bars[plain] = max(bars.get(plain, -math.inf), t.values[0])
    return bars


def lesion_curve_info(study: StudyLike) -> LesionCurveInfo | None:
    """The whole lesion curve of the trial the lesion profile shows (on both halves of the
    validation images), and Veit et al.'s random deletions of the best residual and the
    best plain network that recorded them. None when no trial recorded a curve."""
    profiled = lesion_info(study)
    if profiled is None:
        return None
    trial = _full(study, next(t for t in _complete(study) if t.number == profiled["trial"]))
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


def depth_sweep_info(study: StudyLike) -> dict[str, DepthSweepSeries]:
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
