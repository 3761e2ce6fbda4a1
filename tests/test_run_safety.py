"""Issue 22: nothing of a user's lost, nothing silently changed. Writes never follow links; --overwrite deletes only
what hebbian wrote, and only in a hebbian run folder; a checkpoint resumes only its own run with its own config; each
segment's process count is recorded; run names are names; bad lock and checkpoint paths are one-line errors; a
diverging method is marked diverged and the comparison goes on."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
import yaml

from hebbian.cli import main
from hebbian.files import atomic_path, write_atomic
from hebbian.runs import RunFolder
from hebbian.runs.folder import MARKER_FILE
from hebbian.trainers.checkpoint import latest_checkpoint, load_checkpoint

FAST = ["--train-limit", "200", "--test-limit", "60", "--probe-epochs", "0", "--no-progress", "--no-tensorboard",
        "--set", "data.batch_size=50", "--set", "checkpoint.every=1", "--set", "data.split=fixed",
        "--set", "probe.control=false"]


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hebbian: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def train(out: Path, *extra: str, epochs: int = 2) -> int:
    """A small Krotov run; every epoch's checkpoint is kept (4 iterations an epoch)."""
    return main(["train", "compare_digits", "--epochs", str(epochs), "--out", str(out), *FAST,
                 "--set", "checkpoint.n_saved=5", *extra])


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the run folder that a planted link points at."""
    path = tmp_path / "precious.txt"
    path.write_text("the user's data\n")
    return path


# ---------------------------------------------------------------------- 1. writes never follow links
def test_write_atomic_replaces_a_link_instead_of_writing_through_it(tmp_path, victim):
    link = tmp_path / "metrics.json"
    link.symlink_to(victim)
    write_atomic(link, "{}\n")
    assert victim.read_text() == "the user's data\n"
    assert not link.is_symlink() and link.read_text() == "{}\n"
    write_atomic(tmp_path / "blob.bin", b"\x00\x01")
    assert (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"


def test_atomic_path_leaves_nothing_behind_on_error_and_refuses_a_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.png") as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        with atomic_path(tmp_path / "d"):
            pass


@pytest.mark.parametrize("name", ["filters.png", "evaluation.json", "metrics.json", "config.yaml", "provenance.json"])
def test_links_planted_in_a_run_folder_are_replaced_never_written_through(tmp_path, victim, capsys, name):
    run = tmp_path / "run"
    assert train(run) == 0
    (run / name).unlink(missing_ok=True)
    (run / name).symlink_to(victim)
    if name == "evaluation.json":
        assert main(["evaluate", str(run), "--probe-epochs", "0"]) == 0
    elif name == "filters.png":
        assert main(["visualize", str(run)]) == 0
    else:  # a resume for more epochs rewrites config, provenance and metrics
        if name == "metrics.json":
            (run / name).unlink()  # a killed run: no metrics yet
            (run / name).symlink_to(victim)
        assert main(["train", "--resume", str(run), "--epochs", "3", "--allow-change", "train.epochs"]) in (0, 2)
    assert victim.read_text() == "the user's data\n"


@pytest.mark.parametrize("kind", ["symlink", "folder", "fifo"])
def test_a_lock_path_that_is_not_a_file_is_a_one_line_error(tmp_path, victim, capsys, kind):
    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".hebbian.lock"
    if kind == "symlink":
        lock.symlink_to(victim)
    elif kind == "folder":
        lock.mkdir()
    else:
        os.mkfifo(lock)
    err = one_line_error(capsys, ["train", "compare_digits", "--epochs", "1", "--out", str(run), *FAST])
    assert "the lock file" in err and ".hebbian.lock" in err
    assert victim.read_text() == "the user's data\n"


def test_a_checkpoints_path_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("not a folder")
    err = one_line_error(capsys, ["train", "compare_digits", "--epochs", "1", "--out", str(run), *FAST])
    assert "checkpoints" in err and "is a file" in err
    assert (run / "checkpoints").read_text() == "not a folder"


# ---------------------------------------------------------------------- 2. --overwrite
def test_overwrite_refuses_a_folder_that_is_not_a_hebbian_run_and_deletes_nothing(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "checkpoints").mkdir(parents=True)
    (out / "tb").mkdir()
    files = {out / "config.yaml": "base: compare_digits\n", out / "checkpoints" / "model_final.bin": "weights",
             out / "tb" / "notes.txt": "notes", out / "metrics.json": "{}"}
    for path, text in files.items():
        path.write_text(text)
    err = one_line_error(capsys, ["train", str(out / "config.yaml"), "--epochs", "1", "--out", str(out),
                                  "--overwrite", *FAST])
    assert "no hebbian run" in err and "nothing was deleted" in err
    assert all(path.read_text() == text for path, text in files.items())


def test_overwrite_of_a_hebbian_run_deletes_only_what_hebbian_wrote(tmp_path):
    run = tmp_path / "run"
    assert train(run) == 0
    assert (run / MARKER_FILE).is_file()
    (run / "tb").mkdir()
    (run / "tb" / "events.out.tfevents.1.host").write_text("hebbian's")
    mine = [run / "notes.md", run / "checkpoints" / "model_final.bin", run / "tb" / "my_plot.png"]
    for path in mine:
        path.write_text("mine")
    old_id = json.loads((run / MARKER_FILE).read_text())["run_id"]
    assert train(run, "--overwrite", epochs=1) == 0
    assert all(path.read_text() == "mine" for path in mine)
    assert json.loads((run / MARKER_FILE).read_text())["run_id"] != old_id
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1
    assert [p.name for p in (run / "checkpoints").glob("*.pt")] == ["checkpoint_4.pt"]
    assert not (run / "tb" / "events.out.tfevents.1.host").exists()


# ---------------------------------------------------------------------- 4. identity and config of a checkpoint
def _killed_copy(run: Path) -> None:
    """Make a finished run look killed before its end (no metrics.json)."""
    (run / "metrics.json").unlink()


def test_a_checkpoint_from_another_run_is_refused(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train(a, "--seed", "0") == 0 and train(b, "--seed", "7") == 0
    _killed_copy(a)
    for old in (a / "checkpoints").glob("*.pt"):
        old.unlink()
    foreign = latest_checkpoint(b / "checkpoints")
    (a / "checkpoints" / foreign.name).write_bytes(foreign.read_bytes())
    err = one_line_error(capsys, ["train", "--resume", str(a), "--epochs", "3", "--allow-change", "train.epochs"])
    assert "belongs to run" in err and "not to the run in" in err and "seed (7 -> 0)" in err


def test_a_config_edited_in_place_is_refused_naming_the_keys(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, epochs=3) == 0
    _killed_copy(run)
    (run / "checkpoints" / "checkpoint_12.pt").unlink()  # killed in epoch 3
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["train"]["lr"] = 0.5
    cfg["log"]["every"] = 7  # free keys may differ
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    err = one_line_error(capsys, ["train", "--resume", str(run)])
    assert "was edited after" in err and "train.lr (0.2 -> 0.5)" in err and "log.every" not in err
    cfg["train"]["lr"] = 0.2
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))  # restored (free key still edited): accepted
    assert main(["train", "--resume", str(run)]) == 0


def test_a_resume_records_every_segments_process_count_and_the_run_keeps_its_identity(tmp_path):
    run = tmp_path / "run"
    assert train(run, epochs=3) == 0
    run_id = json.loads((run / MARKER_FILE).read_text())["run_id"]
    _killed_copy(run)
    (run / "checkpoints" / "checkpoint_12.pt").unlink()
    assert main(["train", "--resume", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 1 and metrics["run_id"] == run_id
    assert [s["processes"] for s in metrics["segments"]] == [1, 1]
    assert [s["epoch"] for s in metrics["segments"]] == [0, 2]
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["processes"] == 1 and provenance["resumes"][-1]["processes"] == 1
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert state["run"]["run_id"] == run_id and yaml.safe_load(state["run"]["config"])["train"]["epochs"] == 3


def test_a_fork_gets_its_own_identity_and_names_its_source(tmp_path):
    run, fork = tmp_path / "run", tmp_path / "fork"
    assert train(run, epochs=2) == 0
    source = json.loads((run / MARKER_FILE).read_text())["run_id"]
    assert main(["train", "--resume", str(run), "--out", str(fork), "--epochs", "3",
                 "--allow-change", "train.epochs"]) == 0
    metrics = json.loads((fork / "metrics.json").read_text())
    assert metrics["run_id"] != source and metrics["resumes"][-1]["forked_from"] == source


def test_resume_with_malformed_metrics_json_is_not_a_traceback(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, epochs=2) == 0
    for text in ("[]", "null"):
        (run / "metrics.json").write_text(text)
        err = one_line_error(capsys, ["train", "--resume", str(run)])
        assert "finished" in err


def test_a_foreign_hosts_stale_lock_is_taken_over_and_recorded(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".hebbian.lock").write_text("pid 4242 on some-other-host since 2026-01-01T00:00:00")
    assert train(run, epochs=1) == 0
    taken = json.loads((run / "provenance.json").read_text())["lock_taken_over"]
    assert taken == {"holder": "pid 4242 on some-other-host since 2026-01-01T00:00:00", "other_host": True}
    assert "took over the stale lock" in capsys.readouterr().err


# ---------------------------------------------------------------------- 8. names are names
@pytest.mark.parametrize("name", ["../../..", "a/b", "..", ".hidden", ""])
def test_a_run_name_that_is_a_path_is_refused(tmp_path, capsys, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, ["train", "compare_digits", "--epochs", "1", "--set", f"name={name}", *FAST])
    assert "config key 'name'" in err and "plain name" in err
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------- 3. a diverging method in a comparison
def test_a_comparison_finishes_when_a_method_explodes_and_marks_it_diverged(tmp_path, capsys):
    config = tmp_path / "cmp.yaml"
    config.write_text("base: compare_digits\nrecipes:\n  hebb: {train: {lr: 0.3, init: unit, schedule: constant}}\n")
    out = tmp_path / "cmp"
    argv = ["compare", str(config), "--rules", "hebb,oja,random", "--seeds", "1", "--epochs", "3", "--out", str(out),
            "--train-limit", "300", "--test-limit", "100", "--no-progress",
            "--set", "log.filters_every=1", "--set", "data.split=fixed"]
    assert main(argv) == 0
    metrics = json.loads((out / "hebb" / "seed0" / "metrics.json").read_text())
    assert "exploding weights" in metrics["diverged"] and "layer 'linear1'" in metrics["diverged"]
    rows = {r["rule"]: r for r in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {"hebb", "oja", "random"}
    assert rows["hebb"]["diverged"] and not rows["oja"]["diverged"]
    assert "hebb (diverged in 1 of 1)" in (out / "results.md").read_text()
    assert json.loads((out / "oja" / "seed0" / "metrics.json").read_text()).get("diverged") is None


def test_histogram_handlers_tolerate_extreme_finite_weights(tmp_path):
    from ignite.engine import Engine, Events
    from ignite.handlers import TensorboardLogger

    from hebbian.visualizers.handlers import UnitConvergenceHandler

    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.fill_(3e32)
    engine = Engine(lambda e, b: None)
    logger = TensorboardLogger(log_dir=str(tmp_path))
    logger.attach(engine, UnitConvergenceHandler(layer), Events.EPOCH_COMPLETED)
    engine.run([0], max_epochs=1)  # Σ w² overflows float32 to Inf: the histogram must not be refused as empty
    logger.close()


# ---------------------------------------------------------------------- a comparison's own folder
def test_a_comparison_never_writes_into_a_folder_of_someone_elses_files(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.yaml").write_text("my own config\n")
    err = one_line_error(capsys, ["compare", "--rules", "krotov", "--seeds", "1", "--out", str(out), *FAST])
    assert "not a hebbian comparison" in err and "config.yaml" in err
    assert (out / "config.yaml").read_text() == "my own config\n" and sorted(p.name for p in out.iterdir()) == \
        ["config.yaml"]


def test_a_comparison_refused_for_its_data_leaves_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["compare", "--rules", "krotov", "--seeds", "1", "--dataset", "mnist",
                            "--data-root", str(tmp_path / "nothing"), *FAST])
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
