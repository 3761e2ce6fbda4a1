"""Smoke run of ``python -m benchmarks.shares`` (train.shares' cost) at minimal sizes: the table and its command are
written, with a thread-CPU row under one thread; no time is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import shares  # noqa: E402


def test_the_table_is_written_with_its_command(tmp_path, monkeypatch):
    monkeypatch.setattr(shares, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(OSError("no disk here")))
    threads = torch.get_num_threads()
    out = tmp_path / "shares.md"
    try:
        assert shares.main(["--hidden", "8", "--samples", "300", "--reps", "1", "--threads", "1",
                            "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    text = out.read_text()
    assert text.startswith("Command: `python -m benchmarks.shares --hidden 8 --samples 300 --reps 1 --threads 1 --out ")
    assert "| 8 | thread CPU |" in text and "| 8 | wall |" in text and "random data of MNIST's shape" in text


def test_fewer_than_two_shares_is_a_usage_error():
    with pytest.raises(SystemExit) as err:
        shares.main(["--shares", "1"])
    assert err.value.code == 2
