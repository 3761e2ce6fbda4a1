"""The logistic probe's functional core against scikit-learn's independent solver, and its invariances."""

import numpy as np
import pytest
import torch

from hebbian.probes import DEFAULT_L2_GRID, Standardizer, fit_logistic, select_l2, standardize


def _blobs(n=300, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(c, d, generator=g, dtype=torch.float64)
    y = torch.arange(n) % c
    x = centres[y] + torch.randn(n, d, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("l2", [1e-3, 1e-1])
def test_fit_matches_scikit_learn_multinomial_logistic_regression(l2):
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = _blobs()
    fit = fit_logistic(x, y, 3, l2, tol=1e-8)
    # scikit-learn minimises C * sum CE + ||W||^2 / 2; ours mean CE + l2 ||W||^2 / 2, i.e. C = 1 / (l2 N)
    ref = sklearn.LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-12, max_iter=10000).fit(x.numpy(), y.numpy())
    # softmax logits are defined up to a per-sample constant: compare centred class weights
    w, w_ref = fit.weight.numpy(), ref.coef_
    np.testing.assert_allclose(w - w.mean(0), w_ref - w_ref.mean(0), atol=1e-5)
    b, b_ref = fit.bias.numpy(), ref.intercept_
    np.testing.assert_allclose(b - b.mean(), b_ref - b_ref.mean(), atol=1e-5)
    assert fit.converged


def test_fit_reaches_the_gradient_tolerance_and_is_deterministic():
    x, y = _blobs(seed=1)
    a, b = fit_logistic(x, y, 3, 1e-2), fit_logistic(x, y, 3, 1e-2)
    assert a.converged and a.iterations > 0
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_standardize_uses_training_statistics_only():
    train = torch.tensor([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    test = torch.tensor([[100.0, 7.0]])
    z_train, z_test = standardize(train, test)
    assert torch.allclose(z_train.mean(0), torch.zeros(2, dtype=torch.float64))
    assert z_train[:, 0].std(unbiased=False) == pytest.approx(1.0)
    assert z_train[:, 1].abs().max() == 0  # a constant feature stays 0, no division by zero
    mean, std = 2.0, (8.0 / 3.0) ** 0.5
    assert z_test[0, 0].item() == pytest.approx((100.0 - mean) / std)
    assert z_test[0, 1].item() == pytest.approx(2.0)  # (7 - 5) / 1: std 0 is replaced by 1
    assert torch.equal(Standardizer.fit(train)(train), z_train)


def test_select_l2_picks_the_best_validation_accuracy_and_breaks_ties_to_the_larger():
    x, y = _blobs(n=400, d=20, seed=2)
    train, val = (x[:200], y[:200]), (x[200:], y[200:])
    seen = []
    best, acc = select_l2(train, val, 3, DEFAULT_L2_GRID, on_fit=lambda f, a: seen.append((f.l2, a)))
    assert [l2 for l2, _ in seen] == sorted(DEFAULT_L2_GRID, reverse=True)
    top = max(a for _, a in seen)
    assert acc == top and best.l2 == max(l2 for l2, a in seen if a == top)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"l2": -1.0}, "l2"),
    ({"l2": 0.1, "labels": torch.tensor([0.0, 1.0])}, "integers"),
    ({"l2": 0.1, "labels": torch.tensor([0, 5])}, "labels must lie"),
    ({"l2": 0.1, "z": torch.tensor([[float("nan")], [0.0]])}, "NaN"),
])
def test_bad_input_is_refused_with_a_named_error(kwargs, fragment):
    z = kwargs.pop("z", torch.zeros(2, 1, dtype=torch.float64))
    labels = kwargs.pop("labels", torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=fragment):
        fit_logistic(z, labels, 2, **kwargs)
