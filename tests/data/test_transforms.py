"""Whole-dataset normalisation of in-memory image datasets."""

import pytest
import torch
from torch.utils.data import TensorDataset

from hebbian.data import channel_stats, normalize


def _rgb(n=50):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, 4, 4, generator=g) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    return TensorDataset(x, torch.arange(n))


def test_dataset_stats_normalise_to_zero_mean_unit_std():
    ds = _rgb()
    out = normalize(ds, *channel_stats(ds))
    mean, std = channel_stats(out)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5)
    assert torch.allclose(std, torch.ones(3), atol=1e-5)
    assert out.tensors[1] is ds.tensors[1]


def test_scalar_mean_std_map_unit_interval_to_minus_one_one():
    ds = TensorDataset(torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1), torch.zeros(3))
    assert normalize(ds, 0.5, 0.5).tensors[0].flatten().tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("mean,std,match", [([0.1, 0.2], 1.0, "mean must be one number or 3"),
                                            (0.0, [1.0, 0.0, 1.0], "std must be positive")])
def test_bad_arguments_name_the_parameter(mean, std, match):
    with pytest.raises(ValueError, match=match):
        normalize(_rgb(), mean, std)
