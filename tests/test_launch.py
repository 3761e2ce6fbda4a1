"""Issue 22 item 14: --nproc checked against the machine; a killed rank or launcher leaves no traceback and no
temporary folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hebbian.cli import main
from hebbian.runs.launch import RANKS_PREFIX, check_process_count, remove_stale_rank_folders, run_parallel
from hebbian.errors import UsageError


def test_more_processes_than_cores_is_refused_without_force(capsys):
    cores = len(os.sched_getaffinity(0))
    assert main(["train", "compare_digits", "--nproc", str(cores + 98), "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--nproc {cores + 98}: this machine has {cores} core(s)" in err
    assert "--force" in err
    check_process_count(cores + 98, "gloo", force=True)  # allowed when forced
    check_process_count(cores, "gloo")


def test_nccl_needs_a_gpu_per_process():
    with pytest.raises(UsageError, match="one process per GPU"):
        check_process_count(64, "nccl", force=True)


def test_folders_of_killed_launchers_are_removed_and_live_ones_kept():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=f"{RANKS_PREFIX}{dead.pid}-", dir=tmp))
    (stale / "0").write_text("0")
    live = Path(tempfile.mkdtemp(prefix=f"{RANKS_PREFIX}{os.getpid()}-", dir=tmp))
    try:
        remove_stale_rank_folders()
        assert not stale.exists() and live.is_dir()
    finally:
        for path in (stale, live):
            if path.exists():
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()


def _killed_rank() -> int:
    import ignite.distributed as idist

    if idist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return 0


@pytest.mark.distributed
def test_a_killed_rank_is_one_line_and_exit_code_1(capfd):
    before = set(Path(tempfile.gettempdir()).glob(f"{RANKS_PREFIX}{os.getpid()}-*"))
    assert run_parallel(_killed_rank, nproc=2) == 1
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("hebbian: error:")]
    assert len(lines) == 1 and "ended abnormally" in lines[0] and "Traceback" not in err
    assert set(Path(tempfile.gettempdir()).glob(f"{RANKS_PREFIX}{os.getpid()}-*")) == before
