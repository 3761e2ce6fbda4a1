"""Run folders (issue 10): one run per folder (lock, refusal, --overwrite), unique default folders, config.yaml
without ``out``, resume refusing a changed config, damaged and non-finite checkpoints, Inf never checkpointed."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from hebbian.cli import main
from hebbian.errors import UsageError
from hebbian.runs import RunFolder, check_resume_config, config_changes, find_run, new_run_dir
from hebbian.trainers.checkpoint import latest_checkpoint, load_checkpoint, non_finite_entries

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--train-limit", "200", "--test-limit", "60", "--probe-epochs", "0", "--no-progress", "--no-tensorboard",
        "--set", "data.batch_size=50", "--set", "checkpoint.every=1", "--set", "data.split=fixed",
        "--set", "probe.control=false"]


def env() -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}


def error_of(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hebbian: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A finished 2-epoch Krotov run."""
    run = tmp_path_factory.mktemp("done") / "run"
    assert main(["train", "compare_digits", "--epochs", "2", "--out", str(run), *FAST]) == 0
    return run


# ---------------------------------------------------------------------- the lock
_HOLD = "import sys, time; from hebbian.runs import RunFolder; RunFolder(sys.argv[1]).lock(); print('locked', " \
        "flush=True); time.sleep(float(sys.argv[2]))"


def test_a_live_lock_refuses_a_second_process_and_a_killed_holder_leaves_a_stale_lock(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), "60"], env=env(), stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UsageError, match=rf"in use by another hebbian run \(pid {holder.pid} on "):
            RunFolder(folder).lock()
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file stays behind
        holder.wait()
    assert (folder / ".hebbian.lock").read_text().startswith(f"pid {holder.pid} ")
    with RunFolder(folder).lock() as mine:  # stale: nobody holds it any more
        assert mine.stale.startswith(f"pid {holder.pid} ")
        assert (folder / ".hebbian.lock").read_text().startswith(f"pid {os.getpid()} ")
    assert not (folder / ".hebbian.lock").exists()  # released and deleted on exit


def test_two_cli_runs_into_one_folder_at_once(tmp_path, capsys):
    """The second run is refused at once; the first one's config, metrics and checkpoints stay its own."""
    run, release = tmp_path / "run", tmp_path / "release"
    killer = ROOT / "tests" / "cli" / "killer.py"  # runs `hebbian train`, paused at its first step until released
    first = subprocess.Popen([sys.executable, str(killer), "hold", "120", "--", "train", "compare_digits", "--rule",
                              "krotov", "--epochs", "3", "--out", str(run), *FAST],
                             env={**env(), "HEBBIAN_TEST_RELEASE": str(release)}, cwd=str(ROOT),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "config.yaml").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        err = error_of(capsys, ["train", "compare_digits", "--rule", "softhebb", "--out", str(run), *FAST])
        assert "is in use by another hebbian run (pid" in err
        err = error_of(capsys, ["train", "compare_digits", "--rule", "softhebb", "--out", str(run), "--overwrite",
                                *FAST])
        assert "is in use by another hebbian run" in err  # not even --overwrite takes a live run's folder
    finally:
        release.write_text("")
        assert first.wait(timeout=300) == 0, first.stderr.read()
    assert yaml.safe_load((run / "config.yaml").read_text())["rule"]["name"] == "krotov"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["rule"] == "krotov" and metrics["epochs"] == 3
    assert not (run / ".hebbian.lock").exists()


# ---------------------------------------------------------------------- whose run a folder holds
def test_a_folder_holding_a_run_is_refused_unless_overwrite(done, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "compare_digits", "--epochs", "2", "--out", str(run), *FAST]) == 0
    old_checkpoint = latest_checkpoint(run / "checkpoints")
    err = error_of(capsys, ["train", "compare_digits", "--epochs", "1", "--out", str(run), *FAST])
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert latest_checkpoint(run / "checkpoints") == old_checkpoint  # untouched
    (run / "notes.txt").write_text("mine")
    assert main(["train", "compare_digits", "--rule", "oja", "--epochs", "1", "--out", str(run), "--overwrite",
                 *FAST]) == 0
    # the old run's (higher-numbered) checkpoint is gone: evaluate and --resume can only find the new run's
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["checkpoint_4.pt"]
    assert find_run(run)[1].name == "checkpoint_4.pt"
    assert json.loads((run / "metrics.json").read_text())["rule"] == "oja"
    assert (run / "notes.txt").read_text() == "mine"  # only the run's own files are replaced


