"""A missing torchvision dataset is refused with the folder its own layout needs (nothing is downloaded)."""

from __future__ import annotations

import pytest

from hebbian.data import DatasetNotFoundError, load_dataset


@pytest.mark.parametrize("name,folder", [
    ("cifar10", "cifar-10-batches-py"),
    ("cifar100", "cifar-100-python"),
    ("mnist", "MNIST/raw"),
    ("fashion-mnist", "FashionMNIST/raw"),
])
def test_missing_dataset_names_the_folder_of_its_own_layout(tmp_path, name, folder):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, root=tmp_path)
    message = str(info.value)
    assert f"{tmp_path}/{folder}" in message and "--download" in message
    if name.startswith("cifar"):
        assert "MNIST" not in message  # was: "e.g. ROOT/CIFAR10/raw for MNIST-style data"
