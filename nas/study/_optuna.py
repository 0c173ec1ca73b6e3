"""Every place resnas reaches into Optuna's private attributes, in one module.

resnas drives studies through Optuna's ask-and-tell API, but four things it
needs have no public API: a study's storage and ids (to record heartbeats and
to link the dashboard to a study), the storage's list of trials whose
heartbeat went stale (to recover a dead driver's trials), a trial asked for
with its driver's tag in the same write (see :func:`ask_claimed`), and the private
``RDBStorage`` calls that Optuna's cached storage makes directly (so that
resnas's retrying storage wraps them too). When Optuna changes, this module is
the one to read.
"""

from __future__ import annotations

import datetime

import optuna
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

# RDBStorage methods that Optuna's _CachedStorage calls directly, besides the public ones;
# nas.study.rdb retries them like the rest (each is skipped where this Optuna lacks it).
RDB_PRIVATE_CALLS = ("_get_stale_trial_ids", "_create_new_trial", "_set_trial_param",
                     "_get_best_trial_id", "_get_trials")


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes through."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of the study (optuna-dashboard's page is ``studies/<id>``)."""
    return study._study_id


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (trial numbers count per study, ids per storage)."""
    return trial._trial_id


def heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage records heartbeats (an RDB storage with an interval)."""
    return is_heartbeat_enabled(study._storage)


def heartbeat_seconds(study: optuna.Study) -> int | None:
    """Seconds between heartbeats, where the storage records them."""
    return study._storage.get_heartbeat_interval() if heartbeat_enabled(study) else None


def record_heartbeat(study: optuna.Study, trial: optuna.Trial) -> None:
    """Record the trial's heartbeat where the storage keeps them."""
    if heartbeat_enabled(study):
        study._storage.record_heartbeat(trial._trial_id)


def stale_trial_ids(study: optuna.Study) -> set[int]:
    """Ids of the study's running trials whose heartbeat has gone silent."""
    if not heartbeat_enabled(study):
        return set()
    return set(study._storage._get_stale_trial_ids(study._study_id))


def ask_claimed(study: optuna.Study, claim: dict[str, str]) -> optuna.Trial:
    """``study.ask()``, with ``claim`` (user attrs naming the trial's driver) stored with it.

    ``study.ask()`` makes a trial RUNNING in one write and leaves tagging it to the
    next, so a driver that dies or loses its storage in between leaves a RUNNING trial
    that names no driver, which no later search can tell from one being asked for
    right now. Here a new trial is created with the claim in the same transaction,
    and a queued trial is claimed before it is popped and again once popped (two
    drivers may both claim it; only one pops it, and its claim is the last).
    """
    storage, study_id = study._storage, study._study_id
    study._thread_local.cached_all_trials = None  # as ask() does: read the storage afresh

    def write_claim(trial_id: int) -> None:
        for key, value in claim.items():
            storage.set_trial_user_attr(trial_id, key, value)

    for waiting in storage.get_all_trials(study_id, deepcopy=False,
                                          states=(TrialState.WAITING,)):
        try:
            write_claim(waiting._trial_id)
            if storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING):
                # Another driver may have claimed it between our claim and our pop (and
                # then lost the pop): the trial is ours, so say so again.
                write_claim(waiting._trial_id)
                return optuna.Trial(study, waiting._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    template = FrozenTrial(
        number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.datetime.now(),
        datetime_complete=None, params={}, distributions={}, user_attrs=dict(claim),
        system_attrs={}, intermediate_values={}, trial_id=-1)
    return optuna.Trial(study, storage.create_new_trial(study_id, template_trial=template))


def study_summaries(storage: optuna.storages.BaseStorage
                    ) -> dict[str, tuple[dict[str, int], float | None]] | None:
    """Per study name: its trials counted by state, and the best first-objective value of a
    complete trial (max, or min for a minimized first objective), in four SQL queries
    whatever the studies hold; None for a storage without SQL (a journal file).

    Optuna's storage API can only count by listing every trial with its attributes (1.2 GB
    and 20 s at 10,000 trials, issue 28); Optuna's tables are private, hence here.
    """
    backend = getattr(storage, "_backend", storage)  # under Optuna's _CachedStorage
    if not isinstance(backend, optuna.storages.RDBStorage):
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func

    trial, value = models.TrialModel, models.TrialValueModel
    with _create_scoped_session(backend.scoped_session) as session:
        names = dict(session.query(models.StudyModel.study_id, models.StudyModel.study_name))
        counts: dict[int, dict[str, int]] = {sid: {} for sid in names}
        for sid, state, count in (session.query(trial.study_id, trial.state,
                                                func.count(trial.trial_id))
                                  .group_by(trial.study_id, trial.state)):
            counts[sid][state.name] = count
        minimize = {sid for sid, direction in session.query(
            models.StudyDirectionModel.study_id, models.StudyDirectionModel.direction)
            .filter(models.StudyDirectionModel.objective == 0)
            if direction == optuna.study.StudyDirection.MINIMIZE}
        best: dict[int, float] = {}
        for sid, high, low in (session.query(trial.study_id, func.max(value.value),
                                             func.min(value.value))
                               .join(value, value.trial_id == trial.trial_id)
                               .filter(trial.state == TrialState.COMPLETE,
                                       value.objective == 0,
                                       value.value_type == value.TrialValueType.FINITE)
                               .group_by(trial.study_id)):
            best[sid] = low if sid in minimize else high
    return {name: (counts[sid], best.get(sid)) for sid, name in names.items()}
