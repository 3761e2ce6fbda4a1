"""Issue 20 item 4: progress bars only on a terminal; a log gets one line per training epoch; --progress forces
bars, --no-progress silences both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["train", "compare_digits", "--epochs", "3", "--train-limit", "300", "--test-limit", "60",
        "--no-tensorboard", "--set", "data.split=fixed", "--set", "probe.control=false"]


def stderr_of(tmp_path: Path, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "hebbian.cli", *ARGS, "--out", str(tmp_path / "run"), *extra],
                          env=env, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    err = done.stderr.decode("utf-8", "replace")  # bytes: text mode would turn the bars' "\r" into newlines
    assert done.returncode == 0, err
    return err


def test_no_terminal_one_line_per_epoch_and_no_bar_frames(tmp_path):
    err = stderr_of(tmp_path)
    assert "\r" not in err
    lines = [line for line in err.splitlines() if ": epoch " in line]
    assert [line.split(": epoch ")[1].split()[0] for line in lines] == ["1/3", "2/3", "3/3"]


@pytest.mark.parametrize("flag, bars, lines", [("--progress", True, False), ("--no-progress", False, False)])
def test_the_flags_force_or_silence(tmp_path, flag, bars, lines):
    err = stderr_of(tmp_path, flag)
    assert ("\r" in err) == bars
    assert (": epoch 1/3" in err) == lines
