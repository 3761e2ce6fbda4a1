"""hebbian.results on bad input (issue 22, items 8-11): every damaged run folder, probe file, template, argument or
output path is a one-line error (exit code 2, one line on stderr naming the input, no traceback) or a documented
success, through the real command entries (``hebbian results`` and ``python -m hebbian.results``).

Each case copies one tiny trained run (2 epochs of ``compare_digits``, a checkpoint per epoch and a probe file),
damages it, and runs one command in-process; two cases run as real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import pytest

from hebbian.cli.main import main as hebbian_main
from hebbian.results import main as results_main

pytestmark = pytest.mark.usefixtures("single_thread")

PROBES = "probes/logistic.json"
ENTRY = {"epoch": 1, "checkpoint": "checkpoint_20.pt", "train_accuracy": 0.9, "val_accuracy": 0.8,
         "test_accuracy": 0.85, "seconds": 0.3, "params": {}, "overrides": []}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-epoch compare_digits run with checkpoints at epochs 1 and 2 and a (hand-written) logistic probe file."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert hebbian_main(["train", "compare_digits", "--set", "train.epochs=2", "--set", "checkpoint.every=1",
                         "--set", "checkpoint.n_saved=5", "--no-progress", "--no-tensorboard", "--out", str(out)]) == 0
    (out / "probes").mkdir()
    (out / PROBES).write_text(json.dumps([ENTRY]))
    return out


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A fresh copy of the trained run to damage."""
    return Path(shutil.copytree(trained, tmp_path / "run", symlinks=True))


def write(rel: str, data) -> Callable[[Path], None]:
    def damage(r: Path) -> None:
        path = r / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)
    return damage


def remove(rel: str) -> Callable[[Path], None]:
    return lambda r: shutil.rmtree(r / rel) if (r / rel).is_dir() else (r / rel).unlink()


def rotated(r: Path) -> None:
    """The run is still training (no metrics.json) and removed checkpoint_40.pt after the probe listed it: a name
    whose file is gone (a dangling link is listed like a file that was removed meanwhile)."""
    (r / "metrics.json").unlink()
    (r / PROBES).unlink()
    (r / "checkpoints/checkpoint_40.pt").unlink()
    os.symlink(r / "checkpoints/gone.pt", r / "checkpoints/checkpoint_40.pt")


def as_comparison(r: Path) -> None:
    """Give the folder a run of its own in ``krotov/seed0/``, as a ``hebbian compare`` folder has."""
    (r / "krotov/seed0").mkdir(parents=True)
    shutil.copy(r / "config.yaml", r / "krotov/seed0/config.yaml")


def nothing(r: Path) -> None:
    pass


PROBE = ["probe", "{run}", "--probe", "logistic"]
RENDER = ["results", "{run}"]
TEMPLATE = ["results", "{run}", "--template", "{run}/t.md"]

