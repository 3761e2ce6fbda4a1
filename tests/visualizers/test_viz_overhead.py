"""The overhead timer runs (times are reported, never asserted)."""

from __future__ import annotations

from hebbian.visualizers.overhead import main


def test_overhead_timer_reports_both_runs(capsys):
    result = main(["--epochs", "1", "--repeats", "1", "--hidden", "16", "--every-iters", "5"])
    assert set(result) == {"base_s", "visual_s", "ratio"}
    assert result["base_s"] > 0 and result["visual_s"] > 0
    assert "ratio" in capsys.readouterr().out
