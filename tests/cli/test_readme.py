"""The README's promises: exactly two set-up commands (the second is what CI runs), and a Python example that runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL = 'pip install "torch==2.14.1" "torchvision==0.29.1"'
MAIN = f"{INSTALL} -e . && hebbian compare"
TESTS = f'{INSTALL} -e ".[test]" && python -m pytest -q'


def blocks(language: str) -> list:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_exactly_two_setup_commands_and_ci_runs_the_second():
    setup = [b.strip() for b in blocks("bash") if b.lstrip().startswith("pip install")]
    assert setup == [MAIN, TESTS]
    assert README.count("pip install") == 2
    assert TESTS in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


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
    for doc in ("docs/tutorial.ipynb", "docs/rules.md", "docs/results.md"):
        assert doc in README


@pytest.mark.slow
def test_python_example_runs(capsys):
    (example,) = blocks("python")
    exec(compile(example, "README.md", "exec"), {})
    assert "test_accuracy" in capsys.readouterr().out
