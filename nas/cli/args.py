"""What every command's parser shares: one-line usage errors, value types, common options,
and the checks of paths and data made before anything heavy is imported (the rules
themselves in :mod:`nas.files`, which the search's own checks use too)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nas.errors import escape_line_breaks
from nas.files import check_data_inputs
from nas.names import DEFAULT_STORAGE

USAGE_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the flag and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE_ERROR, f"{self.prog}: error: {escape_line_breaks(message)} "
                               f"(see '{self.prog} --help')\n")


def _number_type(cast: type, allowed: str, ok: Callable[[Any], bool]) -> Callable[[str], Any]:
    """An argparse type: parse with ``cast``, accept if ``ok(value)``, else say what is allowed."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got '{text}'; allowed: {allowed}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"got '{text}'; allowed: {allowed}")
        return value

    return parse


positive_int = _number_type(int, "an integer >= 1", lambda v: v >= 1)
non_negative_int = _number_type(int, "an integer >= 0", lambda v: v >= 0)
# NaN fails every comparison, so both reject it; infinity is refused explicitly.
positive_float = _number_type(float, "a number > 0", lambda v: 0 < v < float("inf"))
non_negative_float = _number_type(float, "a number >= 0", lambda v: 0 <= v < float("inf"))
fraction = _number_type(float, "a number from 0 to below 1", lambda v: 0 <= v < 1)


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"got '{text}'; allowed: a port from 1 to 65535")
    return value


def device_name(text: str) -> str:
    if text in ("auto", "cpu", "cuda") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"got '{text}'; allowed: auto, cpu, cuda, cuda:N")


def add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", metavar="URL",
                        help=f"Optuna storage: an SQLAlchemy URL or a journal file path "
                             f"(default: {DEFAULT_STORAGE})")


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", metavar="NAME",
                        help="study name (default: the only study in the storage)")
    add_storage_argument(parser)


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT",
                        help="a checkpoint written by 'nas train --save' or by 'nas search'")
    parser.add_argument("--dataset", metavar="NAME",
                        help="data to measure on (default: the dataset it was trained on)")
    parser.add_argument("--data-dir", metavar="DIR", help="where on-disk datasets live")
    parser.add_argument("--tolerance", type=fraction, default=0.01, metavar="X",
                        help="accuracy a removal may cost, as a fraction (default: 0.01 = 1 pp)")
    add_device_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """--device and --threads, the same for every command that runs a network."""
    parser.add_argument("--device", type=device_name, default="auto",
                        help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N "
                             "(default: auto)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help="CPU threads for torch (default: $OMP_NUM_THREADS if set, else "
                        "the CPUs this process may use)")


def check_data_args(args: argparse.Namespace) -> None:
    """--dataset and --data-dir, checked before anything heavy is imported."""
    check_data_inputs(args.dataset, args.data_dir)

