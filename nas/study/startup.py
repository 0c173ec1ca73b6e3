"""Shortest-first start-up: the sampler's random start-up trials, cheapest first.

TPE and GP sample at random until ``n_startup_trials`` trials have finished, and a
random sampler always does. Which of those random candidates trains first changes
nothing the sampler learns from them (it sees them all before it models anything),
but it decides how soon the first good network comes back: their training costs
differ tenfold on the default space (2.4-29 s a trial), and about 40% of them
reach 99% on digits, small ones among them. Running them cheapest first is
shortest-job-first scheduling, which minimises their mean completion time; the
set of candidates, and so what the search explores, stays the same random design.

A fresh study gets the design as queued trials (``study.enqueue_trial``), so it
survives a crash like any other trial and a resumed search picks up where it
stopped. Searches whose pruner compares trials keep the sampler's own order
unless asked (see PRUNERS_ON_OWN_VALUES). A candidate's cost is its network's
multiply-accumulates for one nominal 32x32 RGB image (rank-correlated 0.93 with
measured training time on the default space; benchmarks/RESULTS.md).
``sampler: {name: tpe, shortest_first: false}`` turns it off, ``true`` on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from nas.space.model import SearchSpace

if TYPE_CHECKING:
    import optuna

    from nas.candidate import Candidate

# Samplers whose first trials are random, with Optuna's default start-up count
# (None: every trial is random, so the whole budget is one design).
RANDOM_START = {"tpe": 10, "gp": 10, "random": None}
# Pruners that judge a trial by its own values only. The others compare trials at the
# same epoch, and cheapest first would make small, fast-learning networks the yardstick
# of the larger ones after them: on benchmarks/pruning.py's space, hyperband then lost
# 1.5 pp of best accuracy instead of 0.1-0.4 (benchmarks/RESULTS.md). So by default the
# order is kept for searches that prune that way; ``shortest_first: true`` asks anyway.
PRUNERS_ON_OWN_VALUES = ("none", "threshold")
NOMINAL_INPUT = (3, 32, 10)  # channels, image size, classes: only the ranking matters


def startup_size(space: SearchSpace, budget: int) -> int:
    """How many trials the design holds for this space's sampler (0: none)."""
    options = space.sampler
    name = options["name"]
    wanted = options.get("shortest_first", space.pruner["name"] in PRUNERS_ON_OWN_VALUES)
    if name not in RANDOM_START or not wanted:
        return 0
    if len(space.objectives) > 1:
        return 0
    count = options.get("n_startup_trials", RANDOM_START[name])
    return max(0, min(budget, budget if count is None else count))


def forward_macs(candidate: Candidate,
                 input_shape: tuple[int, int, int] = NOMINAL_INPUT) -> int:
    """Multiply-accumulates of the network's convolutions and linear layers for one
    image of ``input_shape`` (channels, size, classes; a nominal one ranks candidates
    just as well): the part of a forward pass that grows with depth and width."""
    from nas.models.resnet import build_model
    from nas.study.costs import count_macs

    channels, size, classes = input_shape
    # A real (small) model on the CPU: ten of them take ~0.1 s, the meta device ~1 s.
    return count_macs(build_model(candidate, channels, classes, size).eval(), channels, size)


def shortest_first_design(space: SearchSpace, count: int) -> list[dict[str, Any]]:
    """``count`` random candidates' parameters (seeded like the space's sampler),
    cheapest first; ties keep the order they were drawn in."""
    import optuna

    sampler = optuna.samplers.RandomSampler(seed=space.sampler.get("seed", space.seed))
    draft = optuna.create_study(sampler=sampler)  # in memory: only asks, never tells
    drawn = []
    for index in range(count):
        trial = draft.ask()
        candidate = space.suggest(trial)
        drawn.append((forward_macs(candidate), index, trial.params))
    return [params for _, _, params in sorted(drawn, key=lambda row: row[:2])]


def enqueue_startup(study: optuna.Study, space: SearchSpace, budget: int) -> int:
    """Queue the design in a study that holds no trial yet; returns how many were queued.

    A study that already holds trials (a resumed or extended search) keeps its own
    queue: its sampler's start-up is under way or done.
    """
    from nas.study import _optuna

    count = startup_size(space, budget)
    if count == 0 or _optuna.count_trials(_optuna.storage_of(study), _optuna.study_id(study)):
        return 0
    design = shortest_first_design(space, count)
    for start in range(0, len(design), QUEUE_CHUNK):
        # Two drivers starting the same study at once queue it once: each skips what is
        # queued already, read once a chunk (Optuna's skip_if_exists reads every queued
        # trial for each one it queues: minutes for a random design of 2,000 trials).
        queued = _queued_params(study)
        for params in design[start:start + QUEUE_CHUNK]:
            if _params_key(params) not in queued:
                study.enqueue_trial(params, user_attrs={"startup": "shortest-first"})
    return count


QUEUE_CHUNK = 50


def _params_key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _queued_params(study: optuna.Study) -> set[str]:
    """The params of every trial of the study, a queued one's as it was queued (what
    Optuna's ``skip_if_exists`` compares), read lean where there is SQL."""
    from nas.study import _optuna

    trials = _optuna.lean_trials(study, (), params=True, steps=False)
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    return {_params_key(t.system_attrs.get("fixed_params", t.params)) for t in trials}
