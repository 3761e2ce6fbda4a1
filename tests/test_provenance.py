"""provenance.json: the command as typed, the commit (and whether tracked files differed), the machine."""

from __future__ import annotations

import json
import subprocess

import pytest

from hebbian.cli.main import main as hebbian_main
from hebbian.provenance import command_line, describe_machine, git_commit, invoked_as, machine, provenance


def test_command_line_names_the_cli_and_records_thread_settings(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert command_line(["/venv/bin/hebbian", "train", "a b"]) == "OMP_NUM_THREADS=1 hebbian train 'a b'"
    assert command_line(["/repo/hebbian/cli/__main__.py", "compare"]) == "OMP_NUM_THREADS=1 hebbian compare"
    assert command_line(["script.py", "-x"]) == "OMP_NUM_THREADS=1 python script.py -x"
    with invoked_as(["hebbian", "train", "krotov_mnist"]):
        assert command_line() == "OMP_NUM_THREADS=1 hebbian train krotov_mnist"
    assert "krotov_mnist" not in command_line()


def test_git_commit_reads_the_checkout_and_sees_uncommitted_changes(tmp_path):
    assert git_commit(tmp_path) == {}  # not a checkout
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    (repo / "f.txt").write_text("a")
    subprocess.run(git + ["add", "f.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "one"], check=True)
    sha = subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert git_commit(repo) == {"commit": sha, "dirty": False}
    (repo / "untracked.txt").write_text("b")
    assert git_commit(repo)["dirty"] is False
    (repo / "f.txt").write_text("changed")
    assert git_commit(repo) == {"commit": sha, "dirty": True}


def test_machine_and_its_one_line_description():
    info = machine()
    assert info["cores"] >= 1 and info["torch_threads"] >= 1 and info["cpu"]
    line = describe_machine(info)
    assert line.startswith(f"{info['cores']}-core {info['cpu']}") and f"torch {info['torch']}" in line
    assert describe_machine("typed by hand") == "typed by hand"
    assert set(provenance()) >= {"command", "machine", "started"}


@pytest.mark.parametrize("resume", [False, True])
def test_every_run_folder_says_how_it_was_made_and_a_resume_is_added(tmp_path, resume, monkeypatch):
    from hebbian.provenance import RECORDED_ENV

    for name in RECORDED_ENV:  # the command is recorded with these; the test's own environment must not leak in
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "run"
    args = ["train", "compare_digits", "--rule", "oja", "--set", "data.train_limit=100", "--no-progress",
            "--no-tensorboard", "--probe-epochs", "0", "--out", str(out)]
    assert hebbian_main(args + ["--epochs", "1"]) == 0
    first = json.loads((out / "provenance.json").read_text())
    assert first["command"] == "hebbian " + " ".join(args + ["--epochs", "1"])
    assert first["machine"]["cores"] >= 1 and "resumes" not in first
    if resume:
        more = ["--epochs", "2", "--resume", str(out), "--allow-change", "train.epochs"]
        assert hebbian_main(args + more) == 0
        after = json.loads((out / "provenance.json").read_text())
        assert after["command"] == first["command"] and after["started"] == first["started"]
        assert [r["command"] for r in after["resumes"]] == ["hebbian " + " ".join(args + more)]
