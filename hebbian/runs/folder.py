"""Run folders: where a run lives, who may write there, and what a run leaves in it.

A run folder belongs to one run (:class:`RunFolder`):

* while a process trains in it, it holds the folder's lock (``.hebbian.lock``, an ``flock`` that the system releases
  when the process ends however it ends; a lock file left by a killed process is stale and taken over, and the
  takeover is recorded);
* a folder that already holds a run is refused unless the run is resumed or replaced (``overwrite``);
  ``overwrite`` replaces only a folder that hebbian's marker (``.hebbian-run``) says is a run, and deletes only the
  files hebbian writes; default folders (:func:`default_run_dir`) are new folders created atomically, so two runs
  never share one;
* every file is written as a new file renamed onto its name (:mod:`hebbian.files`), never through a link.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any, List, Optional, Union


from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.runs.launch import on_rank_zero

#: The lock file of a run folder (held by the process that trains in it).
LOCK_FILE = ".hebbian.lock"

#: What a run leaves in its folder: a folder holding any of them holds a run.
RUN_ENTRIES = ("config.yaml", "provenance.json", "metrics.json", "evaluation.json", "filters.png", "checkpoints", "tb")

PathLike = Union[str, Path]

def prepare_run_dir(path: PathLike) -> Path:
    """Create the folder and check that it is writable.

    Raises:
        UsageError: it cannot be created or written (the message names the folder and the reason).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".hebbian-write-test-{os.getpid()}"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as err:
        reason = err.strerror or str(err)
        raise UsageError(f"cannot write to the output folder {str(path)!r}: {reason}; pass a writable --out") \
            from None
    return path


def default_run_dir(cfg: Config, stem: Optional[str] = None) -> Path:
    """``cfg["out"]``, else a NEW folder ``runs/<stem or name>-<timestamp>`` (``-2``, ``-3``, ... when that exists),
    created atomically so that runs started in the same second never share it. In a data-parallel run rank 0
    chooses it for every rank."""
    if cfg["out"]:
        return Path(cfg["out"])
    return Path(on_rank_zero(lambda: str(new_run_dir(Path("runs") / f"{stem or cfg['name']}"))))


def new_run_dir(prefix: PathLike) -> Path:
    """A folder ``<prefix>-<YYYYmmdd-HHMMSS>[-N]`` that did not exist before (``mkdir`` is atomic)."""
    prefix = Path(prefix)
    base = f"{prefix.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 10_000):
        path = prefix.parent / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise UsageError(f"cannot create the run folder {str(path)!r}: {err.strerror or err}; pass --out") \
                from None
    raise UsageError(f"no free run folder name {base}-N under {str(prefix.parent)!r}; pass --out")


# ---------------------------------------------------------------------- one run per folder
class RunFolder:
    """Exclusive use of a run folder by one live process.

    :meth:`lock` takes the folder's lock file (``.hebbian.lock``) with ``flock``: a second process is refused at
    once, naming the holder (pid, host, start time). The system releases an ``flock`` when its process ends, however
    it ends, so a lock file left behind by a killed process is *stale*: it is detected (nobody holds it) and taken
    over. :meth:`unlock` (also on ``with`` exit) deletes the lock file.

    Example::

        with RunFolder("runs/a").lock() as folder:
            if folder.existing_run():
                ...
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._fd: Optional[int] = None
        self.stale: Optional[str] = None  #: the holder named in a stale lock file that was taken over

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def lock(self) -> "RunFolder":
        """Create the folder if needed and take its lock.

        Raises:
            UsageError: the folder cannot be written, or another live process holds it.
        """
        import fcntl

        prepare_run_dir(self.path)
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_fd(fd)
                os.close(fd)
                raise UsageError(f"the run folder {str(self.path)!r} is in use by another hebbian run "
                                 f"({holder or 'holder unknown'}); wait for it to end, or choose another --out") \
                    from None
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:  # else its last holder deleted the file between our open and our lock: take the new one
                break
            os.close(fd)
        self.stale = _read_fd(fd) or None
        me = f"pid {os.getpid()} on {socket.gethostname()} since {datetime.datetime.now().isoformat(timespec='seconds')}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, me.encode(), 0)
        self._fd = fd
        return self

    def unlock(self) -> None:
        """Delete the lock file and release the lock (no-op when not held)."""
        if self._fd is None:
            return
        try:
            self.lock_path.unlink()
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def __enter__(self) -> "RunFolder":
        return self if self._fd is not None else self.lock()

    def __exit__(self, *exc: Any) -> None:
        self.unlock()

    def existing_run(self) -> List[str]:
        """The entries of :data:`RUN_ENTRIES` present in the folder (empty: it holds no run)."""
        return [name for name in RUN_ENTRIES if (self.path / name).exists()]

    def clear(self) -> None:
        """Delete the files of the run the folder holds (:data:`RUN_ENTRIES` only; nothing else is touched)."""
        for name in self.existing_run():
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
