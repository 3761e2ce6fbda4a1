"""The README's promises: exactly three set-up commands (CI runs the second, the tests, and the third, the documentation
site), and a Python example that runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = 'pip install "torch==2.14.1" "torchvision==0.29.1"'
MAIN = f"{INSTALL} -e . && hebbian compare"
TESTS = f'{INSTALL} -e ".[test]" && python -m pytest -q'
DOCS = 'pip install -e ".[docs]" && sphinx-build -W -b html docs docs/_build/html'


def blocks(language: str) -> list:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_exactly_three_setup_commands_and_ci_runs_the_tests_and_the_site():
    setup = [b.strip() for b in blocks("bash") if b.lstrip().startswith("pip install")]
    assert setup == [MAIN, TESTS, DOCS]
    assert README.count("pip install") == 3
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert TESTS in ci and DOCS in ci


def test_documented_commands_and_configs_exist(capsys):
    from hebbian.cli import main
    from hebbian.config import list_configs

    commands = set(re.findall(r"^hebbian (\w+)", "\n".join(blocks("bash")), flags=re.M))
    assert commands >= {"compare", "train", "evaluate", "visualize", "list", "config"}
    for command in commands:
        assert main([command, "--help"]) == 0, command
    capsys.readouterr()
    for name in re.findall(r"hebbian train (\w+_cpu)", README):
        assert name in list_configs()
    for doc in ("examples/lessons/", "sphinx-build -W -b html docs docs/_build/html", "docs/rules.md", "docs/results.md"):
        assert doc in README


def test_the_train_example_learns_and_prints_what_the_readme_says(tmp_path, capsys):
    """The README's `hebbian train ... --rule softhebb` example, run now, prints the summary the README quotes, and
    that summary shows learning (its features beat the untrained control; the units moved, none dead)."""
    import json

    from hebbian.cli import main

    (command,) = re.findall(r"^hebbian (train compare_digits --rule softhebb[^\n#]*)", "\n".join(blocks("bash")),
                            flags=re.M)
    (quoted,) = re.findall(r"`(softhebb on digits [^`]*)`", README)
    assert main(command.split() + ["--out", str(tmp_path / "run"), "--no-progress", "--no-tensorboard"]) == 0
    printed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("softhebb on digits"))
    assert printed.rsplit(" | ", 1)[0] == quoted  # all but the wall time
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["probe_gain"] > 0.02 and metrics["weight_change"] > 0.5 and metrics["dead_units"] == 0.0
    assert f"weight change {metrics['weight_change']:.3f}" in README


@pytest.mark.slow
def test_python_example_runs(capsys):
    (example,) = blocks("python")
    exec(compile(example, "README.md", "exec"), {})
    assert "test_accuracy" in capsys.readouterr().out


def _rows(markdown: str) -> list:
    """The body rows of the first table in ``markdown``, without the last (timing) column."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [line.split(" | ")[:-1] for line in lines[1:]]


@pytest.mark.slow
def test_readme_table_is_what_the_main_job_prints_now(tmp_path):
    """Every number of the README's table comes from `hebbian compare` with the current code (timings aside)."""
    from hebbian.cli import main

    assert main(["compare", "--out", str(tmp_path / "job"), "--no-progress", "--no-tensorboard"]) == 0
    produced = (tmp_path / "job" / "results.md").read_text(encoding="utf-8")
    readme_table = README[README.index("| method | kind | probe test acc."):]
    assert _rows(readme_table)[: len(_rows(produced))] == _rows(produced)
