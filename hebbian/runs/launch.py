"""Data-parallel runs: several processes of one run (``torchrun``, or spawned by :func:`run_parallel`)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import ignite.distributed as idist

from hebbian.errors import UsageError


#: Prefix of the folder in which the processes of a data-parallel run leave their exit codes
#: (``hebbian-ranks-<launcher pid>-XXXX`` in the temporary directory).
RANKS_PREFIX = "hebbian-ranks-"


def on_rank_zero(fn: Callable[[], str]) -> str:
    """``fn()`` on rank 0 only, its result (a string) or its :class:`UsageError` shared with every rank.

    In one process simply ``fn()``. In a data-parallel run the other ranks wait for rank 0 and then return its
    result, or raise the same error, so that all ranks stop together.
    """
    if idist.get_world_size() <= 1:
        return fn()
    reply = ""
    if idist.get_rank() == 0:
        try:
            reply = "ok:" + fn()
        except UsageError as err:
            reply = "error:" + str(err)
    reply = str(idist.broadcast(reply, src=0, safe_mode=True))
    if reply.startswith("error:"):
        raise UsageError(reply[len("error:"):])
    return reply[len("ok:"):]


def launched_by_torchrun() -> bool:
    """Whether this process is one of several that ``torchrun`` (or another launcher setting ``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``) started."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ
    except ValueError:
        return False


def run_parallel(fn: Callable[..., int], *args: Any, nproc: Optional[int], backend: str = "gloo") -> int:
    """``fn(*args) -> exit code`` in every process of a data-parallel run, through ``ignite.distributed.Parallel``.

    Args:
        fn: a module-level function (the spawned processes import it).
        args: its arguments (picklable).
        nproc: processes to spawn on this machine; ``None``: this process is one that ``torchrun`` started.
        backend: ``"gloo"`` (CPU; CUDA is hidden from the spawned processes) or ``"nccl"`` (one GPU per process).

    Returns:
        Rank 0's exit code (the spawning process), or this process's (under ``torchrun``).
    """
    import logging

    from torch.multiprocessing.spawn import ProcessException

    logging.getLogger("ignite.distributed.launcher.Parallel").setLevel(logging.WARNING)
    remove_stale_rank_folders()
    codes = Path(tempfile.mkdtemp(prefix=f"{RANKS_PREFIX}{os.getpid()}-"))
    hide_cuda = backend == "gloo" and nproc is not None
    saved = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        if hide_cuda:  # with CUDA visible, Ignite binds each gloo process to cuda:<rank>
            os.environ["CUDA_VISIBLE_DEVICES"] = ""
        kwargs: Dict[str, Any] = {} if nproc is None else {"nproc_per_node": nproc, "master_port": _free_port()}
        try:
            with idist.Parallel(backend=backend, **kwargs) as parallel:
                parallel.run(_rank_main, fn, args, str(codes))
        except ProcessException as err:  # a rank killed (or crashed): one line, not the launcher's traceback
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            print(f"hebbian: error: a process of the data-parallel run ended abnormally ({first}); the run folder "
                  "keeps its last checkpoint: continue it with --resume RUN", file=sys.stderr)
            return 1
        mine = codes / ("0" if nproc is not None else str(idist.get_rank()))
        files = sorted(codes.iterdir())
        if not mine.is_file():
            mine = files[0] if files else mine
        return int(mine.read_text()) if mine.is_file() else 1
    finally:
        if hide_cuda:
            if saved is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = saved
        shutil.rmtree(codes, ignore_errors=True)


def check_process_count(nproc: int, backend: str, force: bool = False) -> None:
    """``--nproc N`` against what this machine has, as ``torchrun`` users expect: on the CPU (gloo) at most one
    process per available core unless ``force``; with NCCL at most one process per visible GPU.

    Raises:
        UsageError: naming the count, what the machine has and what to do.
    """
    if backend == "nccl":
        import torch

        gpus = torch.cuda.device_count()
        if nproc > gpus:
            raise UsageError(f"--nproc {nproc}: NCCL runs one process per GPU and {gpus} GPU(s) are visible; pass "
                             f"--nproc {gpus} or fewer (or --device cpu for gloo processes)")
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if nproc > cores and not force:
        raise UsageError(f"--nproc {nproc}: this machine has {cores} core(s) available; more processes than cores "
                         "only slow the run down and each holds its own copy of the model and data (memory); pass "
                         f"--nproc {cores} or fewer, or --force to start them anyway")


def remove_stale_rank_folders() -> None:
    """Delete the exit-code folders that launchers killed before their clean-up (``kill -9``) left behind: those
    whose launcher process no longer exists."""
    for path in Path(tempfile.gettempdir()).glob(f"{RANKS_PREFIX}*"):
        match = re.match(rf"{RANKS_PREFIX}(\d+)-", path.name)
        if match and path.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rank_main(local_rank: int, fn: Callable[..., int], args: Sequence[Any], codes: str) -> None:
    rank = idist.get_rank()
    code = fn(*args)
    Path(codes, str(rank)).write_text(str(int(code or 0)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
