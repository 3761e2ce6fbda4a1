"""``python -m hebbian.cli``: the ``hebbian`` command."""

import sys

from hebbian.cli.main import main

sys.exit(main())
