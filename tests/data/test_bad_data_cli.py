"""Bad data and limits through the command line, in-process: every case is one line on stderr with exit code 2,
refused before anything is trained or written (no checkpoint), or a run with exactly the images asked for."""

from __future__ import annotations

import json

import numpy as np
import pytest
from idx_helpers import fake_mnist, raw_file, write_idx

from hebbian.cli import main

QUICK = ["--epochs", "1", "--no-progress", "--no-tensorboard"]


def spoil(kind):
    def make(root):
        if kind == "empty":
            return fake_mnist(root, 0, 0)
        if kind in ("one", "two"):
            n = {"one": 1, "two": 2}[kind]
            return fake_mnist(root, n, n)
        fake_mnist(root, 40, 10)
        if kind == "label10":
            write_idx(raw_file(root, "train", "labels"), np.full(40, 10))
        elif kind == "label200":
            write_idx(raw_file(root, "test", "labels"), np.r_[np.arange(9), 200])
        elif kind == "truncated":
            path = raw_file(root, "train", "images")
            path.write_bytes(path.read_bytes()[:1000])
        return root
    return make


# (case, spoil the fake MNIST or None for digits, extra arguments, words of the error or None for a success)
CASES = [
    ("mnist-empty", spoil("empty"), [], ["holds no images"]),
    ("mnist-one-image", spoil("one"), [], ["data.normalize='center'", "1 training image(s)"]),
    ("mnist-one-image-raw", spoil("one"), ["--set", "data.normalize=null"], ["2 images of at least one class"]),
    ("mnist-two-images", spoil("two"), [], ["2 images of at least one class"]),
    ("mnist-label-10", spoil("label10"), [], ["outside the 10 classes", ": 10"]),
    ("mnist-label-200", spoil("label200"), [], ["mnist test split", "200"]),
    ("mnist-truncated", spoil("truncated"), [], ["train-images-idx3-ubyte is damaged", "truncated"]),
    ("mnist-train-limit-1", spoil("ok"), ["--train-limit", "1"], ["data.train_limit"]),
    ("mnist-train-limit-41", spoil("ok"), ["--train-limit", "41"], ["data.train_limit", "use at most"]),
    ("digits-train-limit-1", None, ["--train-limit", "1"], ["data.train_limit"]),
    ("digits-train-limit-2", None, ["--train-limit", "2"], ["data.train_limit", "2 images of at least one class"]),
    ("digits-test-limit-9999", None, ["--set", "data.test_limit=9999"], ["data.test_limit", "use at most"]),
    ("digits-test-fraction", None, ["--set", "data.test_fraction=0.999"],  # 1 training image per class left
     {"seeded": ["data.test_fraction", "2 images of at least one class"], "fixed": None}),
    ("mnist-test-limit-1", spoil("ok"), ["--set", "data.test_limit=1"], None),
    ("digits-limits-1-1", None, ["--train-limit", "11", "--set", "data.test_limit=1"], None),
]


@pytest.mark.parametrize("split", ["seeded", "fixed"])
@pytest.mark.parametrize("make,extra,words", [pytest.param(m, e, w, id=c) for c, m, e, w in CASES])
def test_bad_data_is_one_line_before_training_or_exactly_what_was_asked(tmp_path, capsys, split, make, extra, words):
    data = [] if make is None else ["--dataset", "mnist", "--data-root", str(make(tmp_path / "data"))]
    out = tmp_path / "run"
    code = main(["train", "compare_digits", *QUICK, *data, *extra, "--set", f"data.split={split}", "--out", str(out)])
    err = capsys.readouterr().err
    words = words.get(split) if isinstance(words, dict) else words
    if words is None:
        assert code == 0, err
        metrics = json.loads((out / "metrics.json").read_text())
        for flag, key in (("--train-limit", "train_images"), ("data.test_limit=1", "test_images")):
            if any(flag in a for a in extra):
                assert metrics[key] == (1 if key == "test_images" else int(extra[extra.index(flag) + 1]))
        return
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("hebbian: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (out / "checkpoints").exists()  # refused before any training
