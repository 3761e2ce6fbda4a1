"""Damaged, empty or wrong MNIST-style files are refused when loaded, with one line naming the file and what was
expected (they were tracebacks, or 'MNIST was not found', before)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from idx_helpers import fake_mnist, raw_file, write_idx

from hebbian.data import load_dataset
from hebbian.data.integrity import DatasetError, idx_problem
from hebbian.errors import UsageError


def truncate(path, keep):
    path.write_bytes(path.read_bytes()[:keep])


def test_an_intact_fake_mnist_loads_exactly(tmp_path):
    root = fake_mnist(tmp_path, 30, 12)
    train, test = load_dataset("mnist", root=root), load_dataset("mnist", root=root, train=False)
    assert train.tensors[0].shape == (30, 1, 28, 28) and test.tensors[0].shape == (12, 1, 28, 28)
    assert train.tensors[1].tolist() == [i % 10 for i in range(30)]
    raw = np.frombuffer(raw_file(root, "train", "images").read_bytes()[16:], np.uint8).reshape(30, 28, 28)
    assert torch.equal(train.tensors[0][:, 0], torch.from_numpy(raw.astype(np.float32)) / 255)


# (description, how to spoil the fake dataset, words the one-line message must hold)
CASES = [
    ("truncated images", lambda r: truncate(raw_file(r, "train", "images"), 5000),
     ["train-images-idx3-ubyte", "damaged", "truncated", "5000 bytes"]),
    ("truncated labels", lambda r: truncate(raw_file(r, "train", "labels"), 12),
     ["train-labels-idx1-ubyte", "damaged", "truncated"]),
    ("header cut", lambda r: truncate(raw_file(r, "train", "labels"), 2), ["train-labels-idx1-ubyte", "4-byte"]),
    ("too long", lambda r: raw_file(r, "train", "images").write_bytes(raw_file(r, "train", "images").read_bytes()
                                                                      + b"\0"), ["longer than its header"]),
    ("not idx", lambda r: raw_file(r, "train", "images").write_bytes(b"<html>not found</html>" * 10),
     ["train-images-idx3-ubyte", "not that of a 3-dimensional idx array"]),
    ("labels as images", lambda r: write_idx(raw_file(r, "train", "labels"), np.zeros((20, 2, 2))),
     ["train-labels-idx1-ubyte", "1-dimensional"]),
    ("fewer labels", lambda r: write_idx(raw_file(r, "train", "labels"), np.arange(15) % 10),
     ["20 images", "15 labels", "one label per image"]),
    ("empty", lambda r: fake_mnist(r, 0, 0), ["train-images-idx3-ubyte", "holds no images"]),
    ("label 10", lambda r: write_idx(raw_file(r, "train", "labels"), np.full(20, 10)),
     ["mnist training split", "20 label(s) outside the 10 classes [0, 9]: 10"]),
    ("label 200", lambda r: write_idx(raw_file(r, "train", "labels"), np.r_[np.arange(19) % 10, 200]),
     ["1 label(s) outside", "200"]),
    ("8x8 images", lambda r: fake_mnist(r, 20, 5, size=8), ["shape (1, 8, 8)", "(1, 28, 28)"]),
]


@pytest.mark.parametrize("spoil,words", [pytest.param(s, w, id=n) for n, s, w in CASES])
def test_a_spoilt_mnist_is_refused_in_one_line_naming_the_file(tmp_path, spoil, words):
    root = fake_mnist(tmp_path, 20, 5)
    spoil(root)
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", root=root)
    message = str(info.value)
    assert isinstance(info.value, UsageError) and "\n" not in message
    assert "not found" not in message
    for word in words:
        assert word in message, (word, message)


def test_the_test_split_is_checked_too_and_fashion_mnist_alike(tmp_path):
    root = fake_mnist(tmp_path, 20, 5, name="FashionMNIST")
    truncate(raw_file(root, "test", "images", "FashionMNIST"), 100)
    assert len(load_dataset("fashion-mnist", root=root)) == 20  # the training split is intact
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte is damaged"):
        load_dataset("fashion-mnist", root=root, train=False)


def test_idx_problem_accepts_what_write_idx_writes_of_every_shape(tmp_path):
    for shape in [(0,), (3,), (2, 4, 5), (0, 28, 28)]:
        path = write_idx(tmp_path / "a", np.zeros(shape))
        assert idx_problem(path, len(shape)) is None


@pytest.mark.parametrize("limit,ok", [(20, True), (1, True), (21, False), (0, False), (True, False), (2.0, False)])
def test_a_limit_is_honoured_exactly_or_refused(tmp_path, limit, ok):
    root = fake_mnist(tmp_path, 20, 5)
    if ok:
        assert len(load_dataset("mnist", root=root, limit=limit)) == limit
    else:
        with pytest.raises(ValueError, match="limit"):
            load_dataset("mnist", root=root, limit=limit)
