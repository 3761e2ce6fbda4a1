"""Errors that the ``hebbian`` command reports as one line on stderr with exit code 2 (no traceback)."""

from __future__ import annotations


class UsageError(Exception):
    """A problem with what the user asked for (config, flags, data, output folder), not a bug.

    The command prints ``hebbian: error: <message>`` and exits with :data:`EXIT_USAGE`.
    """


class ConfigError(UsageError, ValueError):
    """A config key or value is wrong; the message names the key and what was expected.

    Args:
        key: dotted config key, e.g. ``"train.epochs"``.
        message: what was wrong and what was expected.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config key {key!r}: {message}" if key else message)


#: Exit code of usage errors (argparse uses the same).
EXIT_USAGE = 2
