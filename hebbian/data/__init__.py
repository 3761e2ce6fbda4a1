"""Datasets by name (``digits`` bundled; MNIST, Fashion-MNIST, CIFAR through torchvision) and in-memory loaders."""

from hebbian.data.datasets import (
    DATASETS,
    ENV_ROOT,
    DatasetInfo,
    DatasetNotFoundError,
    default_data_root,
    get_dataset_info,
    list_datasets,
    load_dataset,
)
from hebbian.data.integrity import DatasetError
from hebbian.data.loaders import in_memory_loader
from hebbian.data.transforms import center, channel_stats, normalize, pixel_stats

__all__ = [
    "DATASETS", "ENV_ROOT", "DatasetError", "DatasetInfo", "DatasetNotFoundError", "default_data_root",
    "get_dataset_info", "list_datasets", "load_dataset", "in_memory_loader", "channel_stats", "normalize",
    "pixel_stats", "center",
]
