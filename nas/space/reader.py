"""Reading a YAML file that a user named, safely: every failure is one SpaceError line.

Space and candidate files come from the command line, so the path may be a folder, a
FIFO nobody writes to, /dev/zero, a huge or binary file, or YAML with a duplicate key or
a Python tag. This module turns each of those into one line naming the file before any
value is looked at; what the values mean is the parser's business (parser.py).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from nas.errors import one_line
from nas.space.checks import SpaceError, show

MAX_FILE_BYTES = 1 << 20


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
        raise SpaceError(f"{path}: cannot read: {one_line(str(exc.strerror or exc))}"
                         ) from None
    except ValueError:  # e.g. a NUL byte in the path
        raise SpaceError(f"{show(str(path))}: not a usable file path") from None
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
    """PyYAML's complaint as one line with its place; a refused tag said in plain words."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    tag = re.search(r"tag '(tag:yaml\.org,2002:)?([^']+)'", problem)
    if "could not determine a constructor" in problem and tag:
        prefix = "!!" if tag.group(1) else ""
        name = f"{prefix}{tag.group(2)}"
        return f"{where}YAML tag '{name}' is not allowed; allowed: plain YAML values"
    return f"{where}{one_line(problem)}"
