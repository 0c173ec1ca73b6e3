"""Every place resnas reaches into Optuna's private attributes, in one module.

resnas drives studies through Optuna's ask-and-tell API, but four things it
needs have no public API: a study's storage and ids (to record heartbeats and
to link the dashboard to a study), the storage's list of trials whose
heartbeat went stale (to recover a dead driver's trials), a trial asked for
with its driver's tag in the same write (see :func:`ask_claimed`), and the private
``RDBStorage`` calls that Optuna's cached storage makes directly (so that
resnas's retrying storage wraps them too). When Optuna changes, this module is
the one to read. Reading a big study lean (:func:`lean_trials`, :func:`count_trials`,
:func:`count_finished`, :func:`study_summaries`) goes through Optuna's SQL tables for
the same reason: its storage API reads each trial whole.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any

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


def set_user_attrs(study: optuna.Study, trial: optuna.Trial, attrs: dict[str, Any]) -> None:
    """``trial.set_user_attr`` for each of ``attrs``, in one transaction where the storage
    can (resnas's RDB storage: :meth:`nas.study.rdb.RDBStorage.set_trial_user_attrs`)."""
    writer = getattr(_rdb(study._storage), "set_trial_user_attrs", None)
    if writer is None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    writer(trial._trial_id, attrs)


def write_user_attrs(storage: optuna.storages.RDBStorage, trial_id: int,
                     attrs: dict[str, Any]) -> None:
    """A trial's user attributes in one transaction, as Optuna writes each in its own
    (its private upsert, one commit): what resnas's RDB storage retries as one call."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session, True) as session:
        for key, value in attrs.items():
            storage._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial_id, key, value)


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

    for waiting in _queued(storage, study_id):
        try:
            write_claim(waiting._trial_id)
            if storage.set_trial_state_values(waiting._trial_id, state=TrialState.RUNNING):
                # Another driver may have claimed it between our claim and our pop (and
                # then lost the pop): the trial is ours, so say so again.
                write_claim(waiting._trial_id)
                _tell_cache(storage, study_id, waiting)
                return optuna.Trial(study, waiting._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    template = FrozenTrial(
        number=-1, state=TrialState.RUNNING, value=None, datetime_start=datetime.datetime.now(),
        datetime_complete=None, params={}, distributions={}, user_attrs=dict(claim),
        system_attrs={}, intermediate_values={}, trial_id=-1)
    return optuna.Trial(study, storage.create_new_trial(study_id, template_trial=template))


def _queued(storage: optuna.storages.BaseStorage, study_id: int) -> Iterator[FrozenTrial]:
    """The study's queued (WAITING) trials, first in the queue first, read one at a time
    from SQL where there is SQL: a design of 2,000 queued trials is then not read whole at
    every ask (Optuna's cache re-reads every unfinished trial each time it lists them)."""
    backend = _rdb(storage)
    if backend is None:
        yield from storage.get_all_trials(study_id, deepcopy=False,
                                          states=(TrialState.WAITING,))
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    trial = models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        ids = [tid for (tid,) in session.query(trial.trial_id).filter(
            trial.study_id == study_id, trial.state == TrialState.WAITING)
            .order_by(trial.number)]
    for tid in ids:
        queued = backend.get_trial(tid)
        if queued.state == TrialState.WAITING:  # another driver may have popped it since
            yield queued


def _tell_cache(storage: optuna.storages.BaseStorage, study_id: int,
                trial: FrozenTrial) -> None:
    """Make Optuna's cache know a queued trial read past it (as its own ``study.ask()``
    would have, by listing every trial): it writes the trial's params only through it."""
    add = getattr(storage, "_add_trials_to_cache", None)
    if add is None:
        return
    from optuna.storages._cached_storage import _StudyInfo

    with storage._lock:
        info = storage._studies.setdefault(study_id, _StudyInfo())
        if trial._trial_id not in storage._trial_id_to_study_id_and_number:
            add(study_id, [trial])
        info.unfinished_trial_ids.add(trial._trial_id)  # read afresh when next listed


def study_summaries(storage: optuna.storages.BaseStorage
                    ) -> dict[str, tuple[dict[str, int], float | None]] | None:
    """Per study name: its trials counted by state, and the best first-objective value of a
    complete trial (max, or min for a minimized first objective), in four SQL queries
    whatever the studies hold; None for a storage without SQL (a journal file).

    Optuna's storage API can only count by listing every trial with its attributes (1.2 GB
    and 20 s at 10,000 trials, issue 28); Optuna's tables are private, hence here.
    """
    backend = _rdb(storage)
    if backend is None:
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


def _rdb(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The SQL storage under ``storage`` (Optuna's cache wraps it), or None (a journal)."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage | None:
    """The study's SQL storage under Optuna's cache, for reads that bypass the cache (its
    private ``_get_trials`` reads only trials new or unfinished since a given trial id);
    None for a storage without SQL."""
    return _rdb(study._storage)


def lean_trials(study: optuna.Study, user_keys: Collection[str], marked: Collection[str] = (),
                params: bool = False, steps: bool = True) -> list[FrozenTrial] | None:
    """Every trial of ``study`` in trial order, as FrozenTrials holding only their state,
    times, values, per-epoch values and the user attributes named in ``user_keys``; an
    attribute named in ``marked`` is there with the value True when the trial has it (its
    value unread). With ``params``, their params too, and the system attributes of the
    unfinished ones (TPE's constant liar reads them); without ``steps``, no per-epoch
    values (eight rows a trial on the default space). None for a storage without SQL.

    A handful of queries, whatever the study holds: at 10,000 trials of a real search,
    0.4-1 s and tens of MB, where ``study.get_trials()`` takes 20 s and 1.1 GB (issue 28).
    """
    backend = _rdb(study._storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    sid = study._study_id
    trial, value = models.TrialModel, models.TrialValueModel
    step, attr = models.TrialIntermediateValueModel, models.TrialUserAttributeModel
    rows: dict[int, dict] = {}
    with _create_scoped_session(backend.scoped_session) as session:
        for tid, number, state, start, complete in (
                session.query(trial.trial_id, trial.number, trial.state,
                              trial._datetime_start_utc, trial._datetime_complete_utc)
                .filter(trial.study_id == sid)):
            rows[tid] = {"number": number, "state": state, "datetime_start": _local(start),
                         "datetime_complete": _local(complete), "values": {}, "steps": {},
                         "attrs": {}, "params": {}, "distributions": {}, "system": {}}
        in_study = trial.study_id == sid
        for tid, objective, stored, kind in (
                session.query(value.trial_id, value.objective, value.value, value.value_type)
                .join(trial, trial.trial_id == value.trial_id).filter(in_study)):
            rows[tid]["values"][objective] = value.stored_repr_to_value(stored, kind)
        for tid, number, stored, kind in (
                session.query(step.trial_id, step.step, step.intermediate_value,
                              step.intermediate_value_type)
                .join(trial, trial.trial_id == step.trial_id).filter(in_study)
                if steps else ()):
            rows[tid]["steps"][number] = step.stored_repr_to_intermediate_value(stored, kind)
        for tid, key, text in (
                session.query(attr.trial_id, attr.key, attr.value_json)
                .join(trial, trial.trial_id == attr.trial_id)
                .filter(in_study, attr.key.in_(list(user_keys)))):
            rows[tid]["attrs"][key] = json.loads(text)
        for tid, key in (session.query(attr.trial_id, attr.key)
                         .join(trial, trial.trial_id == attr.trial_id)
                         .filter(in_study, attr.key.in_(list(marked))) if marked else ()):
            rows[tid]["attrs"][key] = True
        if params:
            _read_params(session, rows, in_study)
    trials = [FrozenTrial(
        number=row["number"], state=row["state"], value=None,
        values=[row["values"][i] for i in sorted(row["values"])] or None,
        datetime_start=row["datetime_start"], datetime_complete=row["datetime_complete"],
        params=row["params"], distributions=row["distributions"], user_attrs=row["attrs"],
        system_attrs=row["system"], intermediate_values=row["steps"], trial_id=tid)
        for tid, row in rows.items()]
    return sorted(trials, key=lambda t: t.number)


def _read_params(session: Any, rows: dict[int, dict], in_study: Any) -> None:
    """Each trial's params into ``rows``, and the system attributes of unfinished ones."""
    from optuna.storages._rdb import models

    trial, param = models.TrialModel, models.TrialParamModel
    distributions: dict[str, Any] = {}  # one parse per distinct distribution
    for tid, name, stored, text in (
            session.query(param.trial_id, param.param_name, param.param_value,
                          param.distribution_json)
            .join(trial, trial.trial_id == param.trial_id).filter(in_study)):
        if text not in distributions:
            distributions[text] = optuna.distributions.json_to_distribution(text)
        distribution = distributions[text]
        rows[tid]["params"][name] = distribution.to_external_repr(stored)
        rows[tid]["distributions"][name] = distribution
    system = models.TrialSystemAttributeModel
    unfinished = [TrialState.RUNNING, TrialState.WAITING]
    for tid, key, text in (session.query(system.trial_id, system.key, system.value_json)
                           .join(trial, trial.trial_id == system.trial_id)
                           .filter(in_study, trial.state.in_(unfinished))):
        rows[tid]["system"][key] = json.loads(text)


def _local(utc: datetime.datetime | None) -> datetime.datetime | None:
    """A time as Optuna's RDB storage gives it back: stored in naive UTC, shown local."""
    if utc is None:
        return None
    return utc.replace(tzinfo=datetime.timezone.utc).astimezone().replace(tzinfo=None)


def pareto_front_of(trials: Sequence[FrozenTrial],
                    directions: Sequence[optuna.study.StudyDirection]) -> list[FrozenTrial]:
    """The complete trials no other trial dominates (what ``study.best_trials`` gives for
    a study without constraints), from trials already read."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

    return _get_pareto_front_trials_by_trials(trials, directions)


def running_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's RUNNING trials, read with one SQL query where the storage has SQL;
    ``study.get_trials`` would first read every trial into Optuna's cache."""
    backend = _rdb(study._storage)
    if backend is None:
        return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return backend.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))


def count_finished(storage: optuna.storages.BaseStorage, study_id: int,
                   retried: Sequence[str]) -> int | None:
    """COMPLETE, PRUNED and FAIL trials of the study, less the FAIL ones whose
    ``fail_reason`` is one of ``retried``: one counting query. None without SQL."""
    backend = _rdb(storage)
    if backend is None:
        return None
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import and_, func, not_, or_

    trial, attr = models.TrialModel, models.TrialUserAttributeModel
    retried_trial = (attr.trial_id == trial.trial_id) & (attr.key == "fail_reason") \
        & attr.value_json.in_([json.dumps(reason) for reason in retried])
    with _create_scoped_session(backend.scoped_session) as session:
        return session.query(func.count(trial.trial_id)).filter(
            trial.study_id == study_id,
            or_(trial.state.in_([TrialState.COMPLETE, TrialState.PRUNED]),
                and_(trial.state == TrialState.FAIL,
                     not_(session.query(attr.trial_id).filter(retried_trial).exists())))
        ).scalar()


def count_trials(storage: optuna.storages.BaseStorage, study_id: int) -> int:
    """``storage.get_n_trials``, as one counting query on an SQL storage (Optuna's counts
    by reading every trial: 30 s at 10,000 trials)."""
    backend = _rdb(storage)
    if backend is None:
        return storage.get_n_trials(study_id)
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func

    trial = models.TrialModel
    with _create_scoped_session(backend.scoped_session) as session:
        return session.query(func.count(trial.trial_id)).filter(
            trial.study_id == study_id).scalar()


def tell_pruned(study: optuna.Study, trial: optuna.Trial, values: Sequence[float]) -> None:
    """PRUNED with ``values``, as ``study.tell`` does for a single-objective trial (its
    last intermediate value): Optuna's tell refuses values for a PRUNED trial and a
    multi-objective study has no intermediate values, so the pareto pruner's trials keep
    their accuracy so far and their cost this way (the sampler's hook first, as in tell)."""
    study._thread_local.cached_all_trials = None
    frozen = study._storage.get_trial(trial._trial_id)
    values = [float(v) for v in values]
    try:
        study.sampler.after_trial(study, frozen, TrialState.PRUNED, values)
    finally:
        study._storage.set_trial_state_values(trial._trial_id, TrialState.PRUNED, values)
