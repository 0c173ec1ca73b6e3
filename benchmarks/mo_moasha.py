"""Syne Tune's MOASHA, set up as its MOASHA example does, for the replay to drive.

Syne Tune runs trials through a backend and a ``Tuner``; the replay drives the scheduler
itself, as Syne Tune's tuner does: ``suggest`` for a new trial's config (MOASHA draws it
at random from the config space, with NumPy's global generator, seeded here), then
``on_trial_add``, ``on_trial_result`` after each epoch (STOP or CONTINUE) and
``on_trial_complete``. Metrics as Syne Tune wants them: minimised, so the error
(1 - val accuracy) and the MACs. Only this module imports Syne Tune
(``pip install syne-tune``; 0.16.0 when measured).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import numpy as np


class _Scheduler:
    """MOASHA with accuracy in, error out: the replay reports val accuracy."""

    def __init__(self, moasha: Any) -> None:
        self.moasha = moasha

    @staticmethod
    def _metrics(result: dict[str, Any]) -> dict[str, Any]:
        return {"epoch": result["epoch"], "error": 1.0 - result["val_accuracy"],
                "macs": result["macs"]}

    def on_trial_result(self, trial: Any, result: dict[str, Any]) -> str:
        return str(self.moasha.on_trial_result(trial, self._metrics(result)))

    def on_trial_complete(self, trial: Any, result: dict[str, Any]) -> None:
        self.moasha.on_trial_complete(trial, self._metrics(result))


def make_moasha(config_space: dict[str, Any], seed: int, max_t: int, grace_period: int,
                reduction_factor: int) -> tuple[_Scheduler, Callable[[int], Any]]:
    """The scheduler, and what makes its next trial (a Syne Tune ``Trial``, with the
    config MOASHA suggested) given the trial's id."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    np.random.seed(seed)  # MOASHA samples configs and brackets from NumPy's global generator
    moasha = MOASHA(config_space, metrics=["error", "macs"], do_minimize=True,
                    time_attr="epoch", max_t=max_t, grace_period=grace_period,
                    reduction_factor=reduction_factor, random_seed=seed)

    def trial_of(trial_id: int) -> Any:
        suggestion = moasha.suggest()
        trial = Trial(trial_id=trial_id, config=suggestion.config,
                      creation_time=datetime.datetime.now())
        moasha.on_trial_add(trial)
        return trial

    return _Scheduler(moasha), trial_of
