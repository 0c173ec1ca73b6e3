"""Validating a parsed space or candidate file into a :class:`SearchSpace`.

Validation is complete and each mistake is one line naming the file, the field, what
was given and what is allowed (docs/design.md, "Files"), so a bad file fails before Ray,
torch or Optuna start. The sampler and pruner options are checked against the rows of
:mod:`nas.space.algorithm_options`, the names the search builds them by.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from nas.candidate import Candidate
from nas.names import (
    DATASETS,
    METRICS,
    PRUNERS,
    SAMPLERS,
    SECOND_OBJECTIVES,
    STUDY_NAME,
    STUDY_NAME_ALLOWED,
)
from nas.space.algorithm_options import PRUNER_OPTIONS, SAMPLER_OPTIONS, AlgorithmOptions
from nas.space.checks import (
    SPACE_PARAMS,
    Bad,
    Check,
    SpaceError,
    bool_check,
    choice_check,
    float_check,
    int_check,
    show,
)
from nas.space.model import (
    Choice,
    Fixed,
    FloatRange,
    IntRange,
    Param,
    SearchSpace,
    default_pruner,
    pruner_misfit,
)
from nas.space.reader import read_yaml

_TOP_LEVEL = (
    "name", "dataset", "metric", "epochs", "trials", "seed", "space", "sampler", "pruner",
    "trial_resources", "usefulness", "data", "objectives", "latency",
)


class _Validator:
    """Walks one parsed file; every error names the file and the field."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field_name: str, message: str) -> SpaceError:
        return SpaceError(f"{self.path}: {field_name}: {message}")

    def value(self, field_name: str, value: Any, check: Check) -> Any:
        try:
            return check(value)
        except Bad as bad:
            return self._raise(field_name, value, bad.allowed)

    def _raise(self, field_name: str, value: Any, allowed: str) -> Any:
        raise self.fail(field_name, f"got {show(value)}; allowed: {allowed}")

    def mapping(self, field_name: str, value: Any, known: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field_name, f"got {show(value)}; allowed: a mapping with keys "
                                        f"{', '.join(known)}")
        for key in value:
            if not isinstance(key, str) or key not in known:
                raise self.fail(_join(field_name, key), _unknown_key(key, known))
        return value

    def options(self, field_name: str, value: Any, tables: dict[str, AlgorithmOptions],
                names: tuple[str, ...], default: str) -> dict[str, Any]:
        """A sampler or pruner mapping: ``name`` plus that algorithm's own options."""
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict):
            raise self.fail(field_name, f"got {show(value)}; allowed: a mapping with 'name'")
        name = self.value(_join(field_name, "name"), value.get("name", default),
                          choice_check(names))
        table = tables[name].options
        result: dict[str, Any] = {"name": name}
        for key, option in value.items():
            if key == "name":
                continue
            where = _join(field_name, key)
            if not isinstance(key, str) or key not in table:
                raise self.fail(where, _unknown_key(key, tuple(table)) + f" for {name}")
            if key == "wrapped":
                inner = tuple(n for n in names if n not in ("patient", "pareto"))
                result[key] = self.options(where, option, tables, inner, "median")
            else:
                result[key] = self.value(where, option, table[key])
        for key in tables[name].required:
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
            raise self.fail(f"{where}.type", f"got {show(param_type)}; allowed: "
                                             f"{', '.join(allowed_types)}")
        if param_type == "categorical":
            self.mapping(where, value, ("type", "choices"))
            choices = value.get("choices")
            if not isinstance(choices, list) or not choices:
                raise self.fail(f"{where}.choices", f"got {show(choices)}; allowed: a "
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
    return show(key)


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
        raise SpaceError(f"{path}: got {show(data)} at the top level; expected a mapping with "
                         "keys " + ", ".join(_TOP_LEVEL))
    v.mapping("", data, _TOP_LEVEL)
    if "space" not in data:
        raise v.fail("space", "missing; list the architecture and training values under space:")
    name = data["name"] if "name" in data else _default_name(path)
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise v.fail("name", f"got {show(name)}; allowed: {STUDY_NAME_ALLOWED} "
                             "(it names a folder under results/)")
    space_map = v.mapping("space", data["space"], tuple(SPACE_PARAMS))
    params = {k: v.param(k, space_map[k]) for k in SPACE_PARAMS if k in space_map}
    _check_stage_lists(v, params)
    trial_resources = v.mapping("trial_resources", data.get("trial_resources", {}),
                                ("cpu", "gpu"))
    usefulness = v.mapping("usefulness", data.get("usefulness", {}), ("enabled", "tolerance"))
    data_options = v.mapping("data", data.get("data", {}),
                             ("channels", "image_size", "classes", "samples", "train_size",
                              "val_size"))
    objectives = _objectives(v, data.get("objectives", ["val_accuracy"]))
    if "useful_layers" in objectives and usefulness.get("enabled", True) is False:
        raise v.fail("objectives", "useful_layers needs the usefulness analysis; allowed: "
                                   "usefulness.enabled true, or objectives [val_accuracy, params]")
    pruner = v.options("pruner", data.get("pruner", {}), PRUNER_OPTIONS, PRUNERS,
                       default_pruner(objectives))
    misfit = pruner_misfit(pruner["name"], objectives)
    if misfit:
        raise v.fail("pruner", misfit)
    latency = v.mapping("latency", data.get("latency", {}), ("batch",))
    return SearchSpace(
        path=path,
        name=name,
        dataset=v.value("dataset", data.get("dataset", "digits"), choice_check(DATASETS)),
        metric=v.value("metric", data.get("metric", "val_accuracy"), choice_check(METRICS)),
        epochs=v.value("epochs", data.get("epochs", 10), int_check(1, 10000)),
        trials=v.value("trials", data.get("trials", 20), int_check(1, 1000000)),
        seed=v.value("seed", data.get("seed", 0), int_check(0, 2**31 - 1)),
        params=params,
        sampler=v.options("sampler", data.get("sampler", {}), SAMPLER_OPTIONS,
                          SAMPLERS, "tpe"),
        pruner=pruner,
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
        latency={"batch": v.value("latency.batch", latency.get("batch", 64),
                                  int_check(1, 1 << 16))},
        text=text,
    )


def _objectives(v: _Validator, value: Any) -> tuple[str, ...]:
    allowed = ("[val_accuracy], or [val_accuracy, COST] with COST one of useful_layers "
               "(useful layers), params (parameters), macs (multiply-accumulates per image) "
               "or latency (ms per image at batch 1 on the trial's device), fewer better")
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not 1 <= len(value) <= 2 or value[0] != "val_accuracy"
            or (len(value) == 2 and value[1] not in SECOND_OBJECTIVES)):
        raise v.fail("objectives", f"got {show(value)}; allowed: {allowed}")
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
    """Read and validate a space file.

    Args:
        path: a YAML space file (see docs/files.md, "Space and candidate files").

    Returns:
        The ``SearchSpace``: what ``nas.search`` searches.

    Raises:
        NasError: the file is missing, not YAML, or names a value it does not allow
            (one line: where, what is wrong, what is allowed).
    """
    data, text = read_yaml(path)
    return parse_space(data, str(path), text)


def load_candidate(path: str | Path) -> Candidate:
    """Read a candidate file: a space file whose ``space:`` values are all fixed.

    Args:
        path: a candidate file, such as ``nas best --export`` writes.

    Returns:
        The ``Candidate``: one network and its training settings, for ``nas.train``.

    Raises:
        NasError: as :func:`load_space`, or a ``space:`` value that is still a range.
    """
    return load_space(path).fixed_candidate()
