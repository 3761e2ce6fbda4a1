"""FoldiakLayer / foldiak_fc: the settled lateral dynamics against a float64 loop written from Földiák's (1990)
equation, the layer's options, and its place in the model registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hebbian.models import FoldiakLayer, create_model, get_model_info


def reference_settle(Q: np.ndarray, W: np.ndarray, t: np.ndarray, x: np.ndarray, gain: float, steps: int,
                     rate: float) -> np.ndarray:
    """dy*_i/dt = f(sum_j q_ij x_j + sum_j w_ij y*_j - t_i) - y*_i, f(v) = 1 / (1 + exp(-gain v)), from y* = 0,
    by ``steps`` synchronous Euler steps of size ``rate``; one sample at a time, unit by unit."""
    out = np.zeros((x.shape[0], Q.shape[0]))
    for n in range(x.shape[0]):
        y = [0.0] * Q.shape[0]
        for _ in range(steps):
            new = []
            for i in range(Q.shape[0]):
                v = sum(Q[i, j] * x[n, j] for j in range(Q.shape[1])) + sum(W[i, j] * y[j] for j in range(len(y))) \
                    - t[i]
                new.append(y[i] + rate * (1.0 / (1.0 + math.exp(-gain * v)) - y[i]))
            y = new
        out[n] = y
    return out


def make_layer(output: str = "binary", steps: int = 12, rate: float = 0.3, gain: float = 4.0) -> FoldiakLayer:
    gen = torch.Generator().manual_seed(3)
    layer = FoldiakLayer(5, 4, gain=gain, steps=steps, rate=rate, output=output).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(4, 5, generator=gen, dtype=torch.float64) * 0.5)
        lateral = -torch.rand(4, 4, generator=gen, dtype=torch.float64)
        layer.lateral.copy_((lateral + lateral.t()).fill_diagonal_(0.0))
        layer.threshold.copy_(torch.randn(4, generator=gen, dtype=torch.float64) * 0.2)
    return layer


@pytest.mark.parametrize("steps,rate,gain", [(1, 1.0, 10.0), (12, 0.3, 4.0), (40, 0.2, 10.0)])
def test_settling_matches_the_reference(steps, rate, gain):
    layer = make_layer("rate", steps, rate, gain)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ref = reference_settle(layer.weight.detach().numpy(), layer.lateral.numpy(), layer.threshold.numpy(), x.numpy(),
                           gain, steps, rate)
    with torch.no_grad():
        np.testing.assert_allclose(layer(x).numpy(), ref, rtol=1e-12, atol=1e-14)
        layer.output = "binary"
        np.testing.assert_array_equal(layer(x).numpy(), (ref > 0.5).astype(np.float64))


def test_leading_dimensions_and_unbatched_inputs():
    layer = make_layer("rate")
    x = torch.randn(6, 5, dtype=torch.float64)
    with torch.no_grad():
        flat = layer(x)
        assert torch.allclose(layer(x.view(2, 3, 5)), flat.view(2, 3, 4), rtol=1e-14, atol=0)
        assert torch.allclose(layer(x[0]), flat[0], rtol=1e-14, atol=0)


def test_the_lateral_weights_inhibit():
    """Strong mutual inhibition between two equally driven units leaves fewer units active than without it."""
    layer = FoldiakLayer(2, 2, gain=10.0, steps=60, rate=0.2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
        x = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
        assert layer(x).sum() == 2
        layer.lateral.copy_(torch.tensor([[0.0, -3.0], [-3.0, 0.0]], dtype=torch.float64))
        assert layer(x).sum() <= 1


def test_buffers_are_saved_with_the_model():
    net = create_model("foldiak_fc", input_size=8, width=0.01)
    state = net.state_dict()
    assert state["lateral1.lateral"].shape == (20, 20) and state["lateral1.threshold"].shape == (20,)
    assert not any("lateral" in name for name, _ in net.named_parameters() if name != "lateral1.weight")


def test_registry_entry():
    info = get_model_info("foldiak_fc")
    assert info.hebbian_layers == ("lateral1",)
    net = create_model("foldiak_fc", input_size=8, width=0.01, output="rate", steps=5)
    assert isinstance(net.lateral1, FoldiakLayer) and net.lateral1.output == "rate" and net.lateral1.steps == 5
    assert net.readout.in_features == 20
    rules = net.default_rules()
    assert rules["lateral1"].hyperparameters() == {"alpha": 0.1, "gamma": 0.02, "p": 0.125}  # the paper's values


@pytest.mark.parametrize("kw,param", [({"gain": 0.0}, "gain"), ({"steps": 0}, "steps"), ({"steps": 2.0}, "steps"),
                                      ({"rate": 1.5}, "rate"), ({"output": "spikes"}, "output")])
def test_bad_options(kw, param):
    with pytest.raises(ValueError, match=rf"^{param} must"):
        FoldiakLayer(3, 2, **kw)
