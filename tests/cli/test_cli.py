"""The ``hebbian`` command end to end on the bundled digits: train, evaluate, visualize, compare, list, config."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from hebbian.cli import main
from hebbian.config import resolve_config

#: Small and fast: 1 epoch on 300 digits, a 3-epoch probe, no progress bar.
FAST = ["--epochs", "1", "--train-limit", "300", "--test-limit", "120", "--no-progress", "--set", "log.every=2",
        "--set", "compare.seeds=1", "--set", "data.split=fixed"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 20 and image.shape[1] > 20
    assert image[..., :3].std() > 0.01  # not a blank canvas


def event_files(folder: Path) -> list:
    return sorted(folder.rglob("events.out.tfevents.*"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One Krotov run on digits, shared by the tests that read a run folder."""
    run = tmp_path_factory.mktemp("train") / "run"
    code = main(["train", "compare_digits", "--rule", "krotov", "--out", str(run), "--set", "rule.params.k=5",
                 "--lr", "0.1", *FAST])
    assert code == 0
    return run


def test_train_writes_config_metrics_checkpoint_tensorboard_and_filters(trained: Path, capsys):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert metrics["rule"] == "krotov" and metrics["dataset"] == "digits" and metrics["epochs"] == 1
    assert metrics["train_images"] == 300 and metrics["test_images"] == 120
    assert 0.3 < metrics["probe_test_accuracy"] <= 1.0  # well above chance (0.1) on digits
    assert "test_accuracy" not in metrics  # an unsupervised rule does not train the readout
    assert len(list((trained / "checkpoints").glob("*.pt"))) == 1
    tags = set()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for f in event_files(trained / "tb"):
        acc = EventAccumulator(str(f), size_guidance={"images": 0, "scalars": 0}).Reload()
        tags |= set(acc.Tags()["scalars"]) | set(acc.Tags()["images"])
    assert any("filters" in t for t in tags) and "final/probe_test_accuracy" in tags
    assert_png(trained / "filters.png")


def test_saved_config_round_trips_and_keeps_the_overrides(trained: Path):
    saved = yaml.safe_load((trained / "config.yaml").read_text())
    assert saved["rule"] == {"name": "krotov", "params": {"p": 3.0, "k": 5, "delta": 0.4}, "layers": {}}
    assert saved["train"]["epochs"] == 1 and saved["data"]["train_limit"] == 300
    assert resolve_config(trained / "config.yaml") == saved


def test_evaluate_reproduces_the_probe_accuracy_from_the_checkpoint(trained: Path, capsys):
    assert main(["evaluate", str(trained)]) == 0
    out = capsys.readouterr().out
    evaluation = json.loads((trained / "evaluation.json").read_text())
    metrics = json.loads((trained / "metrics.json").read_text())
    # same weights (restored from the checkpoint), same probe seed -> the same accuracy as at the end of training
    assert evaluation["probe_test_accuracy"] == pytest.approx(metrics["probe_test_accuracy"], abs=1e-9)
    assert "probe test accuracy" in out


def test_load_run_restores_the_trained_weights_not_a_fresh_model(trained: Path):
    import torch

    from hebbian.experiment import Experiment
    from hebbian.runs import load_run
    from hebbian.trainers.checkpoint import load_checkpoint

    exp, run_dir, ckpt = load_run(trained)
    assert run_dir == trained and ckpt.parent == trained / "checkpoints"
    saved = load_checkpoint(ckpt)["model"]["linear1.weight"]
    fresh = Experiment(exp.cfg).first_layer_weight()
    assert torch.equal(exp.first_layer_weight(), saved)
    assert (saved - fresh).abs().max() > 0.05  # training moved the weights away from the seeded initialisation


def test_visualize_writes_a_png_of_the_filters(trained: Path, tmp_path: Path, capsys):
    out = tmp_path / "figs" / "filters.png"
    for target in (trained, trained / "checkpoints", next((trained / "checkpoints").glob("*.pt"))):
        out.unlink(missing_ok=True)
        assert main(["visualize", str(target), "-o", str(out), "--max-filters", "16"]) == 0
        assert_png(out)
    assert "linear1" in capsys.readouterr().out


