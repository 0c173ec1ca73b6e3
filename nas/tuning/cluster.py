"""Which Ray a search runs on: the cluster a user names, or a private one on 127.0.0.1.

Ray's own ``ray.init()`` without an address joins whatever cluster Ray's address file
(``<Ray temp folder>/ray_current_cluster``, written by ``ray start``) names, and fails
when that cluster is gone and the file stayed behind. A search that was not given
``--address``/``RAY_ADDRESS`` must not depend on what else runs on the machine, so it
always starts a Ray of its own (``address="local"``) and says in one line when it leaves
another cluster alone; ``--address auto`` joins that cluster instead.

Everything a search sets for Ray (environment variables its Tune run reads, Ray's log
levels) is set for the search and put back afterwards, so that a Python caller's process
is as it was (:func:`ray_session`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from nas.disk import ray_temp_folder
from nas.errors import NasError, one_line, option

# What a search sets while it runs; each is put back when it ends, a user's own value wins.
_SEARCH_ENVIRONMENT = {
    "RAY_AIR_NEW_OUTPUT": "0",  # our progress display replaces Ray Tune's tables
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # Ctrl-C reaches the driver directly
    "RAY_DEDUP_LOGS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "1000",
}
# A private Ray on Linux resolves even _node_ip_address="127.0.0.1" to the machine's network
# address, and its daemons (GCS, raylet, agents, workers) then listen on every interface.
# With its cluster mode off (the Windows/macOS default) the node address, and so every
# server, stays on the loopback. Ray reads it when first imported and its daemons inherit it.
_LOOPBACK_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
_QUIET_LOGGERS = ("ray", "ray.tune", "ray.train", "ray.air")


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int, say,
                prefetch: tuple[str, ...] = ()) -> Iterator[None]:
    """Ray for one search: joined at ``address``, a caller's running session, or a private
    local one (``cpus`` CPUs, 127.0.0.1) that is shut down at the end.

    ``say`` takes the one-line notices (another cluster left alone, a stale address file).
    ``prefetch``: modules the search imports next (Ray Tune, ~1 s), imported on a thread
    while ``ray.init`` waits for Ray's daemons to come up.
    """
    own = callers_ray()  # a caller's session: used, and left running
    settings = dict(_SEARCH_ENVIRONMENT)
    if not own and (not address or check_address(address)):
        settings.update(_LOOPBACK_ENVIRONMENT)
    with _environment(settings), _quiet_loggers():
        import ray

        _prefetch(prefetch)
        started = False if own else _start(ray, address, cpus, say)
        try:
            yield
        finally:
            if started:
                ray.shutdown()


def _prefetch(modules: tuple[str, ...]) -> None:
    """Import ``modules`` on a daemon thread. Only a head start: the caller imports them
    again where it uses them (waiting for this thread's import of the same module, or
    raising its error itself), so a failure here is ignored."""
    import importlib
    import threading

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001, S112 - the caller's own import reports it
                continue

    if modules:
        threading.Thread(target=load, name="resnas-prefetch", daemon=True).start()


def _start(ray, address: str | None, cpus: int, say) -> bool:
    common = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise NasError(f"{option('address')} {address}: cannot join the Ray cluster "
                           f"({one_line(exc, 200)})") from None
        return True
    notice = other_cluster_notice()
    if notice:
        say(notice)
    # Ray starts a worker per CPU for the driver's tasks; Tune's trial actors never take
    # them (they carry a runtime environment), so on a small machine they only compete
    # with the search's own start for the CPUs.
    ray.init(address="local", num_cpus=cpus, include_dashboard=False,
             _node_ip_address="127.0.0.1",
             _system_config={"prestart_worker_first_driver": False}, **common)
    return True


def other_cluster_notice() -> str | None:
    """One line when Ray's address file names a cluster this search will not join: one that
    answers (it runs, and is left alone) or one that does not (a stale file, ignored)."""
    path, address = _address_file(), _recorded_address()
    if not address:
        return None
    if _answers(address):
        return (f"note: a Ray cluster already runs on this machine ({address}); this search "
                "starts its own private Ray on 127.0.0.1 and leaves that one alone "
                f"({option('address')} auto joins it instead)")
    return (f"note: Ray's address file {path} names {address}, where no cluster answers "
            "(left by a stopped cluster); ignored: this search starts its own private Ray")


def callers_ray() -> bool:
    """Whether this process already holds a Ray session (``ray.init()`` in a notebook)."""
    ray = sys.modules.get("ray")
    return ray is not None and bool(getattr(ray, "is_initialized", lambda: False)())


def check_address(address: str) -> bool:
    """Refuse a cluster address where nothing answers (Ray would wait for it forever);
    return whether the cluster listens on the loopback only (``ray start`` with Ray's
    cluster mode off). Joining such a cluster needs that mode off here too, or Ray turns
    127.0.0.1 into this machine's network address and waits for that forever.
    """
    if "://" in address:  # Ray Client (ray://): Ray connects and reports by itself
        return False
    target = _recorded_address() if address == "auto" else address
    if target is None:  # 'auto' without a recorded cluster: Ray looks and says what it found
        return False
    if not _answers(target):
        where = (f"Ray's address file {_address_file()} names {target}, where" if
                 address == "auto" else "at this address")
        raise NasError(f"{option('address')} {address}: {where} no Ray cluster answers; allowed: a "
                       "running cluster's host:port ('ray start --head' prints it), 'auto' "
                       f"for the one 'ray start' last started here, or no {option('address')} "
                       "for a private Ray")
    host, _, port = target.rpartition(":")
    if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
        return False
    machine = _machine_address()
    return machine is not None and not _answers(f"{machine}:{port}")


def _machine_address() -> str | None:
    """This machine's network address, found as Ray finds it (the route out; nothing sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("8.8.8.8", 53))
            return probe.getsockname()[0]
    except OSError:
        return None


def _recorded_address() -> str | None:
    """The address ``ray start`` last recorded on this machine, if any."""
    try:
        return _address_file().read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _address_file() -> Path:
    """Where ``ray start`` records its cluster's address, in Ray's temp folder. Found
    without importing Ray, which must not be imported before a private Ray's loopback
    setting is made."""
    return ray_temp_folder() / "ray_current_cluster"


def _answers(address: str, timeout: float = 1.0) -> bool:
    """Whether something listens at ``host:port`` (a cluster's GCS)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _environment(settings: dict[str, str]) -> Iterator[None]:
    """``settings`` where the environment does not set them already, removed afterwards."""
    added = [name for name in settings if name not in os.environ]
    for name in added:
        os.environ[name] = settings[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _quiet_loggers() -> Iterator[None]:
    """Ray's loggers at ERROR for the search (our progress lines replace their flood), the
    caller's levels back afterwards."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
