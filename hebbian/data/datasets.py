"""Datasets by name, loaded whole into memory as tensors.

``digits`` (scikit-learn's bundled 8x8 digits) needs no download and is the embedded default. ``mnist``,
``fashion-mnist``, ``cifar10`` and ``cifar100`` come through torchvision from a data root: the ``root`` argument, else
the ``HEBBIAN_DATA_ROOT`` environment variable, else ``../shared/datasets`` or ``./data`` when they exist. Nothing is
downloaded unless ``download=True`` is given.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import TensorDataset

from hebbian.data.integrity import DatasetError, check_idx_files, check_loaded, describe_root

ENV_ROOT = "HEBBIAN_DATA_ROOT"


@dataclass(frozen=True)
class DatasetInfo:
    """Metadata of a named dataset: image shape ``(channels, size, size)``, classes, and where it comes from."""

    name: str
    channels: int
    size: int
    num_classes: int
    source: str
    needs_root: bool
    loader: Callable[[Optional[Path], bool, bool], Tuple[Tensor, Tensor]]

    @property
    def shape(self) -> Tuple[int, int, int]:
        return (self.channels, self.size, self.size)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on disk; the message says where it was looked for and how to get it."""


def default_data_root() -> Optional[Path]:
    """``$HEBBIAN_DATA_ROOT``, else the first existing of ``../shared/datasets`` and ``./data``, else ``None``."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env)
    for candidate in (Path("../shared/datasets"), Path("data")):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def _digits(root: Optional[Path], train: bool, download: bool) -> Tuple[Tensor, Tensor]:
    """scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1]; a fixed, stratified 80/20 train/test split."""
    from sklearn.datasets import load_digits

    from hebbian.data.splits import stratified_indices

    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    y = torch.tensor(labels, dtype=torch.long)
    kept, held = stratified_indices(y, 0.2, seed=0)
    keep = kept if train else held
    return x[keep], y[keep]


#: torchvision datasets stored as idx files under ``<root>/<class name>/raw`` (read by torchvision's MNIST reader).
IDX_DATASETS = ("MNIST", "FashionMNIST")


def idx_files(root: Path, cls_name: str, train: bool) -> Tuple[Path, Path]:
    """The image and label idx files of one split of an MNIST-style dataset in torchvision's layout."""
    raw, prefix = root / cls_name / "raw", "train" if train else "t10k"
    return raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"


def _torchvision(cls_name: str) -> Callable[[Optional[Path], bool, bool], Tuple[Tensor, Tensor]]:
    def load(root: Optional[Path], train: bool, download: bool) -> Tuple[Tensor, Tensor]:
        import torchvision

        cls = getattr(torchvision.datasets, cls_name)
        if cls_name in IDX_DATASETS and root is not None:
            check_idx_files(cls_name, *idx_files(root, cls_name, train))
        try:
            ds = cls(str(root), train=train, download=download)
        except RuntimeError as err:  # torchvision's "Dataset not found. You can use download=True ..."
            if "not found" not in str(err):
                raise _damaged(cls_name, root, err) from None
            folder = getattr(cls, "base_folder", f"{cls_name}/raw")  # CIFAR: the extracted archive; MNIST: raw/
            raise DatasetNotFoundError(
                f"{cls_name} was not found under {root} ({err}). Point --data-root / ${ENV_ROOT} at a folder "
                f"holding it in torchvision's layout (here {root}/{folder}), or pass "
                "--download (download=True) on a machine with internet access."
            ) from err
        except (ValueError, TypeError, AssertionError, IndexError, EOFError, OSError, pickle.UnpicklingError) as err:
            raise _damaged(cls_name, root, err) from None
        data = ds.data if isinstance(ds.data, Tensor) else torch.as_tensor(ds.data)
        x = data.float().div_(255.0)
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()
        return x, torch.as_tensor(ds.targets, dtype=torch.long)

    return load


def _damaged(cls_name: str, root: Optional[Path], err: BaseException) -> DatasetError:
    reason = " ".join(str(err).split()) or type(err).__name__
    return DatasetError(f"{cls_name} under {root} is there but cannot be read, so a file of it is damaged "
                        f"({type(err).__name__}: {reason}); replace its files with intact copies (or delete the "
                        "folder and pass --download)")


DATASETS: Dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", 1, 8, 10, "scikit-learn (bundled, no download)", False, _digits),
    "mnist": DatasetInfo("mnist", 1, 28, 10, "torchvision.datasets.MNIST", True, _torchvision("MNIST")),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", 1, 28, 10, "torchvision.datasets.FashionMNIST", True, _torchvision("FashionMNIST")
    ),
    "cifar10": DatasetInfo("cifar10", 3, 32, 10, "torchvision.datasets.CIFAR10", True, _torchvision("CIFAR10")),
    "cifar100": DatasetInfo("cifar100", 3, 32, 100, "torchvision.datasets.CIFAR100", True, _torchvision("CIFAR100")),
}


def list_datasets() -> List[str]:
    return sorted(DATASETS)


def get_dataset_info(name: str) -> DatasetInfo:
    key = name.strip().lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(key, key)
    if key not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return DATASETS[key]


def load_dataset(
    name: str,
    *,
    train: bool = True,
    root: Optional[Union[str, Path]] = None,
    download: bool = False,
    limit: Optional[int] = None,
) -> TensorDataset:
    """Load a named dataset into memory as ``TensorDataset(images (N, C, H, W) in [0, 1], labels (N,))``.

    Args:
        name: one of :func:`list_datasets`.
        train: the training split (else the test split).
        root: data root (see the module docstring for the default).
        download: let torchvision download a missing dataset.
        limit: keep only the first ``limit`` samples (a fixed subset); more than the split has is refused.

    Raises:
        KeyError: unknown name. DatasetNotFoundError: the files are not under the root. DatasetError: they are, but
        damaged, empty, or hold labels outside the classes or images of another shape. ValueError: a bad ``limit``.
    """
    info = get_dataset_info(name)
    path = Path(root) if root is not None else default_data_root()
    if info.needs_root and path is None:
        if not download:
            raise DatasetNotFoundError(
                f"no data root for {info.name!r}: pass root=/--data-root, set ${ENV_ROOT}, or allow download=True"
            )
        path = Path("data")
    x, y = info.loader(path, train, download)
    check_loaded(info.name, "training" if train else "test", describe_root(path if info.needs_root else None), x, y,
                 info.shape, info.num_classes)
    dataset = TensorDataset(x, y)
    return dataset if limit is None else first(dataset, limit, "limit")


def first(dataset: TensorDataset, limit: int, name: str = "limit") -> TensorDataset:
    """The first ``limit`` samples of ``dataset`` (views, no copy).

    Raises:
        ValueError: ``limit`` is not a positive integer or exceeds the dataset's length (the message names ``name``
            and how many samples there are): a limit is honoured exactly or refused.
    """
    n = len(dataset)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"{name} must be a positive integer, got {limit!r}")
    if limit > n:
        raise ValueError(f"{name}={limit} asks for more images than there are: {n}")
    return TensorDataset(*(t[:limit] for t in dataset.tensors))
