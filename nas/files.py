"""Small path rules shared by the storage checks and the command line.

Both refuse, before any training, a file that could never be written; the
"nearest folder that exists must let us make the rest" walk lives here once.
"""

from __future__ import annotations

from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its nearest ancestor that does."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    return probe


def shown_path(path: str | Path) -> str:
    """Relative to the working folder when inside it: shorter, and what the user typed."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