def test_compare_runs_every_method_and_seed_against_its_untrained_control(tmp_path: Path, capsys):
    out = tmp_path / "cmp"
    methods = ["oja", "krotov", "backprop", "random"]
    assert main(["compare", "--rules", ",".join(methods), "--out", str(out), *FAST, "--seeds", "2",
                 "--set", "recipes.backprop.train.lr=0.1"]) == 0
    printed = capsys.readouterr().out
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["rule"], r["seed"]) for r in rows] == [(m, s) for s in ("0", "1") for m in methods]
    by = {(r["rule"], r["seed"]): r for r in rows}
    assert all(0.0 <= float(r["probe_test_accuracy"]) <= 1.0 for r in rows)
    assert by["backprop", "0"]["test_accuracy"] and not by["oja", "0"]["test_accuracy"]
    for seed in ("0", "1"):
        # the control is the same model with the same initial weights, untrained: oja and random both start from
        # the seed's unit-norm draw, so oja's control is exactly the random baseline
        assert by["oja", seed]["control_probe_test_accuracy"] == by["random", seed]["probe_test_accuracy"]
        gain = float(by["krotov", seed]["probe_test_accuracy"]) - float(by["krotov", seed]["control_probe_test_accuracy"])
        assert float(by["krotov", seed]["probe_gain"]) == pytest.approx(gain)
        assert float(by["krotov", seed]["weight_change"]) > 0.01 and not by["random", seed]["control_probe_test_accuracy"]
    md = (out / "results.md").read_text()
    assert md.startswith("| method |") and md in printed and "control (%)" in md and "gain (points)" in md
    assert md.count(" ± ") >= 4 * len(methods)  # mean ± std over the two seeds
    assert_png(out / "comparison.png")
    for m in methods:
        for seed in (0, 1):
            run = out / m / f"seed{seed}"
            assert (run / "metrics.json").is_file() and yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed
            assert event_files(run / "tb"), run


def test_compare_lists_every_run_in_tensorboards_hparams_dashboard(tmp_path: Path):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = tmp_path / "cmp"
    assert main(["compare", "--rules", "krotov,softhebb", "--out", str(out), *FAST, "--seeds", "2"]) == 0
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(out))
    mux.Reload()
    listed = {}
    for run, content in mux.PluginRunToTagToContent("hparams").items():
        for data in content.values():
            info = plugin_data_pb2.HParamsPluginData.FromString(data)
            if info.HasField("session_start_info"):
                hp = info.session_start_info.hparams
                listed[run] = (hp["method"].string_value, hp["seed"].number_value)
    assert sorted(listed.values()) == [("krotov", 0.0), ("krotov", 1.0), ("softhebb", 0.0), ("softhebb", 1.0)]
    run = next(r for r, v in listed.items() if v == ("krotov", 0.0))
    assert "final/probe_test_accuracy" in mux.Runs()[run]["scalars"]
    assert "control_probe/selection/text_summary" in mux.Runs()[run]["tensors"]  # the probe's choice, as a table


def test_train_rule_reproduces_the_compare_row_of_that_rule(tmp_path: Path, capsys):
    compare_out, train_out = tmp_path / "cmp", tmp_path / "train"
    assert main(["compare", "--rules", "softhebb", "--out", str(compare_out), *FAST, "--no-tensorboard"]) == 0
    assert "tensorboard" not in capsys.readouterr().out  # no logs written: none offered (issue 20 item 7)
    assert main(["train", "compare_digits", "--rule", "softhebb", "--out", str(train_out), *FAST,
                 "--no-tensorboard"]) == 0
    row = json.loads((compare_out / "softhebb" / "seed0" / "metrics.json").read_text())
    alone = json.loads((train_out / "metrics.json").read_text())
    for key in ("probe_test_accuracy", "control_probe_test_accuracy", "weight_change", "dead_units"):
        assert alone[key] == row[key], key
    assert yaml.safe_load((train_out / "config.yaml").read_text())["train"] == \
        yaml.safe_load((compare_out / "softhebb" / "seed0" / "config.yaml").read_text())["train"]


