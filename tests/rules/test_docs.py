"""docs/rules.md: its new-rule example runs, and it documents every registered rule with its real defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import hebbian.rules as R
from hebbian.rules import registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


def python_blocks(text: str):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def clean_registry():
    """Executing the example registers a rule: restore the registry afterwards so other tests see the built-ins."""
    saved = dict(registry._REGISTRY), dict(registry._ALIASES)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._ALIASES.clear()
    registry._ALIASES.update(saved[1])


def test_new_rule_example_runs_and_registers(text, clean_registry, capsys):
    blocks = [b for b in python_blocks(text) if "@register_rule" in b]
    assert len(blocks) == 1, "docs/rules.md must hold exactly one example using @register_rule"
    before = set(R.list_rules())
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    new = set(R.list_rules()) - before
    assert len(new) == 1
    name = new.pop()
    rule = R.create(name)
    assert isinstance(rule, R.LearningRule) and rule.info.name == name
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 30
    # the example's rule honours the contract: reducible statistics and a state_dict round trip
    layer = torch.nn.Linear(5, 3, bias=False).double()
    x = torch.randn(8, 5, dtype=torch.float64)
    u = layer(x).detach()
    view = rule.check_layer(layer)
    halves = [rule.statistics(view, *view.prepare(x[s], u[s])) for s in (slice(0, 3), slice(3, 8))]
    summed = {k: halves[0][k] + halves[1][k] for k in halves[0]}
    assert torch.allclose(rule.finalize(view, summed), rule.update(layer, x, u), rtol=1e-10)
    fresh = R.create(name)
    fresh.load_state_dict(rule.state_dict())
    assert repr(fresh) == repr(rule)
    assert type(rule).__name__ + "(" in capsys.readouterr().out


def test_usage_example_runs(text):
    blocks = [b for b in python_blocks(text) if "@register_rule" not in b]
    assert blocks
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), {})


@pytest.mark.parametrize("name", R.list_rules())
def test_every_rule_is_documented_with_its_defaults(text, name):
    info = R.get_rule_info(name)
    heading = f"### `{name}`: `{info.cls.__name__}`"
    assert heading in text, f"docs/rules.md has no section {heading!r}"
    section = text.split(heading, 1)[1].split("\n### ", 1)[0]
    row = next(line for line in text.splitlines() if line.startswith(f'| `"{name}"`'))
    for key, value in info.defaults().items():
        assert f"`{key}={value!r}`" in section, (name, key)
        assert f"`{key}={value!r}`" in row, (name, key)
    for alias in info.aliases:
        assert alias in section and alias in row
    for flag in ("needs_labels", "needs_global_grad", "stateful"):
        assert (flag in row) == getattr(info, flag), (name, flag)
