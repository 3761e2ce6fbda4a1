"""Loading runs back (hebbian.runs.load); issue 20 item 6: evaluate and visualize on a comparison folder name the runs
inside instead of saying "no checkpoint"."""

from __future__ import annotations

import pytest

from hebbian.cli import main

FAST = ["--epochs", "1", "--train-limit", "200", "--test-limit", "60", "--no-progress", "--no-tensorboard",
        "--set", "data.split=fixed", "--set", "probe.control=false"]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp")
    for method in ("oja", "krotov"):
        assert main(["train", "compare_digits", "--rule", method, "--out", str(out / method / "seed0"), *FAST]) == 0
    (out / "results.md").write_text("| method |\n")
    return out


@pytest.mark.parametrize("command", ["evaluate", "visualize"])
def test_a_comparison_folder_names_its_runs(comparison, capsys, command):
    assert main([command, str(comparison)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds runs, not a run of its own" in err
    assert f"{comparison / 'krotov' / 'seed0'}" in err and f"{comparison / 'oja' / 'seed0'}" in err


def test_an_empty_folder_still_says_no_checkpoint(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