def test_default_folders_never_collide_and_config_yaml_pins_no_folder(done, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folders = {new_run_dir(Path("runs") / "x") for _ in range(5)}  # all in the same second
    assert len(folders) == 5 and all(f.is_dir() for f in folders)
    saved = yaml.safe_load((done / "config.yaml").read_text())
    assert saved["out"] is None and saved["recipes"] == {}
    # the README's way to repeat a run starts a new one in a new folder, never in the old one
    before = sorted(p.name for p in (done / "checkpoints").iterdir())
    assert main(["train", str(done / "config.yaml"), "--epochs", "1", "--probe-epochs", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "run folder: runs/compare_digits-" in out
    assert sorted(p.name for p in (done / "checkpoints").iterdir()) == before


# ---------------------------------------------------------------------- resume refuses what it would not use
def test_resume_refuses_a_changed_config_naming_the_keys(done, capsys):
    err = error_of(capsys, ["train", "--resume", str(done), "--set", "rule.params.k=3", "--lr", "0.5"])
    assert "rule.params.k (7 -> 3)" in err and "train.lr (0.2 -> 0.5)" in err and "start a new run" in err
    err = error_of(capsys, ["train", "compare_digits", "--rule", "oja", "--resume", str(done)])  # once a TypeError
    assert "rule.name ('krotov' -> 'oja')" in err
    err = error_of(capsys, ["train", "--resume", str(done), "--set", "rule.params.k=3", "--allow-change",
                            "rule.params.k"])
    assert "--allow-change rule.params.k: this key cannot change" in err
    err = error_of(capsys, ["train", "--resume", str(done)])
    assert "is finished (2 of 2 epochs" in err and "--allow-change train.epochs" in err
    assert json.loads((done / "metrics.json").read_text())["epochs"] == 2  # refusals change nothing


def test_config_changes_and_what_may_change(done):
    from hebbian.config import resolve_config

    saved = resolve_config(done / "config.yaml")
    new = resolve_config(done / "config.yaml", ["train.epochs=5", "log.every=3", "recipes.oja.train.lr=1",
                                                "out=elsewhere"])
    assert config_changes(saved, new) == {"log.every": (10, 3), "train.epochs": (2, 5)}
    with pytest.raises(UsageError, match=r"--allow-change train\.epochs"):
        check_resume_config(done, new)
    assert set(check_resume_config(done, new, ["train.epochs"])) == {"log.every", "train.epochs"}


def test_more_epochs_stretch_the_linear_schedule_and_are_recorded(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "compare_digits", "--epochs", "2", "--out", str(run), *FAST,
                 "--set", "checkpoint.n_saved=5"]) == 0
    end_of_2 = load_checkpoint(run / "checkpoints" / "checkpoint_8.pt")
    assert end_of_2["optimizer"]["param_groups"][0]["lr"] == 0.0  # lr0 (1 - 2/2): the finished schedule
    assert main(["train", "--resume", str(run), "--epochs", "4", "--allow-change", "train.epochs"]) == 0
    lr0 = 0.2
    for epoch, name in ((3, "checkpoint_12.pt"), (4, "checkpoint_16.pt")):
        ckpt = load_checkpoint(run / "checkpoints" / name)
        assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(lr0 * (1 - epoch / 4), abs=1e-12)
    third = load_checkpoint(run / "checkpoints" / "checkpoint_12.pt")
    # epoch 3 trained at lr0 (1 - 2/4) = 0.1, not at the old schedule's 0
    assert (third["model"]["linear1.weight"] - end_of_2["model"]["linear1.weight"]).abs().max() > 1e-3
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 4 and metrics["resumes"][0]["changed"] == {"train.epochs": [2, 4]}
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 4


# ---------------------------------------------------------------------- checkpoints that must not be used
class _Payload:
    def __reduce__(self):
        return os.system, ("true",)


@pytest.mark.parametrize("damage", ["truncated", "empty", "pickled code"])
def test_damaged_checkpoints_give_one_line_errors(done, tmp_path, capsys, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(done, run)
    ckpt = latest_checkpoint(run / "checkpoints")
    data = ckpt.read_bytes()
    if damage == "truncated":
        ckpt.write_bytes(data[: len(data) // 3])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    else:
        torch.save({"model": _Payload()}, ckpt)
    for argv in (["train", "--resume", str(run), "--epochs", "3", "--allow-change", "train.epochs"],
                 ["evaluate", str(run)], ["visualize", str(run), "-o", str(tmp_path / "f.png")]):
        err = error_of(capsys, argv)
        assert "not a valid checkpoint (truncated or not written by hebbian)" in err, err
        assert "weights_only" not in err
    assert not (run / "evaluation.json").exists()


def test_non_finite_checkpoints_are_refused_by_evaluate_and_resume(done, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(done, run)
    ckpt = latest_checkpoint(run / "checkpoints")
    state = load_checkpoint(ckpt)
    state["model"]["linear1.weight"][0, 0] = float("nan")
    torch.save(state, ckpt)
    err = error_of(capsys, ["evaluate", str(run)])
    assert "non-finite (NaN/Inf) values in model.linear1.weight" in err
    err = error_of(capsys, ["train", "--resume", str(run), "--epochs", "3", "--allow-change", "train.epochs"])
    assert "non-finite (NaN/Inf) values in model.linear1.weight" in err


def test_inf_weights_are_never_checkpointed(tmp_path, capsys):
    """The issue's case: plain Hebb at lr 1e4 takes finite updates into Inf weights within a few iterations."""
    run = tmp_path / "run"
    assert main(["train", "compare_digits", "--rule", "hebb", "--lr", "1e4", "--epochs", "20", "--out", str(run),
                 *FAST, "--set", "checkpoint.every=1", "--set", "train.diverge_above=null"]) == 1  # diverged
    metrics = json.loads((run / "metrics.json").read_text())
    assert "non-finite (NaN/Inf) weights after the optimizer step" in metrics["diverged"]
    assert "layer 'linear1'" in metrics["diverged"]
    assert "DIVERGED" in capsys.readouterr().out
    for path in (run / "checkpoints").glob("*.pt"):
        assert non_finite_entries(load_checkpoint(path)) == [], path
    if "probe_test_accuracy" in metrics:  # evaluated on the last finite checkpoint, if there was one
        assert metrics["evaluated_weights"].startswith("checkpoint_")
    err = error_of(capsys, ["train", "--resume", str(run), "--epochs", "30", "--allow-change", "train.epochs"])
    assert "diverged" in err