def test_compare_reports_a_diverging_rule_instead_of_crashing(tmp_path: Path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--rules", "hebb", "--out", str(out), *FAST, "--set", "recipes.hebb.train.lr=1e12",
                 "--no-tensorboard"])
    assert code == 0
    row = next(csv.DictReader((out / "results.csv").open()))
    assert "non-finite" in row["diverged"]
    assert "diverged" in json.loads((out / "hebb" / "seed0" / "metrics.json").read_text())
    assert "(diverged in 1 of 1)" in (out / "results.md").read_text()
    # `train` still evaluates and writes everything, but says so with exit code 1
    assert main(["train", "compare_digits", "--rule", "hebb", "--lr", "1e12", "--out", str(tmp_path / "t"), *FAST,
                 "--no-tensorboard"]) == 1
    assert "DIVERGED" in capsys.readouterr().out and (tmp_path / "t" / "metrics.json").is_file()


def test_resume_continues_a_finished_run_for_more_epochs_in_a_new_folder(tmp_path: Path, capsys):
    from hebbian.trainers.checkpoint import latest_checkpoint, load_checkpoint

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["train", "compare_digits", "--out", str(first), *FAST, "--no-tensorboard"]) == 0
    start = load_checkpoint(latest_checkpoint(first / "checkpoints"))
    per_epoch = start["trainer"]["epoch_length"]
    assert start["trainer"]["iteration"] == per_epoch  # one epoch done
    common = ["--out", str(second), "--no-progress", "--no-tensorboard", "--set", "log.every=5"]
    assert main(["train", str(first / "config.yaml"), "--resume", str(first), *common]) == 2  # finished already
    assert "--allow-change train.epochs" in capsys.readouterr().err
    assert main(["train", str(first / "config.yaml"), "--epochs", "3", "--resume", str(first), *common]) == 2
    assert "train.epochs (1 -> 3)" in capsys.readouterr().err  # not without being asked
    assert main(["train", str(first / "config.yaml"), "--epochs", "3", "--resume", str(first), *common,
                 "--allow-change", "train.epochs"]) == 0
    end = load_checkpoint(latest_checkpoint(second / "checkpoints"))
    assert (end["trainer"]["max_epochs"], end["trainer"]["iteration"]) == (3, 3 * per_epoch)
    assert end["lr_scheduler"]["last_epoch"] == 3  # the linear annealing went on from where it was
    assert not torch.equal(end["model"]["linear1.weight"], start["model"]["linear1.weight"])
    metrics = json.loads((second / "metrics.json").read_text())
    assert metrics["epochs"] == 3
    assert metrics["resumes"][0]["changed"]["train.epochs"] == [1, 3]
    assert metrics["resumes"][0]["changed"]["log.every"] == [2, 5]  # recorded, allowed without asking
    assert json.loads((first / "metrics.json").read_text())["epochs"] == 1  # the forked-from run is untouched


