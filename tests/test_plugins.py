"""Issue 18 part 5: your own rule from the command line (--import a file or a module, entry points of installed
packages), recorded in the run folder, checked as it is imported; docs/rules.md's example as printed there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import hebbian.plugins as plugins
from hebbian.cli import main
from hebbian.models import registry as model_registry
from hebbian.rules import list_rules
from hebbian.rules import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
FAST = ["--train-limit", "200", "--test-limit", "60", "--no-progress", "--no-tensorboard",
        "--set", "data.batch_size=50", "--set", "data.split=fixed", "--set", "probe.control=false"]

GOOD = '''
from hebbian.rules import LearningRule, register_rule


@register_rule("{name}", description="plain Hebb with a mean over the batch")
class Plain(LearningRule):
    def statistics(self, view, x, u, labels=None):
        return {{"delta": view.correlate(x, u), "count": view.count(u)}}
'''


@pytest.fixture(autouse=True)
def clean_registries(monkeypatch):
    """Each test starts from the built-ins, and what it imports is forgotten afterwards."""
    saved = dict(registry._REGISTRY), dict(registry._ALIASES), dict(model_registry._MODELS)
    monkeypatch.setattr(plugins, "_IMPORTED", {})
    monkeypatch.setattr(plugins, "_ENTRY_POINTS_LOADED", False)
    yield
    for reg, before in zip((registry._REGISTRY, registry._ALIASES, model_registry._MODELS), saved):
        reg.clear()
        reg.update(before)


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hebbian: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_a_rule_in_a_file_trains_is_recorded_and_resumes(tmp_path, capsys):
    plugin = tmp_path / "plain_rule.py"
    plugin.write_text(GOOD.format(name="plain_file"))
    run = tmp_path / "run"
    assert main(["train", "compare_digits", "--import", str(plugin), "--rule", "plain_file", "--epochs", "2",
                 "--out", str(run), "--set", "checkpoint.every=1", "--set", "checkpoint.n_saved=3", *FAST]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["imports"] == [str(plugin.resolve())] and saved["rule"]["name"] == "plain_file"
    (run / "metrics.json").unlink()  # as if killed before its end
    (run / "checkpoints" / "checkpoint_8.pt").unlink()
    registry._REGISTRY.pop("plain_file")  # a new process: the rule is known only through the run's config
    plugins._IMPORTED.clear()
    assert main(["train", "--resume", str(run)]) == 0
    assert json.loads((run / "metrics.json").read_text())["rule"] == "plain_file"


def test_compare_imports_a_module_on_the_path(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_plain_rules.py").write_text(GOOD.format(name="plain_module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "cmp"
    assert main(["compare", "--import", "my_plain_rules", "--rules", "plain_module,random", "--seeds", "1",
                 "--epochs", "1", "--out", str(out), *FAST]) == 0
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"plain_module", "random"}
    assert yaml.safe_load((out / "plain_module" / "seed0" / "config.yaml").read_text())["imports"] == \
        ["my_plain_rules"]


BROKEN = {
    "clash": ('from hebbian.rules import LearningRule, register_rule\n'
              '@register_rule("krotov", description="x")\nclass K(LearningRule):\n'
              '    def statistics(self, view, x, u, labels=None):\n        return {}\n',
              "a rule named 'krotov' is already registered"),
    "abstract": ('from hebbian.rules import LearningRule, register_rule\n'
                 '@register_rule("no_stats", description="x")\nclass K(LearningRule):\n    pass\n',
                 "rule 'no_stats' (K) does not implement statistics"),
    "shape": ('import torch\nfrom hebbian.rules import LearningRule, register_rule\n'
              '@register_rule("bad_shape", description="x")\nclass K(LearningRule):\n'
              '    def statistics(self, view, x, u, labels=None):\n        return {"u": u.sum()}\n'
              '    def finalize(self, view, stats, grad=None):\n        return torch.zeros(3)\n',
              "rule 'bad_shape' returns an update of shape (3,)"),
    "no_delta": ('from hebbian.rules import LearningRule, register_rule\n'
                 '@register_rule("no_delta", description="x")\nclass K(LearningRule):\n'
                 '    def statistics(self, view, x, u, labels=None):\n        return {"other": u.sum()}\n',
                 "rule 'no_delta' fails on nn.Linear(6, 4)"),
    "not_a_rule": ('from hebbian.rules import register_rule\n'
                   '@register_rule("not_a_rule", description="x")\nclass K:\n    pass\n',
                   "is not a subclass of hebbian.rules.LearningRule"),
    "syntax": ("def broken(:\n", "invalid syntax"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_plugin_that_breaks_the_contract_is_one_line_and_registers_nothing(tmp_path, capsys, case):
    source, expected = BROKEN[case]
    plugin = tmp_path / f"{case}_plugin.py"
    plugin.write_text("from hebbian.rules import LearningRule, register_rule\n"
                      "@register_rule('half_registered', description='registered before the broken one')\n"
                      "class Fine(LearningRule):\n"
                      "    def statistics(self, view, x, u, labels=None):\n"
                      "        return {'delta': view.correlate(x, u), 'count': view.count(u)}\n" + source)
    before = list_rules()
    err = one_line_error(capsys, ["compare", "--import", str(plugin), "--rules", "krotov", "--seeds", "1",
                                  "--out", str(tmp_path / "cmp"), *FAST])
    assert expected in err and f"--import {plugin}" in err and "nothing of it was registered" in err
    assert list_rules() == before and "half_registered" not in list_rules()
    assert not (tmp_path / "cmp").exists()


def test_a_missing_plugin_is_one_line(tmp_path, capsys):
    err = one_line_error(capsys, ["train", "compare_digits", "--import", str(tmp_path / "nope.py"), "--epochs",
                                  "1", *FAST])
    assert "no such file" in err
    err = one_line_error(capsys, ["train", "compare_digits", "--import", "no_such_module_xyz", "--epochs", "1",
                                  *FAST])
    assert "No module named 'no_such_module_xyz'" in err


def test_an_installed_packages_entry_point_appears_in_hebbian_list_rules(tmp_path, monkeypatch, capsys):
    """An installed distribution (its dist-info on the path, as pip leaves it) declaring a hebbian.rules entry
    point."""
    site = tmp_path / "site"
    (site / "my_rules_pkg").mkdir(parents=True)
    (site / "my_rules_pkg" / "__init__.py").write_text("")
    (site / "my_rules_pkg" / "plain.py").write_text(GOOD.format(name="plain_entry_point"))
    info = site / "my_rules_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-rules-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[hebbian.rules]\nplain = my_rules_pkg.plain\n")
    monkeypatch.syspath_prepend(str(site))
    assert main(["list", "rules"]) == 0
    assert "plain_entry_point" in capsys.readouterr().out
    out = tmp_path / "cmp"
    assert main(["compare", "--rules", "plain_entry_point", "--seeds", "1", "--epochs", "1", "--out", str(out),
                 *FAST]) == 0


def test_the_docs_example_runs_from_the_command_line_as_printed(tmp_path, monkeypatch, capsys):
    text = DOC.read_text(encoding="utf-8")
    example = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "@register_rule" in b][0]
    command = [b for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S) if "--import my_bcm.py" in b][0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_bcm.py").write_text(example)
    argv = command.split()
    assert argv[0] == "hebbian"
    assert main(argv[1:] + ["--no-progress", "--out", str(tmp_path / "cmp")]) == 0
    assert "| my_bcm" in capsys.readouterr().out
    assert (tmp_path / "cmp" / "my_bcm" / "seed0" / "metrics.json").is_file()


def test_import_specs_are_normalised():
    assert plugins.normalise_spec("pkg.mod") == "pkg.mod"
    assert Path(plugins.normalise_spec("rules/x.py")).is_absolute()
    with pytest.raises(Exception, match="expected a module name or a path"):
        plugins.normalise_spec("  ")
