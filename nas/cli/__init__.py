"""The ``nas`` command line: one module per command group, each parser beside its behaviour.

Every user mistake (a bad file, flag, path) ends as one line on stderr and
exit status 2; a traceback reaching the user is a bug, so unexpected errors
are shortened to one line too unless ``RESNAS_DEBUG=1`` asks for the trace.
Heavy libraries (torch, Optuna, Ray) are imported inside each command, after
its input has been checked.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from nas import __version__
from nas.cli import depth, export, search, studies, train
from nas.cli.args import USAGE_ERROR, OneLineParser
from nas.errors import (
    DISK_FULL_EXIT,
    DiskFull,
    DiskShort,
    Diverged,
    NasError,
    escape_line_breaks,
    flag_names,
    one_line,
)

# In the order `nas --help` lists them.
COMMAND_GROUPS = (train, search, studies, depth, export)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="nas",
        description="Neural-architecture search for residual networks that measures how many "
                    "of each network's layers are actually useful.",
        epilog="Run 'nas COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"resnas {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with flag_names():  # errors name --storage, not storage
            return args.run(args)
    except Diverged as exc:
        print(f"nas: {exc}; try a lower lr or a smaller network", file=sys.stderr)
        return 1
    except (DiskShort, DiskFull) as exc:  # not a mistake in the input: space, then again
        print(f"nas: {escape_line_breaks(str(exc))}", file=sys.stderr)
        return DISK_FULL_EXIT
    except NasError as exc:
        print(f"nas: error: {escape_line_breaks(str(exc))}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("nas: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in resnas: keep it to one line unless asked
        if os.environ.get("RESNAS_DEBUG"):
            raise
        print(f"nas: internal error: {type(exc).__name__}: {one_line(exc, 300)} "
              "(set RESNAS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


def run() -> None:
    """The ``nas`` script: :func:`main`, then a quick exit.

    Once torch, Ray and plotly are loaded, Python's own teardown of their modules takes
    about a second after the work is done and every file is closed. The exit handlers
    still run (Ray's, logging's); then, with no other thread left to finish, the process
    ends without that teardown. Anything else (a thread still running) exits as usual.
    """
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
            stream.flush()
    if all(t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(code)
    sys.exit(code)
