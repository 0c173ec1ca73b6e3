"""Pruning on two objectives: :class:`ParetoPruner`, asynchronous successive halving
that ranks the trials at a rung by non-dominated sorting.

Optuna cannot prune a multi-objective study (``trial.report`` raises; RFC optuna#3450),
and Ray Tune's ``OptunaSearch`` gives it a no-op pruner. resnas knows a candidate's cost
(parameters, multiply-accumulates, latency) before or as it starts training, so after an
epoch a trial is a point (accuracy so far, cost) and can be ranked against the trials
that reached the same epoch.

The rule is MO-ASHA's (Schmucker et al., "Multi-objective multi-fidelity hyperparameter
optimization with application to fairness", 2021; Salinas et al., "A multi-objective
perspective on jointly tuning hardware and hyperparameters", NAS workshop at ICLR 2021),
as Syne Tune's ``MOASHA`` runs it by default:

- rungs at ``min_resource * reduction_factor**k`` epochs, below the search's last epoch;
- a trial reaching a rung is ranked with every trial recorded there before it: fronts
  by non-dominated sorting, and within a front the epsilon-net order (the most accurate
  point first, then each time the point farthest from those already taken, in objective
  space scaled to the rung's range, cost on a log scale);
- it goes on when its place in that order, counted from 0 and divided by the number of
  points, is at most ``1 / reduction_factor``; the first trial at a rung always goes on.

So the cheap end of the front survives as well as the accurate end: a small network that
is the most accurate of its size is never stopped for being less accurate than a big one.
A stopped trial is told PRUNED with its values so far (accuracy at its last epoch, cost).
The rungs live in memory; a resumed search rebuilds them from the study's finished
trials (their ``val_history`` and cost), so a crash loses no ranking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

Point = tuple[float, float]  # (accuracy, cost): accuracy up, cost down


class ParetoPruner(optuna.pruners.BasePruner):
    """MO-ASHA's stopping rule for a search of (val accuracy, cost); see the module.

    Optuna never asks it (:meth:`prune` says no): :class:`nas.study.policy.SearchPolicy`
    records each epoch with :meth:`record` and stops the trial when it says so.
    """

    def __init__(self, epochs: int, min_resource: int = 1, reduction_factor: int = 3) -> None:
        self.reduction_factor = reduction_factor
        self.rungs: dict[int, dict[int, Point]] = {}  # epoch -> trial number -> point
        rung = min_resource
        while rung < epochs:
            self.rungs[rung] = {}
            rung *= reduction_factor

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return False

    def record(self, number: int, epoch: int, accuracy: float, cost: float) -> bool:
        """Trial ``number`` reached ``epoch`` with ``accuracy`` at ``cost``: true when it
        should stop. Only a rung's epoch can stop it, once per rung."""
        recorded = self.rungs.get(epoch)
        if recorded is None or number in recorded:
            return False
        if not math.isfinite(accuracy):
            return True  # a diverged trial is stopped by training itself; never ranked
        point = (accuracy, cost)
        others = list(recorded.values())
        recorded[number] = point
        if not others:
            return False
        return place_of_last(others + [point]) / (len(others) + 1) > 1 / self.reduction_factor

    def load(self, trials: Iterable[FrozenTrial]) -> None:
        """Rebuild the rungs from a study's finished trials (a resumed search): each epoch
        of a trial's ``val_history`` at a rung, with its cost (its second value)."""
        for trial in trials:
            history = trial.user_attrs.get("val_history")
            if (trial.state not in (TrialState.COMPLETE, TrialState.PRUNED) or not history
                    or not trial.values or len(trial.values) < 2):
                continue
            for epoch, recorded in self.rungs.items():
                if epoch <= len(history) and math.isfinite(history[epoch - 1]):
                    recorded.setdefault(trial.number, (history[epoch - 1], trial.values[1]))


def place_of_last(points: Sequence[Point]) -> int:
    """The place (from 0) of the last of ``points`` in :func:`priority_order`, ordering
    only its own front: what a rung decision needs, in O(n log n) for n points."""
    fronts = nondominated_fronts(points)
    last = len(points) - 1
    before = 0
    for front in fronts:
        if last in front:
            return before + _epsilon_net(points, front).index(last)
        before += len(front)
    raise AssertionError("every point is on a front")


def priority_order(points: Sequence[Point]) -> list[int]:
    """Indices of ``points`` best first: front by front (non-dominated sorting), each
    front in epsilon-net order."""
    order: list[int] = []
    for front in nondominated_fronts(points):
        order.extend(_epsilon_net(points, front))
    return order


def nondominated_fronts(points: Sequence[Point]) -> list[list[int]]:
    """Indices of ``points`` in successive Pareto fronts (accuracy up, cost down).

    Two objectives sort in O(n log n): taken most accurate first (cheapest first among
    equals), a point joins the first front none of whose points dominates it, and whether
    a front dominates it shows in the front's cheapest point so far (any point of the
    front that dominates it is at least as dear and at least as accurate as that one).
    Domination by the k-th front is monotone in k, so the front is found by bisection.
    """
    fronts: list[list[int]] = []
    cheapest: list[Point] = []  # per front: its cheapest point so far
    for i in sorted(range(len(points)), key=lambda i: (-points[i][0], points[i][1])):
        point = points[i]
        low, high = 0, len(fronts)
        while low < high:
            middle = (low + high) // 2
            if _dominates(cheapest[middle], point):
                low = middle + 1
            else:
                high = middle
        if low == len(fronts):
            fronts.append([])
            cheapest.append(point)
        fronts[low].append(i)
        if point[1] <= cheapest[low][1]:
            cheapest[low] = point
    return fronts


def _dominates(a: Point, b: Point) -> bool:
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def _epsilon_net(points: Sequence[Point], front: list[int]) -> list[int]:
    """``front`` with its most accurate point first, then each time the point farthest
    (its nearest chosen point the farthest away) from those chosen: spread along the
    front before crowding any part of it (Salinas et al. 2021)."""
    scaled = _scaled(points)
    chosen = [max(front, key=lambda i: (points[i][0], -points[i][1], -i))]
    rest = [i for i in front if i != chosen[0]]
    nearest = {i: _distance(scaled[i], scaled[chosen[0]]) for i in rest}
    while rest:
        far = max(rest, key=lambda i: (nearest[i], -i))
        chosen.append(far)
        rest.remove(far)
        for i in rest:
            nearest[i] = min(nearest[i], _distance(scaled[i], scaled[far]))
    return chosen


def _scaled(points: Sequence[Point]) -> list[Point]:
    """Both objectives to [0, 1] over ``points``; cost on a log scale when positive (costs
    span orders of magnitude: parameters, multiply-accumulates)."""
    raw = [c for _, c in points]
    costs = [math.log(c) for c in raw] if all(c > 0 for c in raw) else raw
    accuracies = [a for a, _ in points]

    def unit(values: list[float]) -> list[float]:
        low, high = min(values), max(values)
        return [0.0 if high == low else (v - low) / (high - low) for v in values]

    return list(zip(unit(accuracies), unit(costs), strict=True))


def _distance(a: Point, b: Point) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])
