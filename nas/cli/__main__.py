"""``python -m nas.cli``, as the ``nas`` script."""

import sys

from nas.cli import main

sys.exit(main())