#: (id, damage, argv (``results``: the hebbian command, ``probe``: python -m hebbian.results), words of the error)
BAD = [
    # item 10: python -m hebbian.results probe
    ("probe-checkpoint-rotated-away", rotated, PROBE, ["checkpoint_40.pt", "(epoch 2) is gone", "probe again"]),
    ("probe-no-checkpoint-yet", lambda r: (remove("metrics.json")(r), remove("checkpoints")(r)), PROBE,
     ["has no checkpoints"]),
    ("probe-file-object", write(PROBES, "{}"), PROBE, ["logistic.json", "must be a JSON list"]),
    ("probe-file-numbers", write(PROBES, "[1, 2]"), PROBE, ["logistic.json", "entry 0 must be a JSON object"]),
    ("probe-file-no-epoch", write(PROBES, json.dumps([{k: v for k, v in ENTRY.items() if k != "epoch"}])), PROBE,
     ["logistic.json", "entry 0 'epoch' must be a whole number", "(missing)"]),
    ("probe-file-null", write(PROBES, "null"), PROBE, ["logistic.json", "must be a JSON list"]),
    ("probe-file-epoch-string", write(PROBES, json.dumps([{**ENTRY, "epoch": "6"}])), PROBE,
     ["logistic.json", "entry 0 'epoch'", "'6'"]),
    ("probe-epochs-abc", nothing, PROBE + ["--epochs", "abc"], ["--epochs", "'abc'"]),
    ("probe-epochs-zero", nothing, PROBE + ["--epochs", "0"], ["--epochs", "'0'", "--control"]),
    ("probe-epochs-missing", nothing, PROBE + ["--epochs", "2,9"], ["--epochs 9", "no checkpoint", "epochs 1, 2"]),
    ("probe-every-0", nothing, PROBE + ["--every", "0"], ["--every", "'0'"]),
    ("probe-every-negative", nothing, PROBE + ["--every", "-3"], ["--every", "'-3'"]),
    ("probe-unknown-probe", nothing, ["probe", "{run}", "--probe", "nosuch"], ["'nosuch'", "known probes"]),
    ("probe-unknown-parameter", nothing, PROBE + ["--set", "nosuch=1"], ["nosuch", "does not take"]),
    ("probe-bad-parameter-value", nothing, PROBE + ["--set", "l2_grid=abc"], ["l2_grid", "'abc'"]),
    ("probe-set-without-value", nothing, PROBE + ["--set", "l2_grid"], ["--set", "KEY=VALUE"]),
    ("probe-config-unknown-key", nothing, PROBE + ["--config", "nosuch.key=1"], ["--config", "'nosuch'"]),
    ("probe-config-bad-value", nothing, PROBE + ["--config", "model.width=abc"], ["--config", "model.width"]),
    ("probe-config-without-value", nothing, PROBE + ["--config", "model.width"], ["--config", "KEY=VALUE"]),
    ("probe-checkpoint-garbage", write("checkpoints/checkpoint_40.pt", b"\x00garbage"), PROBE, ["checkpoint_40.pt"]),
    ("probe-checkpoint-empty", write("checkpoints/checkpoint_40.pt", b""), PROBE, ["checkpoint_40.pt"]),
    ("probe-config-yaml-list", write("config.yaml", "[1, 2]\n"), PROBE, ["config.yaml", "must be a mapping"]),
    ("probe-config-yaml-section", write("config.yaml", "data: 3\n"), PROBE, ["config.yaml", "'data' must be"]),
    ("probe-config-yaml-unknown-key", write("config.yaml", "nosuch: 1\n"), PROBE, ["config.yaml", "'nosuch'"]),
    ("probe-comparison-folder", lambda r: as_comparison(r), PROBE, ["is a 'hebbian compare' folder", "krotov/seed0"]),
    # item 11: hebbian results
    ("comparison-run-metrics-list", lambda r: (as_comparison(r), write("krotov/seed0/metrics.json", "[]")(r)), RENDER,
     ["krotov/seed0/metrics.json", "must be a JSON object"]),
    ("metrics-list", write("metrics.json", "[]"), RENDER, ["metrics.json", "must be a JSON object"]),
    ("metrics-string", write("metrics.json", '"x"'), RENDER, ["metrics.json", "must be a JSON object"]),
    ("metrics-null", write("metrics.json", "null"), RENDER, ["metrics.json", "must be a JSON object"]),
    ("metrics-accuracy-string", write("metrics.json", '{"probe_test_accuracy": "abc"}'), RENDER,
     ["metrics.json", "'probe_test_accuracy' must be a number"]),
    ("metrics-time-string", write("metrics.json", '{"train_seconds": "x"}'), RENDER,
     ["metrics.json", "'train_seconds'"]),
    ("metrics-dead-units-list", write("metrics.json", '{"dead_units": [1]}'), RENDER, ["metrics.json", "'dead_units'"]),
    ("metrics-resumes-number", write("metrics.json", '{"resumes": 3}'), RENDER, ["metrics.json", "'resumes'"]),
    ("metrics-resumes-entry", write("metrics.json", '{"resumes": [1]}'), RENDER, ["metrics.json", "'resumes' entry 0"]),
    ("metrics-processes-string", write("metrics.json", '{"processes": "2"}'), RENDER, ["metrics.json", "'processes'"]),
    ("provenance-list", write("provenance.json", "[]"), RENDER, ["provenance.json", "must be a JSON object"]),
    ("provenance-string", write("provenance.json", '"x"'), RENDER, ["provenance.json", "must be a JSON object"]),
    ("provenance-load-string", write("provenance.json", '{"machine": {"load_average": "x"}}'), RENDER,
     ["provenance.json", "'machine.load_average'"]),
    ("provenance-resumes-string", write("provenance.json", '{"resumes": "x"}'), RENDER,
     ["provenance.json", "'resumes'"]),
    ("provenance-command-list", write("provenance.json", '{"command": ["hebbian"]}'), RENDER,
     ["provenance.json", "'command' must be a string"]),
    ("config-list", write("config.yaml", "[1, 2]\n"), RENDER, ["config.yaml", "must be a mapping"]),
    ("config-string", write("config.yaml", "hello\n"), RENDER, ["config.yaml", "must be a mapping"]),
    ("config-model-number", write("config.yaml", "model: 3\n"), RENDER, ["config.yaml", "'model' must be a mapping"]),
    ("config-params-list", write("config.yaml", "rule: {name: krotov, params: [1, 2]}\n"), RENDER,
     ["config.yaml", "'rule.params'"]),
    ("config-binary", write("config.yaml", b"\xff\xfe\x00\x01"), RENDER, ["cannot read", "config.yaml"]),
    ("probes-object", write(PROBES, "{}"), RENDER, ["logistic.json", "must be a JSON list"]),
    ("probes-numbers", write(PROBES, "[1]"), RENDER, ["logistic.json", "entry 0"]),
    ("probes-epoch-string", write(PROBES, json.dumps([{**ENTRY, "epoch": "6"}])), RENDER,
     ["logistic.json", "'epoch'"]),
    ("probes-seconds-string", write(PROBES, json.dumps([{**ENTRY, "seconds": "x"}])), RENDER,
     ["logistic.json", "entry 0 'seconds'"]),
    ("probes-overrides-string", write(PROBES, json.dumps([{**ENTRY, "overrides": "x"}])), RENDER,
     ["logistic.json", "'overrides'"]),
    ("template-missing", nothing, TEMPLATE, ["--template", "t.md", "No such file"]),
    ("template-binary", write("t.md", b"\xff\xfe\x00\x01"), TEMPLATE, ["--template", "t.md", "utf-8"]),
    ("template-folder", nothing, ["results", "{run}", "--template", "{run}/checkpoints"],
     ["--template", "checkpoints"]),
    ("out-is-a-folder", nothing, RENDER + ["--out", "{run}/checkpoints"], ["--out", "checkpoints", "folder"]),
    ("out-folder-missing", nothing, RENDER + ["--out", "{run}/no/such/x.md"], ["--out", "x.md"]),
    ("out-is-the-template", write("t.md", "<!-- runs: run -->\n"), TEMPLATE + ["--out", "{run}/t.md"],
     ["--out", "t.md", "the template itself"]),
    # item 8: includes stay inside the project or the run folders given
    ("include-etc-passwd", write("t.md", "<!-- include: /etc/passwd -->\n"), TEMPLATE,
     ["line 1", "'/etc/passwd'", "outside the project"]),
    ("include-dot-dot", write("t.md", "<!-- include: ../../../../../../../../etc/passwd -->\n"), TEMPLATE,
     ["'../../../../../../../../etc/passwd'", "outside the project"]),
    ("include-link-out",
     lambda r: (write("t.md", "<!-- include: l.md -->\n")(r), os.symlink("/etc/passwd", r / "l.md")), TEMPLATE,
     ["'l.md'", "'/etc/passwd' is outside the project"]),
    ("include-binary", lambda r: (write("t.md", "<!-- include: b.md -->\n")(r), write("b.md", b"\xff\xfe")(r)),
     TEMPLATE, ["line 1", "b.md", "utf-8"]),
]

