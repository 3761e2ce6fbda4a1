"""How a run was made: commit, command, machine, start time (``provenance.json`` in every run folder).

A published number must say where it came from; :func:`provenance` records it when the run starts, so no one has to
type it afterwards. :mod:`hebbian.results` prints it next to every row.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

import torch

#: environment variables that change what or how fast a run computes; recorded in the command when set
RECORDED_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "HEBBIAN_DATA_ROOT")

_INVOKED_AS: ContextVar[Optional[Sequence[str]]] = ContextVar("hebbian_invoked_as", default=None)


@contextmanager
def invoked_as(argv: Sequence[str]) -> Iterator[None]:
    """Within this context :func:`command_line` reports ``argv`` (the CLI says what it was called with, also when
    called in-process, e.g. ``hebbian.cli.main(["train", ...])``)."""
    token = _INVOKED_AS.set(list(argv))
    try:
        yield
    finally:
        _INVOKED_AS.reset(token)


def git_commit(path: Optional[Path] = None) -> Dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``path`` (default: this package), else ``{}``.

    ``dirty`` is true when tracked files differ from the commit (untracked files do not count).
    """
    where = str(path or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return {}
        status = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": sha.stdout.strip(), "dirty": bool(status.stdout.strip())}


def command_line(argv: Optional[Sequence[str]] = None) -> str:
    """The command as a user would type it: recorded environment variables, then ``hebbian ...`` for the CLI
    (console script or ``python -m hebbian.cli``), else ``python`` and the arguments."""
    argv = list(argv if argv is not None else _INVOKED_AS.get() or sys.argv)
    program, args = (argv[0] if argv else ""), argv[1:]
    if Path(program).name == "hebbian" or Path(program).parts[-2:] == ("cli", "__main__.py"):
        head = ["hebbian"]
    elif Path(program).name == "__main__.py" and Path(program).parent.name == "hebbian":
        head = ["python", "-m", "hebbian"]
    else:
        head = ["python", program] if program else ["python"]
    env = [f"{k}={shlex.quote(os.environ[k])}" for k in RECORDED_ENV if k in os.environ]
    return " ".join(env + [shlex.join(head + args)])


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: Optional[str] = None) -> Dict[str, Any]:
    """CPU, cores, load average, torch's threads and version, and the GPU when ``device`` is a CUDA device."""
    info: Dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "python": platform.python_version()}
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def provenance(device: Optional[str] = None, argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """What ``provenance.json`` holds: ``commit``, ``dirty``, ``command``, ``machine``, ``started`` (UTC)."""
    return {**git_commit(), "command": command_line(argv), "machine": machine(device),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def describe_machine(info: Any) -> str:
    """One line for a table: a machine dict as :func:`machine` writes it, or a string as it is."""
    if not isinstance(info, dict):
        return str(info)
    parts = [f"{info.get('cores')}-core {info.get('cpu')}", f"{info.get('torch_threads')} thread(s)"]
    if info.get("gpu"):
        parts.insert(1, info["gpu"])
    if info.get("load_average"):
        parts.append(f"load {info['load_average'][0]:g} at start")
    parts.append(f"torch {info.get('torch')}")
    return ", ".join(parts)
