"""``data.train_limit`` / ``data.test_limit`` are honoured exactly (the fixed and the seeded split, digits and
MNIST-style data) or refused before any training with one line naming the key and what is possible; so is data that
the normalisation or the probe cannot use."""

from __future__ import annotations

import pytest
import torch
from idx_helpers import fake_mnist

from hebbian.config import resolve_config
from hebbian.errors import ConfigError
from hebbian.experiment import Experiment, load_data


def digits(*overrides):
    return resolve_config("compare_digits", list(overrides))


@pytest.mark.parametrize("split", ["seeded", "fixed"])
@pytest.mark.parametrize("train_limit,test_limit", [(1, None), (None, 1), (2, 3), (256, 100), (1000, 300)])
def test_digits_limits_are_honoured_exactly(split, train_limit, test_limit):
    cfg = digits(f"data.split={split}", f"data.train_limit={'null' if train_limit is None else train_limit}",
                 f"data.test_limit={'null' if test_limit is None else test_limit}", "data.normalize=null")
    full = load_data(digits(f"data.split={split}", "data.normalize=null"))
    data = load_data(cfg)
    assert len(data.train) == (train_limit or len(full.train)) and len(data.test) == (test_limit or len(full.test))
    # the first images of the split, unchanged
    assert torch.equal(data.train.tensors[0], full.train.tensors[0][:len(data.train)])
    assert torch.equal(data.test.tensors[1], full.test.tensors[1][:len(data.test)])


def test_the_seeded_split_is_drawn_from_everything_then_limited():
    full = load_data(digits("data.normalize=null"))
    assert (len(full.train), len(full.test)) == (1262, 535)  # 1797 images, 30% of each class tested
    other_seed = load_data(digits("data.normalize=null", "data.test_limit=20"), seed=1)
    assert not torch.equal(other_seed.test.tensors[0], full.test.tensors[0][:20])  # each seed its own test images


@pytest.mark.parametrize("split,key,limit,most", [
    ("seeded", "train_limit", 1263, 1262), ("seeded", "test_limit", 536, 535),
    ("fixed", "train_limit", 5000, 1442), ("fixed", "test_limit", 356, 355),
])
def test_a_limit_above_the_split_is_refused_naming_the_key_and_the_most(split, key, limit, most):
    with pytest.raises(ConfigError) as info:
        load_data(digits(f"data.split={split}", f"data.{key}={limit}"))
    assert info.value.key == f"data.{key}" and f"holds {most}; use at most {most}" in str(info.value)


@pytest.mark.parametrize("split", ["seeded", "fixed"])
def test_mnist_style_limits_are_honoured_exactly(tmp_path, split):
    root = fake_mnist(tmp_path, 50, 20)
    base = [f"data.root={root}", "data.name=mnist", f"data.split={split}"]
    data = load_data(digits(*base, "data.train_limit=11", "data.test_limit=1"))
    assert (len(data.train), len(data.test)) == (11, 1)
    with pytest.raises(ConfigError, match="data.train_limit.*use at most"):
        load_data(digits(*base, "data.train_limit=51"))


def test_one_training_image_cannot_be_centred_or_probed_but_trains_without_them():
    with pytest.raises(ConfigError) as info:
        load_data(digits("data.train_limit=1"))
    assert info.value.key == "data.train_limit" and "data.normalize='center'" in str(info.value)
    with pytest.raises(ConfigError) as info:
        Experiment(digits("data.train_limit=2", "data.normalize=null"))  # digits 0 and 1: one image per class
    assert info.value.key == "data.train_limit" and "2 images of at least one class" in str(info.value)
    exp = Experiment(digits("data.train_limit=1", "data.normalize=null", "probe.epochs=0", "train.epochs=1"))
    exp.fit()
    assert len(exp.data.train) == 1 and exp.trainer.state.iteration == 1


def test_the_readout_probe_needs_no_stratified_split():
    exp = Experiment(digits("data.train_limit=2", "data.normalize=null", "probe.protocol=readout", "probe.epochs=1"))
    assert len(exp.data.train) == 2