#: Inputs that were already one-line errors before issue 22: kept in the table so that they stay so.
ALREADY = [
    ("probe-file-not-json", write(PROBES, "[{"), PROBE, ["cannot read", "logistic.json"]),
    ("probe-config-yaml-invalid", write("config.yaml", "data: [1,\n"), PROBE, ["cannot read", "config.yaml"]),
    ("probe-bad-tag", nothing, PROBE + ["--tag", "a/b"], ["tag", "'a/b'"]),
    ("probe-not-a-run", nothing, ["probe", "{run}/nope", "--probe", "logistic"], ["nope", "not a run folder"]),
    ("metrics-not-json", write("metrics.json", "{"), RENDER, ["cannot read", "metrics.json"]),
    ("metrics-binary", write("metrics.json", b"\xff\xfe\x00"), RENDER, ["cannot read", "metrics.json"]),
    ("provenance-not-json", write("provenance.json", "{,"), RENDER, ["cannot read", "provenance.json"]),
    ("config-invalid", write("config.yaml", "a: [1,\n"), RENDER, ["cannot read", "config.yaml"]),
    ("template-unknown-run", write("t.md", "<!-- runs: other -->\n"), TEMPLATE, ["line 1", "'other' was not given"]),
    ("template-curve-arguments", write("t.md", "<!-- curve: run -->\n"), TEMPLATE, ["line 1", "'curve:' takes"]),
    ("include-missing", write("t.md", "<!-- include: nope.md -->\n"), TEMPLATE, ["line 1", "nope.md", "no such file"]),
]


