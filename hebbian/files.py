"""Writing files safely: every file the package writes is a new file, renamed over its name in one step.

:func:`write_atomic` and :func:`atomic_path` write to a temporary file in the destination's folder and then
``os.replace`` it onto the name. That replaces the *name*: if the name was a symbolic link, the link itself is
replaced and its target is never opened, so a link planted in a run folder cannot make the package overwrite a file
elsewhere; and a reader never sees a half-written file, even if the process is killed mid-write.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path in ``path``'s folder to write to; on success it is renamed onto ``path`` (mode 0644).

    The name keeps ``path``'s suffix (``.partial`` before it), so writers that choose a format by suffix
    (matplotlib's ``savefig``) still do. On an exception the temporary file is deleted and ``path`` is untouched.

    Raises:
        IsADirectoryError: ``path`` is a directory (not a symbolic link to one): it is never replaced by a file.
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a file: remove it or choose another name")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".partial{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: PathLike, data: Union[str, bytes]) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` through :func:`atomic_path` (never half-written, never
    through an existing link)."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
    return Path(path)
