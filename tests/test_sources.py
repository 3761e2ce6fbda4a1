"""The package's sources compile without warnings (``python -W error -m compileall hebbian`` passes): an invalid
escape sequence such as ``"\\s"`` in a docstring is a SyntaxWarning today and a SyntaxError in a future Python."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

import hebbian

SOURCES = sorted(Path(hebbian.__file__).parent.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(Path(hebbian.__file__).parent)))
def test_every_source_compiles_with_warnings_as_errors(path: Path):
    source = path.read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SyntaxWarning / DeprecationWarning of invalid escapes become errors
        compile(source, str(path), "exec", dont_inherit=True)  # in memory: no .pyc is written