def test_list_and_config(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("krotov", "softhebb", "ghl", "backprop", "deephebb", "fashion-mnist", "compare_digits"):
        assert word in out
    assert main(["config", "compare_digits", "--epochs", "7", "--set", "rule.params.k=3"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["train"]["epochs"] == 7 and cfg["rule"]["params"] == {"p": 3.0, "k": 3, "delta": 0.4}
    # another rule does not inherit krotov's hyperparameters, but --set still applies
    assert main(["config", "compare_digits", "--rule", "softhebb", "--set", "rule.params.t_inv=2"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["rule"] == {"name": "softhebb", "params": {"t_inv": 2},
                                                              "layers": {}}


# ---------------------------------------------------------------------- errors: exit code 2, one line, no traceback
def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("argv,fragments", [
    (["train", "compare_digits", "--rule", "kortov"], ["--rule", "krotov", "softhebb", "did you mean 'krotov'"]),
    (["train", "compare_digits", "--rule", "ojaa"], ["unknown rule 'ojaa' in --rule", "did you mean 'oja'"]),
    (["compare", "--rules", "oja,nope"], ["unknown rule 'nope'", "known rules", "sanger"]),
    (["train", "compare_digits", "--set", "train.epohcs=3"], ["train.epohcs", "did you mean 'epochs'"]),
    (["train", "compare_digits", "--epochs", "-2"], ["train.epochs", ">= 1"]),
    (["train", "compare_digits", "--set", "train.schedule=step"], ["train.schedule", "constant, linear, cosine"]),
    (["train", "compare_digits", "--set", "rule.params.bogus=1"], ["rule.params", "bogus", "p, k, delta"]),
    (["train", "compare_digits", "--set", "rule.params.k=0"], ["rule.params", "k"]),
    (["train", "compare_digits", "--set", "model.options.bogus=1"], ["model.options", "bogus"]),
    (["train", "compare_digits", "--set", "rule.layers.conv9.lr=1"], ["rule.layers.conv9", "linear1"]),
    (["train", "compare_digits", "--rule", "backprop", "--set", "train.optimizer=local"], ["train.optimizer", "--set train.optimizer=sgd"]),
    (["train", "no_such_config"], ["neither a file nor a packaged config", "compare_digits"]),
    (["evaluate", "/no/such/run"], ["does not exist"]),
    # issue 10: once tracebacks or silently accepted
    (["train", "compare_digits", "--width", "1e-4"], ["rule.params", "linear1", "at least k competing units, got 1"]),
    (["train", "compare_digits", "--set", "rule.params.k=101"], ["rule.params", "k=101", "at least k competing units"]),
    (["train", "compare_digits", "--width", "1e6"], ["model.width", "GiB", "this machine has"]),
    (["train", "compare_digits", "--device", "cuda:abc"], ["device", "'cuda:N'", "cuda:abc"]),
    (["train", "compare_digits", "--lr", "0"], ["train.lr", "> 0"]),
    (["train", "compare_digits", "--epochs", "0"], ["train.epochs", ">= 1"]),
    (["train", "compare_digits", "--nproc", "0"], ["--nproc", "positive integer"]),
    (["compare", "--rules", ","], ["--rules", "expected comma-separated methods"]),
    (["train"], ["give a config", "--resume RUN"]),
    (["train", "compare_digits", "--allow-change", "train.epochs"], ["--allow-change only applies with --resume"]),
])
def test_bad_input_gives_exit_code_2_and_names_the_problem(capsys, tmp_path, argv, fragments):
    err = _error(capsys, argv + ["--out", str(tmp_path / "o")] if argv[0] in ("train", "compare") else argv)
    assert err.startswith("hebbian: error: ") and err.count("\n") == 1
    assert "recipes." not in err  # a key the user never typed
    for fragment in fragments:
        assert fragment in err


@pytest.mark.parametrize("content,fragments", [
    (b"name: \xff\xfe run\n", ["not a UTF-8 text file"]),
    (b"train: 5\n", ["config key 'train'", "is a section", "got 5"]),  # with --epochs 1 the section was dropped
    (b"data: 0\n", ["config key 'data'", "is a section", "got 0"]),
])
def test_bad_config_files_give_one_line_errors(capsys, tmp_path, content, fragments):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    err = _error(capsys, ["train", str(path), "--epochs", "1", "--out", str(tmp_path / "o")])
    assert err.startswith("hebbian: error: ") and err.count("\n") == 1
    for fragment in fragments:
        assert fragment in err
    assert not (tmp_path / "o").exists()


def test_missing_dataset_says_how_to_get_it(capsys, tmp_path):
    err = _error(capsys, ["train", "compare_digits", "--dataset", "mnist", "--data-root", str(tmp_path / "nothing"),
                          "--out", str(tmp_path / "o")])
    assert "--data-root" in err and "HEBBIAN_DATA_ROOT" in err and "--download" in err


def test_unwritable_output_folder(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    err = _error(capsys, ["train", "compare_digits", "--out", str(blocker / "run"), *FAST])
    assert "cannot write to the output folder" in err and str(blocker / "run") in err


def test_argparse_usage_errors_also_exit_2(capsys):
    assert main(["train"]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["--version"]) == 0


# ---------------------------------------------------------------------- the installed console script
def _console_script() -> list:
    exe = shutil.which("hebbian")
    return [exe] if exe else [sys.executable, "-m", "hebbian.cli"]


def test_console_script_trains_and_reports_errors(tmp_path: Path):
    root = str(Path(__file__).resolve().parents[2])  # this checkout's hebbian, also under an editable install
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get(
        "PYTHONPATH")]))}
    out = tmp_path / "run"
    done = subprocess.run(_console_script() + ["train", "compare_digits", "--out", str(out), *FAST],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = done.stdout.splitlines()[0]
    assert summary.startswith("krotov on digits (krotov_fc, 1 epochs) | probe test ")
    assert json.loads((out / "metrics.json").read_text())["rule"] == "krotov" and event_files(out / "tb")
    bad = subprocess.run(_console_script() + ["train", "compare_digits", "--set", "train.lr=fast"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.startswith("hebbian: error: config key 'train.lr'") and "Traceback" not in bad.stderr
