"""``hebbian visualize RUN --over-training``: the filters at every checkpoint the run kept (and before training), as a
strip PNG or an animated GIF; a run that kept one checkpoint is refused with the setting that keeps more."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import pytest
import torch
from PIL import Image

from hebbian.cli import main
from hebbian.config import resolve_config
from hebbian.experiment import Experiment
from hebbian.trainers.checkpoint import load_checkpoint
from hebbian.visualizers import snapshot_grids

QUICK = ["--rule", "krotov", "--lr", "0.1", "--epochs", "3", "--train-limit", "300", "--test-limit", "120",
         "--no-progress",
         "--no-tensorboard", "--set", "compare.seeds=1", "--set", "data.split=fixed"]


@pytest.fixture(scope="module")
def kept_every_epoch(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("over") / "run"
    assert main(["train", "compare_digits", "--out", str(run), *QUICK,
                 "--set", "checkpoint.every=1", "--set", "checkpoint.n_saved=5"]) == 0
    return run


def test_strip_shows_the_initial_and_every_kept_epoch(kept_every_epoch: Path, capsys):
    assert main(["visualize", str(kept_every_epoch), "--over-training", "--max-filters", "16"]) == 0
    out = kept_every_epoch / "filters_over_training.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(out).shape[:2]
    assert width > 3 * height  # four panels side by side
    assert "epochs 0, 1, 2, 3" in capsys.readouterr().out


def test_gif_frames_are_the_checkpoints_weights(kept_every_epoch: Path):
    gif = kept_every_epoch / "anim.gif"
    assert main(["visualize", str(kept_every_epoch), "--over-training", "-o", str(gif)]) == 0
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 4
        frames = []
        for i in (0, 3):
            image.seek(i)
            frames.append(torch.tensor(list(image.convert("L").getdata()), dtype=torch.float))
        assert (frames[0] - frames[1]).abs().max() > 0  # the initial draw and the trained filters differ
    # the frames come from the checkpoints: the last one holds the trained weights, the first the seed's draw
    exp = Experiment(resolve_config(kept_every_epoch / "config.yaml"))
    last = max((kept_every_epoch / "checkpoints").glob("*.pt"), key=lambda p: int(p.stem.split("_")[-1]))
    trained = load_checkpoint(last)["model"]["linear1.weight"]
    assert not torch.equal(trained, exp.initial_weights["linear1"])
    assert snapshot_grids({3: trained})[3].shape == snapshot_grids({0: exp.initial_weights["linear1"]})[0].shape


def test_one_checkpoint_is_refused_naming_the_setting(tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert main(["train", "compare_digits", "--out", str(run), *QUICK]) == 0
    capsys.readouterr()
    assert main(["visualize", str(run), "--over-training"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "checkpoint.n_saved" in err and "checkpoint.every=1" in err


def test_other_suffixes_are_refused(kept_every_epoch: Path, capsys):
    assert main(["visualize", str(kept_every_epoch), "--over-training", "-o", str(kept_every_epoch / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert ".gif" in err and "x.jpg" in err
