"""``python -m hebbian.results``: see :func:`hebbian.results.cli.main`."""

import sys

from hebbian.results.cli import main

sys.exit(main())
