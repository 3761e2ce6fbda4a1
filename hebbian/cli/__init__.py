"""The ``hebbian`` command line: ``train``, ``compare``, ``evaluate``, ``visualize``, ``list``, ``config``.

Console script ``hebbian`` (``hebbian.cli:main``); also ``python -m hebbian.cli``. In Python,
``hebbian.cli.main(["compare", "--rules", "oja,krotov"])`` returns the exit code.
"""

from hebbian.errors import ConfigError, UsageError
from hebbian.cli.main import build_parser, main

__all__ = ["main", "build_parser", "ConfigError", "UsageError"]