def call(argv: List[str], run: Path) -> int:
    argv = [a.replace("{run}", str(run)) for a in argv]
    return hebbian_main(argv) if argv[0] == "results" else results_main(argv)


@pytest.mark.parametrize("damage, argv, words", [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_bad_input_is_a_one_line_error_naming_it(run, capsys, damage, argv, words):
    assert_one_line_error(run, capsys, damage, argv, words)


@pytest.mark.parametrize("damage, argv, words", [pytest.param(*c[1:], id=c[0]) for c in ALREADY])
def test_inputs_refused_before_stay_one_line_errors(run, capsys, damage, argv, words):
    assert_one_line_error(run, capsys, damage, argv, words)


def assert_one_line_error(run: Path, capsys, damage, argv: List[str], words: List[str]) -> None:
    damage(run)
    code = call(argv, run)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(("hebbian: error: ", "hebbian.results: error: ")), lines[0]
    missing = [w for w in words if w not in lines[0]]
    assert not missing, f"{missing} not in {lines[0]!r}"


def test_a_rotated_checkpoint_keeps_the_epochs_probed_before_it(run, capsys):
    """Nothing lost: the entry of epoch 1, probed before checkpoint_40.pt vanished, is in the probe file."""
    rotated(run)
    assert call(PROBE, run) == 2
    assert [e["epoch"] for e in json.loads((run / PROBES).read_text())] == [1]
    assert "run epoch 1:" in capsys.readouterr().out


def test_documented_successes(run, capsys, tmp_path):
    """What is not an error: an include inside a run folder given (outside the template's folder), a page that
    replaces the one generated before, non-finite values rendered as what they are."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "t.md").write_text("<!-- include: ../run/table.md -->\n<!-- runs: run -->\n<!-- curve: run logistic -->\n")
    (run / "table.md").write_text("| generated |\n")
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(probe_test_accuracy=float("nan"), dead_units=float("nan"), train_seconds=float("inf"))
    (run / "metrics.json").write_text(json.dumps(metrics))  # NaN / Infinity, as json writes them
    (run / PROBES).write_text(json.dumps([{**ENTRY, "test_accuracy": float("nan"), "seconds": float("inf")}]))
    page = docs / "results.md"
    page.write_text("the page generated before\n")
    assert hebbian_main(["results", str(run), "--template", str(docs / "t.md"), "--out", str(page)]) == 0
    text = page.read_text()
    assert "| generated |" in text and "the page generated before" not in text
    assert "probe test **diverged**" in text and "| unknown | unknown |" in text  # dead units, train time
    assert "| 1 | 90.00% | 80.00% | diverged | – | unknown |" in text  # the curve's test accuracy, probe time
    assert not any(bad in text.lower() for bad in ("nan%", "inf h", "inf min", "nan min", "inf s", "nan s"))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, words", [
    pytest.param([sys.executable, "-m", "hebbian.results", "probe", "{run}", "--probe", "logistic", "--every", "0"],
                 ["hebbian.results: error:", "--every"], id="probe"),
    pytest.param(["hebbian", "results", "{run}"], ["hebbian: error:", "metrics.json"], id="results"),
])
def test_as_a_real_command(run, argv, words):
    (run / "metrics.json").write_text("[]")
    shutil.rmtree(run / "checkpoints")
    hebbian = shutil.which("hebbian")
    if argv[0] == "hebbian":
        if hebbian is None:
            pytest.skip("the hebbian console script is not installed")
        argv = [hebbian, *argv[1:]]
    done = subprocess.run([a.replace("{run}", str(run)) for a in argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr and all(w in done.stderr for w in words), done.stderr
