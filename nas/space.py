"""Search-space and candidate files: load, validate, suggest.

A space file (DESIGN.md) names fixed values and searched ranges under
``space:``; a candidate file is the same format with every value fixed.
Validation is complete and each mistake is one line naming the file, the
field, what was given and what is allowed, raised as :class:`SpaceError`.
Optuna is imported only where a candidate is suggested.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import reprlib
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nas.candidate import BLOCK_TYPES, OPTIMIZERS, SCHEDULES, SHORTCUT_TYPES, Candidate
from nas.errors import NasError

if TYPE_CHECKING:
    import optuna

MAX_FILE_BYTES = 1 << 20
# A study's name: it names a folder under results/, so no '/', no '..', no leading '-'.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
DATASET_NAMES = (
    "digits", "synthetic", "mnist", "fashion-mnist", "cifar10", "cifar100", "imagefolder",
)
METRICS = ("val_accuracy",)
# What a search may optimise: accuracy up, and optionally one cost down.
SECOND_OBJECTIVES = ("useful_layers", "params")
SAMPLERS = ("tpe", "random", "grid", "gp", "nsga2")
PRUNERS = (
    "none", "median", "percentile", "successive-halving", "hyperband", "threshold", "patient",
)


class SpaceError(NasError):
    """A mistake in a space or candidate file."""


# --- value checks ------------------------------------------------------------
# Each check returns the normalised value or raises _Bad(what is allowed).


class _Bad(Exception):
    def __init__(self, allowed: str) -> None:
        super().__init__(allowed)
        self.allowed = allowed


_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(value: Any) -> float:
    """A YAML number; also '1e-5', which PyYAML reads as a string."""
    if isinstance(value, bool):
        raise _Bad("a number")
    numeric_text = isinstance(value, str) and _FLOAT_TEXT.match(value.strip())
    if not (isinstance(value, (int, float)) or numeric_text):
        raise _Bad("a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float (e.g. 400 digits)
        raise _Bad("a finite number") from None
    if not math.isfinite(number):
        raise _Bad("a finite number")
    return number


def int_check(low: int | None = None, high: int | None = None) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        allowed = _range_text("an integer", low, high)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Bad(allowed)
        if (low is not None and value < low) or (high is not None and value > high):
            raise _Bad(allowed)
        return value
    check.kind = "int"  # type: ignore[attr-defined]
    return check


def float_check(low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        allowed = _range_text("a number", low, high, low_open, high_open)
        try:
            number = _number(value)
        except _Bad as bad:
            finite = bad.allowed.startswith("a finite")
            raise _Bad(allowed.replace("a number", "a finite number", 1) if finite
                       else allowed) from None
        too_low = low is not None and (number <= low if low_open else number < low)
        too_high = high is not None and (number >= high if high_open else number > high)
        if too_low or too_high:
            raise _Bad(allowed)
        return number
    check.kind = "float"  # type: ignore[attr-defined]
    return check


def choice_check(names: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in names:
            raise _Bad(", ".join(names))
        return value
    check.kind = "categorical"  # type: ignore[attr-defined]
    return check


def bool_check(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("true or false")
    return value


bool_check.kind = "categorical"  # type: ignore[attr-defined]


def _range_text(what: str, low: float | None, high: float | None,
                low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"{what} {'>' if low_open else '>='} {low} and {'<' if high_open else '<='} {high}"
    if low is not None:
        return f"{what} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{what} {'<' if high_open else '<='} {high}"
    return what


def blocks_check(value: Any) -> int | tuple[int, ...]:
    """One int for every stage, or a list with one int per stage."""
    per_stage = int_check(1, 256)
    if isinstance(value, list):
        if not value:
            raise _Bad("an integer from 1 to 256, or a non-empty list of them (one per stage)")
        try:
            return tuple(per_stage(v) for v in value)
        except _Bad:
            raise _Bad("a list of integers from 1 to 256, one per stage") from None
    try:
        return per_stage(value)
    except _Bad:
        raise _Bad("an integer from 1 to 256, or a list of them (one per stage)") from None


blocks_check.kind = "int"  # type: ignore[attr-defined]

# What each key under ``space:`` accepts: architecture first, then training.
SPACE_PARAMS: dict[str, Callable[[Any], Any]] = {
    "stages": int_check(1, 8),
    "blocks_per_stage": blocks_check,
    "block": choice_check(BLOCK_TYPES),
    "shortcut": choice_check(SHORTCUT_TYPES),
    "width": int_check(1, 2048),
    "gate_bias": float_check(-20.0, 20.0),
    "lr": float_check(0.0, 10.0, low_open=True),
    "weight_decay": float_check(0.0, 1.0),
    "momentum": float_check(0.0, 1.0, high_open=True),
    "batch_size": int_check(1, 65536),
    "optimizer": choice_check(OPTIMIZERS),
    "schedule": choice_check(SCHEDULES),
    "label_smoothing": float_check(0.0, 1.0, high_open=True),
    "augment": bool_check,
}
# Searched only where the named parameter has the given value.
CONDITIONS: dict[str, tuple[str, str]] = {"gate_bias": ("block", "highway")}

_ints = int_check(0)
_pos_ints = int_check(1)
_SAMPLER_OPTIONS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "tpe": {"seed": _ints, "n_startup_trials": _ints, "multivariate": bool_check},
    "random": {"seed": _ints},
    "grid": {"seed": _ints},
    "gp": {"seed": _ints, "n_startup_trials": _ints},
    "nsga2": {"seed": _ints, "population_size": int_check(2)},
}
_WARMUP = {"n_startup_trials": _ints, "n_warmup_steps": _ints, "interval_steps": _pos_ints}
_PRUNER_OPTIONS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "none": {},
    "median": {**_WARMUP, "n_min_trials": _pos_ints},
    "percentile": {**_WARMUP, "n_min_trials": _pos_ints, "percentile": float_check(0.0, 100.0)},
    "successive-halving": {
        "min_resource": _pos_ints, "reduction_factor": int_check(2),
        "min_early_stopping_rate": _ints,
    },
    "hyperband": {
        "min_resource": _pos_ints, "max_resource": _pos_ints, "reduction_factor": int_check(2),
    },
    "threshold": {
        "lower": float_check(), "upper": float_check(),
        "n_warmup_steps": _ints, "interval_steps": _pos_ints,
    },
    "patient": {"patience": _ints, "min_delta": float_check(0.0), "wrapped": None},  # type: ignore[dict-item]
}
_REQUIRED_OPTIONS = {"percentile": ("percentile",), "patient": ("patience",)}

_TOP_LEVEL = (
    "name", "dataset", "metric", "epochs", "trials", "seed", "space", "sampler", "pruner",
    "trial_resources", "usefulness", "data", "objectives",
)


# --- parameters --------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    value: Any


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Choice:
    choices: tuple[Any, ...]


Param = Fixed | IntRange | FloatRange | Choice


@dataclass(frozen=True)
class SearchSpace:
    """A validated space file; ``suggest`` turns an Optuna trial into a Candidate."""

    path: str
    name: str
    dataset: str = "digits"
    metric: str = "val_accuracy"
    epochs: int = 10
    trials: int = 20
    seed: int = 0
    params: dict[str, Param] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=lambda: {"name": "tpe"})
    pruner: dict[str, Any] = field(default_factory=lambda: {"name": "median"})
    trial_resources: dict[str, float] = field(default_factory=lambda: {"cpu": 1, "gpu": 0})
    usefulness: dict[str, Any] = field(default_factory=lambda: {"enabled": True, "tolerance": 0.01})
    objectives: tuple[str, ...] = ("val_accuracy",)
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def searched(self) -> dict[str, Param]:
        return {k: p for k, p in self.params.items() if not isinstance(p, Fixed)}

    def candidate(self, values: Mapping[str, Any]) -> Candidate:
        """A Candidate from values for every searched parameter (fixed ones filled in)."""
        merged = {k: p.value for k, p in self.params.items() if isinstance(p, Fixed)}
        merged.update(values)
        return Candidate(
            dataset=self.dataset, epochs=self.epochs, seed=self.seed, data=dict(self.data),
            **merged,
        )

    def fixed_candidate(self) -> Candidate:
        """The candidate of a file whose values are all fixed."""
        if self.searched:
            name = next(iter(self.searched))
            raise SpaceError(
                f"{self.path}: space.{name}: a candidate file needs one value, not a search "
                f"range; allowed: a single {_kind(name)} value"
            )
        return self.candidate({})

    def suggest(self, trial: optuna.Trial) -> Candidate:
        """Define-by-run: conditional parameters are asked only where they apply."""
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            if isinstance(param, Fixed):
                values[name] = param.value
                continue
            condition = CONDITIONS.get(name)
            if condition and values.get(condition[0]) != condition[1]:
                continue
            if isinstance(param, IntRange):
                values[name] = trial.suggest_int(
                    name, param.low, param.high, step=param.step, log=param.log)
            elif isinstance(param, FloatRange):
                values[name] = trial.suggest_float(
                    name, param.low, param.high, step=param.step, log=param.log)
            else:
                values[name] = trial.suggest_categorical(name, list(param.choices))
        return self.candidate({k: v for k, v in values.items()
                               if not isinstance(self.params[k], Fixed)})


def _kind(name: str) -> str:
    return getattr(SPACE_PARAMS[name], "kind", "")


# --- loading -----------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *base' is resolved by SafeLoader; its keys may be overridden
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' is given twice; allowed: each key once",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _UniqueKeyLoader.construct_mapping)


def read_yaml(path: str | Path) -> tuple[Any, str]:
    """Parse a YAML file safely; every failure is one SpaceError line."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SpaceError(f"{path}: is a folder; expected a YAML file")
        # O_NONBLOCK: opening a FIFO nobody writes to would otherwise wait forever; fstat of
        # what was opened (not of the name, which may change) then refuses anything that is
        # not a regular file: a pipe, a socket or a device such as /dev/zero.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpaceError(f"{path}: not a regular file (a pipe, socket or device); "
                                 "allowed: a YAML file")
            if info.st_size > MAX_FILE_BYTES:
                raise SpaceError(f"{path}: file is {info.st_size} bytes; allowed: at most "
                                 f"{MAX_FILE_BYTES}")
            raw = handle.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows meanwhile
        if len(raw) > MAX_FILE_BYTES:
            raise SpaceError(f"{path}: file is over {MAX_FILE_BYTES} bytes; allowed: at most "
                             f"{MAX_FILE_BYTES}")
    except FileNotFoundError:
        raise SpaceError(f"{path}: file not found") from None
    except OSError as exc:
        raise SpaceError(f"{path}: cannot read: {' '.join(str(exc.strerror or exc).split())}"
                         ) from None
    except ValueError:  # e.g. a NUL byte in the path
        raise SpaceError(f"{_show(str(path))}: not a usable file path") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpaceError(f"{path}: not a UTF-8 text file; expected YAML") from None
    if "\x00" in text:
        raise SpaceError(f"{path}: binary data (NUL bytes); expected YAML text")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as exc:
        raise SpaceError(f"{path}: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise SpaceError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
    except RecursionError:
        raise SpaceError(f"{path}: not valid YAML (nested too deeply); allowed: a space file "
                         "a few levels deep") from None
    return data, text


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    tag = re.search(r"tag '(tag:yaml\.org,2002:)?([^']+)'", problem)
    if "could not determine a constructor" in problem and tag:
        prefix = "!!" if tag.group(1) else ""
        name = f"{prefix}{tag.group(2)}"
        return f"{where}YAML tag '{name}' is not allowed; allowed: plain YAML values"
    return f"{where}{' '.join(problem.split())}"


class _Validator:
    """Walks one parsed file; every error names the file and the field."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field_name: str, message: str) -> SpaceError:
        return SpaceError(f"{self.path}: {field_name}: {message}")

    def value(self, field_name: str, value: Any, check: Callable[[Any], Any]) -> Any:
        try:
            return check(value)
        except _Bad as bad:
            return self._raise(field_name, value, bad.allowed)

    def _raise(self, field_name: str, value: Any, allowed: str) -> Any:
        raise self.fail(field_name, f"got {_show(value)}; allowed: {allowed}")

    def mapping(self, field_name: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field_name, f"got {_show(value)}; allowed: a mapping with keys "
                                        f"{', '.join(known)}")
        for key in value:
            if not isinstance(key, str) or key not in known:
                raise self.fail(_join(field_name, key), _unknown_key(key, known))
        return value

    def options(self, field_name: str, value: Any, tables: dict[str, dict], names: tuple[str, ...],
                default: str) -> dict[str, Any]:
        """A sampler or pruner mapping: ``name`` plus that algorithm's own options."""
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise self.fail(field_name, f"got {_show(value)}; allowed: a mapping with 'name'")
        name = self.value(_join(field_name, "name"), value.get("name", default),
                          choice_check(names))
        table = tables[name]
        result: dict[str, Any] = {"name": name}
        for key, option in value.items():
            if key == "name":
                continue
            where = _join(field_name, key)
            if not isinstance(key, str) or key not in table:
                raise self.fail(where, _unknown_key(key, tuple(table)) + f" for {name}")
            if key == "wrapped":
                inner = tuple(n for n in names if n != "patient")
                result[key] = self.options(where, option, tables, inner, "median")
            else:
                result[key] = self.value(where, option, table[key])
        for key in _REQUIRED_OPTIONS.get(name, ()):
            if key not in result:
                raise self.fail(_join(field_name, key), f"missing; {name} needs it")
        if name == "threshold" and not {"lower", "upper"} & result.keys():
            raise self.fail(_join(field_name, "lower"), "missing; threshold needs lower, upper "
                                                        "or both")
        if {"lower", "upper"} <= result.keys() and result["lower"] > result["upper"]:
            raise self.fail(field_name, f"lower {result['lower']} is above upper "
                                        f"{result['upper']}; allowed: lower <= upper")
        if ({"min_resource", "max_resource"} <= result.keys()
                and result["min_resource"] > result["max_resource"]):
            raise self.fail(field_name, f"min_resource {result['min_resource']} is above "
                                        f"max_resource {result['max_resource']}; allowed: "
                                        "min_resource <= max_resource")
        return result

    def param(self, name: str, value: Any) -> Param:
        check = SPACE_PARAMS[name]
        where = f"space.{name}"
        if not isinstance(value, dict):
            return Fixed(self.value(where, value, check))
        kind = getattr(check, "kind", "categorical")
        allowed_types = (kind, "categorical") if kind in ("int", "float") else ("categorical",)
        param_type = value.get("type")
        if param_type not in allowed_types:
            raise self.fail(f"{where}.type", f"got {_show(param_type)}; allowed: "
                                             f"{', '.join(allowed_types)}")
        if param_type == "categorical":
            self.mapping(where, value, ("type", "choices"))
            choices = value.get("choices")
            if not isinstance(choices, list) or not choices:
                raise self.fail(f"{where}.choices", f"got {_show(choices)}; allowed: a "
                                                    "non-empty list")
            checked = tuple(self.value(f"{where}.choices[{i}]", c, check)
                            for i, c in enumerate(choices))
            if len(set(checked)) != len(checked):
                raise self.fail(f"{where}.choices", "a value is listed twice")
            if name == "blocks_per_stage" and any(isinstance(c, tuple) for c in checked):
                raise self.fail(f"{where}.choices", "per-stage lists cannot be searched; "
                                                    "allowed: integers")
            return Choice(checked)
        self.mapping(where, value, ("type", "low", "high", "step", "log"))
        for key in ("low", "high"):
            if key not in value:
                raise self.fail(f"{where}.{key}", f"missing; a {param_type} range needs low "
                                                  "and high")
        bound = int_check() if param_type == "int" else float_check()
        low = self.value(f"{where}.low", value["low"], bound)
        high = self.value(f"{where}.high", value["high"], bound)
        per_value = int_check(1, 256) if name == "blocks_per_stage" else check
        self.value(f"{where}.low", low, per_value)
        self.value(f"{where}.high", high, per_value)
        if low > high:
            raise self.fail(where, f"low {low} is above high {high}; allowed: low <= high")
        log = self.value(f"{where}.log", value.get("log", False), bool_check)
        if log and low <= 0:
            raise self.fail(f"{where}.low", f"got {low}; allowed: > 0 with log: true")
        step = value.get("step")
        if step is not None:
            step_check = int_check(1) if param_type == "int" else float_check(0.0, low_open=True)
            step = self.value(f"{where}.step", step, step_check)
            if log:
                raise self.fail(f"{where}.step", "cannot be combined with log: true")
        if param_type == "int":
            return IntRange(low, high, step or 1, log)
        return FloatRange(low, high, step, log)


def _join(field_name: str, key: Any) -> str:
    key_text = _key_text(key)
    return f"{field_name}.{key_text}" if field_name else key_text


def _key_text(key: Any) -> str:
    """A key as it reads in a field path: plain if it is a printable string, else its repr."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= 60:
        return key
    return _show(key)


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxfrozenset = 6
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = 60


def _show(value: Any) -> str:
    """What the user gave, on one short line; bounded even for huge or aliased structures."""
    text = re.sub(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]", " ", _REPR.repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown_key(key: Any, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}allowed: {', '.join(known)}"


def parse_space(data: Any, path: str, text: str = "") -> SearchSpace:
    """Validate a parsed space file; ``path`` names it in errors."""
    v = _Validator(path)
    if data is None:
        raise SpaceError(f"{path}: file is empty; expected a mapping with a 'space:' section")
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: got {_show(data)} at the top level; expected a mapping with "
                         "keys " + ", ".join(_TOP_LEVEL))
    v.mapping("", data, _TOP_LEVEL)
    if "space" not in data:
        raise v.fail("space", "missing; list the architecture and training values under space:")
    name = data["name"] if "name" in data else _default_name(path)
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise v.fail("name", f"got {_show(name)}; allowed: letters, digits, '.', '_', '-' "
                             "(it names a folder under results/)")
    space_map = v.mapping("space", data["space"], tuple(SPACE_PARAMS))
    params = {k: v.param(k, space_map[k]) for k in SPACE_PARAMS if k in space_map}
    _check_stage_lists(v, params)
    trial_resources = v.mapping("trial_resources", data.get("trial_resources", {}),
                                ("cpu", "gpu"))
    usefulness = v.mapping("usefulness", data.get("usefulness", {}), ("enabled", "tolerance"))
    data_options = v.mapping("data", data.get("data", {}),
                             ("channels", "image_size", "classes", "samples"))
    objectives = _objectives(v, data.get("objectives", ["val_accuracy"]))
    if "useful_layers" in objectives and usefulness.get("enabled", True) is False:
        raise v.fail("objectives", "useful_layers needs the usefulness analysis; allowed: "
                                   "usefulness.enabled true, or objectives [val_accuracy, params]")
    return SearchSpace(
        path=path,
        name=name,
        dataset=v.value("dataset", data.get("dataset", "digits"), choice_check(DATASET_NAMES)),
        metric=v.value("metric", data.get("metric", "val_accuracy"), choice_check(METRICS)),
        epochs=v.value("epochs", data.get("epochs", 10), int_check(1, 10000)),
        trials=v.value("trials", data.get("trials", 20), int_check(1, 1000000)),
        seed=v.value("seed", data.get("seed", 0), int_check(0, 2**31 - 1)),
        params=params,
        sampler=v.options("sampler", data.get("sampler", {}), _SAMPLER_OPTIONS, SAMPLERS, "tpe"),
        pruner=v.options("pruner", data.get("pruner", {}), _PRUNER_OPTIONS, PRUNERS, "median"),
        trial_resources={
            "cpu": v.value("trial_resources.cpu", trial_resources.get("cpu", 1),
                           float_check(0.0, 1024.0, low_open=True)),
            "gpu": v.value("trial_resources.gpu", trial_resources.get("gpu", 0),
                           float_check(0.0, 64.0)),
        },
        usefulness={
            "enabled": v.value("usefulness.enabled", usefulness.get("enabled", True), bool_check),
            "tolerance": v.value("usefulness.tolerance", usefulness.get("tolerance", 0.01),
                                 float_check(0.0, 1.0, high_open=True)),
        },
        data={k: v.value(f"data.{k}", val, int_check(1, 1 << 24))
              for k, val in data_options.items()},
        objectives=objectives,
        text=text,
    )


def _objectives(v: _Validator, value: Any) -> tuple[str, ...]:
    allowed = ("[val_accuracy], [val_accuracy, useful_layers] (fewer layers better) or "
               "[val_accuracy, params] (fewer parameters better)")
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not 1 <= len(value) <= 2 or value[0] != "val_accuracy"
            or (len(value) == 2 and value[1] not in SECOND_OBJECTIVES)):
        raise v.fail("objectives", f"got {_show(value)}; allowed: {allowed}")
    return tuple(value)


def _default_name(path: str) -> str:
    """The file's stem, made a valid study name ('my space.yaml' -> 'my-space')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-._")[:100]
    return name or "space"


def _check_stage_lists(v: _Validator, params: dict[str, Param]) -> None:
    blocks = params.get("blocks_per_stage")
    if not (isinstance(blocks, Fixed) and isinstance(blocks.value, tuple)):
        return
    stages = params.get("stages", Fixed(3))
    if not isinstance(stages, Fixed):
        raise v.fail("space.blocks_per_stage", "a per-stage list needs a fixed 'stages'; "
                                               "allowed: one integer for every stage")
    if len(blocks.value) != stages.value:
        raise v.fail("space.blocks_per_stage", f"got {len(blocks.value)} values for "
                                               f"{stages.value} stages; allowed: one per stage")


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a space file."""
    data, text = read_yaml(path)
    return parse_space(data, str(path), text)


def load_candidate(path: str | Path) -> Candidate:
    """Read a candidate file: a space file whose ``space:`` values are all fixed."""
    return load_space(path).fixed_candidate()
