"""``python -m nas.cli``, as the ``nas`` script."""

from nas.cli import run

run()
