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
import hashlib
import json
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from hebbian.config import Config
from hebbian.errors import UsageError
from hebbian.files import write_atomic
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
#: hebbian's marker of a run folder: JSON with the run's identity (``run_id``) and the SHA-256 of the
#: ``config.yaml`` hebbian last wrote there (a different hash: the file was edited by hand).
MARKER_FILE = ".hebbian-run"


#: The files and folders of a run that hebbian writes; :meth:`RunFolder.clear` deletes only these (in ``checkpoints/``
#: only checkpoint files, in ``tb/`` only TensorBoard event files), never anything a user put beside them.
_OWN_FILES = ("config.yaml", "provenance.json", "metrics.json", "evaluation.json", "filters.png", "filters_over_training.png",
              "filters_over_training.gif")


class RunFolder:
    """Exclusive use of a run folder by one live process, and the folder's identity.

    :meth:`lock` takes the folder's lock file (``.hebbian.lock``) with ``flock``: a second process is refused at
    once, naming the holder (pid, host, start time). The system releases an ``flock`` when its process ends, however
    it ends, so a lock file left behind by a killed process is *stale*: it is detected (nobody holds it) and taken
    over; :attr:`stale` names its last holder, so the takeover can be recorded (``provenance.json``). A lock path that
    is not a regular file (a link, a folder, a FIFO) is refused, never opened through. :meth:`unlock` (also on
    ``with`` exit) deletes the lock file.

    The marker (:data:`MARKER_FILE`) says that hebbian made the folder's run: only a marked folder may be replaced
    (:meth:`clear`), and a checkpoint placed in it from another run is told apart by the run's identity.

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
            UsageError: the folder cannot be written, its lock path is not a regular file, or another live process
                holds it.
        """
        import fcntl

        prepare_run_dir(self.path)
        while True:
            fd = self._open_lock_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_fd(fd)
                os.close(fd)
                raise UsageError(f"the run folder {str(self.path)!r} is in use by another hebbian run "
                                 f"({holder or 'holder unknown'}); wait for it to end, or choose another --out") \
                    from None
            try:
                same = os.stat(self.lock_path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
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

    def _open_lock_file(self) -> int:
        """The lock file's descriptor, opened without following a link and only if it is a regular file."""
        path = self.lock_path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            raise UsageError(f"the lock file {str(path)!r} is {_kind_of(path)}, not a lock file hebbian wrote; "
                             f"remove it or choose another --out ({err.strerror or err})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise UsageError(f"the lock file {str(path)!r} is {_kind_of(path)}, not a lock file hebbian wrote; "
                             "remove it or choose another --out")
        return fd

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
        """The entries of :data:`RUN_ENTRIES` present in the folder, links included (empty: it holds no run)."""
        return [name for name in RUN_ENTRIES if os.path.lexists(self.path / name)]

    # ------------------------------------------------------------------ identity
    def marker(self) -> Optional[Dict[str, Any]]:
        """The folder's marker (``run_id``, ``config_sha256``, ...), or ``None`` when it has none.

        Raises:
            UsageError: the marker exists but is not hebbian's (not a JSON object with a ``run_id``).
        """
        path = self.path / MARKER_FILE
        if not os.path.lexists(path):
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() and not path.is_symlink() else None
        except (OSError, ValueError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str):
            raise UsageError(f"{str(path)!r} is not a marker hebbian wrote (a JSON object with a run_id); "
                             "remove it if the folder is not a hebbian run, or choose another --out")
        return data

    def write_marker(self, run_id: str, config_text: str, legacy: bool = False) -> None:
        """Mark the folder as the run ``run_id`` whose config hebbian writes as ``config_text`` (``legacy``: its
        earlier checkpoints predate run identities and are accepted as its own)."""
        data: Dict[str, Any] = {"run_id": run_id, "config_sha256": text_sha256(config_text),
                                "written": datetime.datetime.now().isoformat(timespec="seconds")}
        if legacy:
            data["legacy"] = True
        write_atomic(self.path / MARKER_FILE, json.dumps(data, indent=2) + "\n")

    def check_writable_entries(self) -> None:
        """The folders a run writes into (``checkpoints``, ``tb``), where they exist, are real folders.

        Raises:
            UsageError: one is a file, a link or anything else (naming it).
        """
        for name in ("checkpoints", "tb"):
            path = self.path / name
            if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
                raise UsageError(f"{str(path)!r} is {_kind_of(path) if path.is_symlink() or path.exists() else 'broken'}"
                                 f", not the run's {name} folder; remove it or choose another --out")

    def is_hebbian_run(self) -> bool:
        """Whether hebbian made the run in this folder: its marker, or (a run of a version before the marker) a
        ``provenance.json`` as hebbian writes it next to a ``config.yaml``."""
        if self.marker() is not None:
            return True
        try:
            prov = json.loads((self.path / "provenance.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(prov, dict) and {"command", "machine", "started"} <= set(prov) and \
            (self.path / "config.yaml").is_file()

    def clear(self) -> List[Path]:
        """Delete the files hebbian wrote for the run the folder holds; returns them. Anything else (a user's own
        files, in ``checkpoints/`` and ``tb/`` too) stays, and so do the folders that still hold it.

        Raises:
            UsageError: the folder's run was not made by hebbian (:meth:`is_hebbian_run`): nothing is deleted.
        """
        if not self.is_hebbian_run():
            raise UsageError(f"--overwrite: {str(self.path)!r} holds files ({', '.join(self.existing_run())}) but "
                             f"no hebbian run (no {MARKER_FILE} marker): nothing was deleted; move them away or "
                             "choose another --out")
        removed = [self.path / name for name in _OWN_FILES if os.path.lexists(self.path / name)]
        removed += _own_files_below(self.path / "checkpoints", _is_checkpoint_file)
        removed += _own_files_below(self.path / "tb", lambda p: p.name.startswith("events.out.tfevents."))
        for path in removed:
            path.unlink()
        for folder in ("checkpoints", "tb"):
            _remove_empty_folders(self.path / folder)
        return removed


def _kind_of(path: Path) -> str:
    """'a symbolic link', 'a folder', 'a FIFO', ... for an error message."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "not readable"
    for test, kind in ((stat.S_ISREG, "a file"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return "not a regular file"


def _is_checkpoint_file(path: Path) -> bool:
    from hebbian.trainers.checkpoint import PARTIAL_SUFFIX

    return bool(re.fullmatch(r"[A-Za-z0-9_.-]*_\d+\.pt", path.name)) or \
        (path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX))


def _own_files_below(folder: Path, own: Callable[[Path], bool]) -> List[Path]:
    """The files (and links) below ``folder`` that ``own`` says hebbian wrote; links to folders are not entered."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for root, dirs, files in os.walk(folder):  # os.walk does not follow links to folders
        found += [Path(root, name) for name in files + [d for d in dirs if Path(root, d).is_symlink()]
                  if own(Path(root, name))]
    return found


def _remove_empty_folders(folder: Path) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for root, dirs, _ in os.walk(folder, topdown=False):
        for name in dirs:
            try:
                Path(root, name).rmdir()
            except OSError:
                pass
    try:
        folder.rmdir()
    except OSError:
        pass


def text_sha256(text: str) -> str:
    """The SHA-256 of ``text`` encoded as UTF-8 (hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
