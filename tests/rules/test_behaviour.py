"""Behavioural checks of rules.md section 6, with its acceptance numbers.

The long single-sample runs of rules.md are replaced by batched updates with a larger step (the batch-mean update is
the same averaged ODE), so every test runs in about a second. Updates are applied the way trainers apply them:
``hebbian.optim.write_update`` followed by an optimizer step (``hebbian.optim.Local`` or ``torch.optim.SGD``).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hebbian.rules as R
from hebbian.optim import Local, write_update
from hebbian.rules.competition import anti_hebbian_losers, hard_wta, soft_wta
from hebbian.rules.fasthebb import raised_cosine_sq
from hebbian.rules.softhebb import softhebb_rate

DT = torch.float64
EIGS = (5.0, 3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1)  # rules.md 6.1.1


def gaussian_data(n: int, seed: int):
    """Zero-mean Gaussian data with covariance Q diag(EIGS) Q^T; returns (X, eigenvectors as columns of Q)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(len(EIGS), len(EIGS), generator=g, dtype=DT))
    z = torch.randn(n, len(EIGS), generator=g, dtype=DT)
    return z * torch.tensor(EIGS, dtype=DT).sqrt() @ q.t(), q


def train(rule, layer, batches, lr: float, optimizer=None, **update_kwargs) -> None:
    opt = optimizer or Local(layer.parameters(), lr=lr)
    for x in batches:
        with torch.no_grad():
            u = layer(x)
        write_update(layer.weight, rule.update(layer, x, u, **update_kwargs))
        opt.step()


def linear(d_in: int, d_out: int, seed: int, scale: float = 0.1) -> nn.Linear:
    layer = nn.Linear(d_in, d_out, bias=False).to(DT)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(d_out, d_in, generator=torch.Generator().manual_seed(seed), dtype=DT) * scale)
    return layer


def abs_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a @ b).abs() / (a.norm() * b.norm()))


# ------------------------------------------------------------------------------------------------ 6.1 dense PCA rules
def test_oja_converges_to_pc1_with_unit_norm():
    """6.1.1: ||w|| -> 1 (|.-1| < 0.02) and |cos(w, e1)| > 0.99."""
    X, q = gaussian_data(1500 * 100, seed=1)
    layer = linear(8, 1, seed=2)
    train(R.create("oja"), layer, X.split(100), lr=0.01)
    w = layer.weight.detach()[0]
    assert abs(float(w.norm()) - 1.0) < 0.02
    assert abs_cos(w, q[:, 0]) > 0.99


def test_oja_with_too_large_step_is_unstable():
    """6.1.5: with eta * lambda_1 well above 1 the per-step norm correction overshoots: no convergence."""
    X, _ = gaussian_data(60 * 100, seed=1)
    layer = linear(8, 1, seed=2)
    norms = []
    opt = Local(layer.parameters(), lr=1.0)  # eta * lambda_1 = 5
    for x in X.split(100):
        with torch.no_grad():
            u = layer(x)
        write_update(layer.weight, R.create("oja").update(layer, x, u, check_finite=False))
        opt.step()
        norms.append(float(layer.weight.detach().norm()))
    tail = torch.tensor(norms[-20:])
    assert not bool(torch.isfinite(tail).all()) or float((tail - 1).abs().max()) > 0.5


@pytest.mark.parametrize("rule_name", ["sanger", "hpca"])
def test_sanger_and_hpca_linear_limit_recover_ordered_eigenvectors(rule_name):
    """6.1.2 (Sanger/GHA, 3 units) and 6.5.2 (HPCA with identity activation is GHA scaled by 1/sqrt(D))."""
    X, q = gaussian_data(2000 * 200, seed=3)
    layer = linear(8, 3, seed=4)
    if rule_name == "sanger":
        rule, lr = R.create("sanger"), 0.01
    else:
        rule, lr = R.create("hpca", activation="identity"), 0.01 * math.sqrt(8)
    train(rule, layer, X.split(200), lr=lr)
    W = layer.weight.detach()
    for i in range(3):
        assert abs(float(W[i].norm()) - 1.0) < 0.02, (i, W.norm(dim=1))
        assert abs_cos(W[i], q[:, i]) > 0.99, (i, [abs_cos(W[i], q[:, j]) for j in range(8)])
    assert torch.allclose(W @ W.t(), torch.eye(3, dtype=DT), atol=0.03)


def test_oja_subspace_gives_orthonormal_basis_of_top_subspace():
    """Oja's subspace rule: W W^T = I and span(W) = span(e1, e2, e3) (rotation inside it is free)."""
    X, q = gaussian_data(2000 * 200, seed=5)
    layer = linear(8, 3, seed=6)
    train(R.create("oja_subspace"), layer, X.split(200), lr=0.01)
    W = layer.weight.detach()
    assert torch.allclose(W @ W.t(), torch.eye(3, dtype=DT), atol=0.03)
    # every row lies in the top-3 eigenspace: its projection there keeps (almost) all its norm
    proj = W @ q[:, :3]
    assert float(torch.linalg.svdvals(proj).min()) > 0.98
    assert float((W - proj @ q[:, :3].t()).norm(dim=1).max()) < 0.15


def test_plain_hebb_diverges_geometrically_towards_e1():
    """6.1.3: ||w|| grows geometrically (rate ~ eta * lambda_1 per step) while |cos(w, e1)| -> 1."""
    X, q = gaussian_data(3000 * 64, seed=7)
    layer = linear(8, 1, seed=8)
    opt = Local(layer.parameters(), lr=1e-3)
    log_norms = []
    for step, x in enumerate(X.split(64), 1):
        with torch.no_grad():
            u = layer(x)
        write_update(layer.weight, R.create("hebb").update(layer, x, u))
        opt.step()
        if step % 1000 == 0:
            log_norms.append(math.log(float(layer.weight.detach().norm())))
    w = layer.weight.detach()[0]
    assert float(w.norm()) > 1e4
    assert abs_cos(w, q[:, 0]) > 0.999
    expected = 1000 * math.log1p(1e-3 * EIGS[0])  # per 1000 steps, once aligned with e1
    for a, b in zip(log_norms[:-1], log_norms[1:]):
        assert abs((b - a) - expected) < 0.15 * expected


def clustered(centres: torch.Tensor, n: int, sigma: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, centres.shape[0], (n,), generator=g)
    return centres[idx] + sigma * torch.randn(n, centres.shape[1], generator=g, dtype=DT), idx


def test_instar_hard_wta_finds_cluster_centroids():
    """6.1.4: online k-means (winner = argmax_k w_k . x); each prototype ends within 0.02 of its cluster centre."""
    centres = torch.tensor([[2.0, 0.0, 0.0, 1.0], [-1.0, 2.0, 0.0, 0.0], [0.0, -1.0, 2.0, 0.0]], dtype=DT)
    X, idx = clustered(centres, 300 * 300, 0.2, seed=9)
    layer = nn.Linear(4, 3, bias=False).to(DT)
    with torch.no_grad():  # k-means style seeding: one sample of each cluster, in shuffled order
        layer.weight.copy_(torch.stack([X[(idx == c).nonzero()[0, 0]] for c in (2, 0, 1)]))
    opt = Local(layer.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + 0.05 * t))
    rule = R.create("instar")
    assert rule.competition == "hard"
    train(rule, layer, X.split(300), lr=0.0, optimizer=_Stepping(opt, sched))
    dist = torch.cdist(layer.weight.detach(), centres)
    assert float(dist.min(dim=1).values.max()) < 0.02, dist
    assert sorted(dist.argmin(dim=1).tolist()) == [0, 1, 2]


# ------------------------------------------------------------------------------------------------ 6.3 SoftHebb
def test_softhebb_winner_sign():
    """6.3.1: at every (n, p) exactly one positive y~ (at argmax u) and sum_k |y~_k| = 1."""
    u = torch.randn(3, 6, 4, 5, generator=torch.Generator().manual_seed(10), dtype=DT) * 3
    y = anti_hebbian_losers(soft_wta(u, 0.65), u)
    positive = y > 0
    assert bool((positive.sum(dim=1) == 1).all())
    assert torch.equal(positive, hard_wta(u).bool())
    assert torch.allclose(y.abs().sum(dim=1), torch.ones(3, 4, 5, dtype=DT), atol=1e-12)


def test_softhebb_adaptive_rate_at_init_and_at_unit_norm():
    """6.3.2: radius-25 init gives a rate multiplier of about sqrt(24) = 4.9; it is ~0 at norm 1."""
    torch.manual_seed(11)
    layer = nn.Linear(2000, 16, bias=False).to(DT)
    R.softhebb_init_(layer.weight)  # radius 25
    assert float((layer.weight.detach().norm(dim=1) - 25).abs().max()) < 2.5
    rule = R.create("softhebb")
    x = torch.randn(10, 2000, dtype=DT)
    delta = rule.update(layer, x, layer(x).detach())
    assert rule.rates.shape == (16,)
    assert abs(float(rule.rates.mean()) - 4.9) < 0.1
    assert float((rule.rates - math.sqrt(24)).abs().max()) < 0.3
    # the rate multiplies each neuron's max-abs normalised update (whose elements are at most 1)
    assert bool((delta.abs().amax(dim=1) <= rule.rates * (1 + 1e-12)).all())
    assert float((delta.abs().amax(dim=1) / rule.rates).max()) == pytest.approx(1.0, rel=1e-12)
    with torch.no_grad():
        layer.weight.div_(layer.weight.norm(dim=1, keepdim=True))
    rule.update(layer, x, layer(x).detach())
    assert float(rule.rates.max()) < 1e-4
    assert softhebb_rate(25.0) == pytest.approx(math.sqrt(24), rel=1e-9)


def test_softhebb_norms_converge_to_one():
    """6.3.3: 10 units, 16-d clustered data, batch 10, t_inv 1, eta0 0.05, q 0.5, initial norms ~12 -> all norms 1."""
    g = torch.Generator().manual_seed(12)
    centres = torch.randn(10, 16, generator=g, dtype=DT)
    centres = centres / centres.norm(dim=1, keepdim=True)
    X, _ = clustered(centres, 1500 * 10, 0.1, seed=13)
    layer = nn.Linear(16, 10, bias=False).to(DT)
    torch.manual_seed(14)
    R.softhebb_init_(layer.weight, radius=12.0)
    assert float(layer.weight.detach().norm(dim=1).min()) > 6
    rule = R.create("softhebb", t_inv=1.0, q=0.5)
    train(rule, layer, X.split(10), lr=0.05)
    norms = layer.weight.detach().norm(dim=1)
    assert float((norms - 1).abs().max()) < 5e-3, norms
    assert float(rule.rates.max()) < 0.08


# ------------------------------------------------------------------------------------------------ 6.4 Krotov-Hopfield
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_krotov_max_step_equals_learning_rate(kind):
    """6.4.1: after every minibatch max|W_new - W_old| == eps_t exactly (here with a linearly annealed eps_t)."""
    g = torch.Generator().manual_seed(15)
    if kind == "linear":
        layer = nn.Linear(12, 6, bias=False).to(DT)
        X = torch.rand(8, 20, 12, generator=g, dtype=DT)
    else:
        layer = nn.Conv2d(2, 6, 3, padding=1, bias=False).to(DT)
        X = torch.rand(8, 3, 2, 6, 6, generator=g, dtype=DT)
    with torch.no_grad():
        layer.weight.normal_(generator=g)
    rule = R.create("krotov", p=3.0, k=3, delta=0.4)
    opt = Local(layer.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / 8)
    for x in X:
        eps = opt.param_groups[0]["lr"]
        before = layer.weight.detach().clone()
        with torch.no_grad():
            u = layer(x)
        write_update(layer.weight, rule.update(layer, x, u))
        opt.step()
        sched.step()
        step = (layer.weight.detach() - before).abs().max()
        assert float(step) == pytest.approx(eps, rel=1e-12, abs=0)


def test_krotov_active_units_reach_unit_p_sphere():
    """6.4.2 (scaled down): p 3, k 2, Delta 0.4, 20 units, 16-d positive clustered data, linear anneal.

    Units that win regularly (win fraction > 1/(10 H)) reach sum_i |w_i|^p = 1; units that never win keep their
    initial (far larger) p-norms.
    """
    p, H, D, epochs, nb, B = 3.0, 20, 16, 50, 10, 100
    g = torch.Generator().manual_seed(16)
    centres = torch.rand(8, D, generator=g, dtype=DT)
    X = centres[torch.randint(0, 8, (nb * B,), generator=g)] + 0.1 * torch.rand(nb * B, D, generator=g, dtype=DT)
    layer = nn.Linear(D, H, bias=False).to(DT)
    with torch.no_grad():
        layer.weight.normal_(generator=g)
    rule = R.create("krotov", p=p, k=2, delta=0.4)
    opt = Local(layer.parameters(), lr=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1 - e / epochs)
    for _ in range(epochs):
        perm = torch.randperm(nb * B, generator=g)
        train(rule, layer, X[perm].split(B), lr=0.0, optimizer=opt)
        sched.step()
    W = layer.weight.detach()
    current = (W.sign() * W.abs().pow(p - 1)) @ X.t()
    wins = torch.bincount(current.argmax(dim=0), minlength=H).to(DT) / X.shape[0]
    active = wins > 1 / (10 * H)
    assert int(active.sum()) >= 4
    pnorm = W.abs().pow(p).sum(dim=1)
    assert float((pnorm[active] - 1).abs().max()) < 0.01, pnorm[active]
    assert float(pnorm[~active].min()) > 1.5  # never-winning units did not move to the sphere


def test_krotov_rank_k_unit_moves_away_from_input():
    """6.4.3: the k-th ranked unit moves away from the input ((w_new - w_old) . x < 0 when I_k > 0), the top unit
    towards it, and every other unit does not move."""
    g = torch.Generator().manual_seed(17)
    for k in (2, 3, 5):
        layer = nn.Linear(10, 6, bias=False).to(DT)
        with torch.no_grad():
            w = torch.rand(6, 10, generator=g, dtype=DT) + 0.05
            layer.weight.copy_(0.7 * w / w.norm(dim=1, keepdim=True))  # positive, inside the unit sphere
        x = torch.rand(1, 10, generator=g, dtype=DT)
        u = layer(x).detach()
        order = u[0].argsort(descending=True)
        assert float(u[0, order[k - 1]]) > 0
        before = layer.weight.detach().clone()
        opt = Local(layer.parameters(), lr=0.01)
        write_update(layer.weight, R.create("krotov", k=k, delta=0.4).update(layer, x, u))
        opt.step()
        moved = (layer.weight.detach() - before) @ x[0]
        assert float(moved[order[k - 1]]) < 0
        assert float(moved[order[0]]) > 0
        others = [i for i in range(6) if i not in (int(order[0]), int(order[k - 1]))]
        assert torch.equal(layer.weight.detach()[others], before[others])


# ------------------------------------------------------------------------------------------------ 6.2 GHL
def ghl_case(seed: int, kind: str = "conv", dtype=DT):
    g = torch.Generator().manual_seed(seed)
    if kind == "conv":
        layer = nn.Conv2d(2, 3, 3, padding=1, bias=False).to(dtype)
        x = torch.randn(2, 2, 5, 5, generator=g, dtype=dtype)
    else:
        layer = nn.Linear(6, 4, bias=False).to(dtype)
        x = torch.randn(9, 6, generator=g, dtype=dtype)
    with torch.no_grad():
        layer.weight.normal_(generator=g)
    grad = torch.randn(layer.weight.shape, generator=g, dtype=dtype)
    grad[torch.rand(grad.shape, generator=g) < 0.25] = 0.0
    return layer, x, layer(x).detach(), grad


def independent_soft_oja(layer: nn.Conv2d, x: torch.Tensor, t_inv: float) -> torch.Tensor:
    """GHL's local term from unfolded patches (rules.md 1.2), written without the library: F.unfold + einsum."""
    patches = F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride)  # (N, F, L)
    w = layer.weight.reshape(layer.out_channels, -1)
    u = torch.einsum("kf,nfl->nkl", w, patches)
    y = torch.softmax(t_inv * u, dim=1)
    delta = torch.einsum("nkl,nfl->kf", y, patches) - (y * u).sum(dim=(0, 2))[:, None] * w
    return (delta / delta.abs().max()).reshape(layer.weight.shape)


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ghl_dhat_max_abs_is_one(kind, dtype):
    """6.2.3: max|Dhat| == 1 for any non-zero input."""
    layer, x, u, _ = ghl_case(18, kind, dtype)
    dhat = R.create("ghl", mode="local_only").update(layer, x, u)
    assert abs(float(dhat.abs().max()) - 1.0) < (1e-7 if dtype == torch.float32 else 1e-15)


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_ghl_duplicated_batch_leaves_dhat_unchanged(kind):
    """6.2.3: the exact invariance: the same samples twice give the same Dhat."""
    layer, x, u, grad = ghl_case(19, kind)
    rule = R.create("ghl", t_inv=0.65)
    one = rule.update(layer, x, u, grad=grad)
    two = rule.update(layer, torch.cat([x, x]), torch.cat([u, u]), grad=grad)
    assert torch.allclose(one, two, rtol=1e-12, atol=1e-15)
    assert torch.allclose(
        R.create("ghl", mode="local_only").update(layer, x, u),
        R.create("ghl", mode="local_only").update(layer, torch.cat([x, x]), torch.cat([u, u])),
        rtol=1e-12, atol=1e-15,
    )


@pytest.mark.parametrize("kind", ["conv", "linear"])
def test_ghl_sign_rule_through_sgd(kind):
    """6.2.4: grad = |Dhat| sign(g); SGD (lr eta, wd 0) steps -eta |Dhat| sign(g): sign -sign(g) where |Dhat| > 0,
    magnitude eta |Dhat|, zero where either factor is zero, never more than eta."""
    layer, x, u, g = ghl_case(20, kind)
    eta = 0.03
    dhat = R.create("ghl", mode="local_only").update(layer, x, u)
    before = layer.weight.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=eta, momentum=0.0, weight_decay=0.0)
    write_update(layer.weight, R.create("ghl").update(layer, x, u, grad=g))
    assert torch.equal(layer.weight.grad.sign(), g.sign() * (dhat != 0))
    assert torch.allclose(layer.weight.grad.abs(), dhat.abs() * (g != 0), rtol=0, atol=1e-15)
    opt.step()
    step = layer.weight.detach() - before
    both = (dhat != 0) & (g != 0)
    assert bool(both.any()) and bool((~both).any())
    assert torch.equal(step[both].sign(), -g[both].sign())
    assert torch.allclose(step, -eta * dhat.abs() * g.sign(), rtol=0, atol=1e-15)
    assert bool((step[~both] == 0).all())
    assert float(step.abs().max()) <= eta * (1 + 1e-12)


def test_ghl_local_only_and_sign_only():
    """6.2.5 and 1.9: local_only = CompetitiveOja(soft, max_abs) = an independent implementation; sign_only = -sign(g)."""
    layer, x, u, g = ghl_case(21)
    local = R.create("ghl", t_inv=0.65, mode="local_only").update(layer, x, u)
    same = R.create("competitive_oja", competition="soft", t_inv=0.65, normalize="max_abs").update(layer, x, u)
    assert torch.equal(local, same)
    assert torch.allclose(local, independent_soft_oja(layer, x, 0.65), rtol=0, atol=1e-13)
    # the optimizer then moves W by +eta * Dhat: pure local soft-WTA Oja
    before = layer.weight.detach().clone()
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    write_update(layer.weight, local)
    opt.step()
    assert torch.allclose(layer.weight.detach() - before, 0.1 * local, rtol=0, atol=1e-15)
    assert torch.equal(R.create("ghl", mode="sign_only").update(layer, x, u, grad=g), -g.sign())


def test_ghl_local_only_dense_norms_attracted_to_one():
    """6.2.6: local-only GHL (weight decay 0) on clustered data: ||w_k|| -> 1 for every unit that learns."""
    g = torch.Generator().manual_seed(22)
    centres = torch.randn(4, 8, generator=g, dtype=DT)
    centres = 2 * centres / centres.norm(dim=1, keepdim=True)
    X, _ = clustered(centres, 600 * 32, 0.1, seed=23)
    layer = linear(8, 4, seed=24, scale=1.0)
    opt = torch.optim.SGD(layer.parameters(), lr=0.02)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / 600)
    train(R.create("ghl", mode="local_only"), layer, X.split(32), lr=0.0, optimizer=_Stepping(opt, sched))
    norms = layer.weight.detach().norm(dim=1)
    assert float((norms - 1).abs().max()) < 0.05, norms


class _Stepping:
    """An optimizer and its per-iteration scheduler, stepped together."""

    def __init__(self, opt, sched):
        self.opt, self.sched = opt, sched

    def step(self):
        self.opt.step()
        self.sched.step()


# ------------------------------------------------------------------------------------------------ 6.5 SWTA
def test_swta_z_sums_to_one_and_low_temperature_is_hard_wta():
    """6.5.3: z sums to 1 per (n, p) (exp and poly); with T -> 0 the update equals the hard-WTA (k = 1) update."""
    g = torch.Generator().manual_seed(25)
    s = torch.rand(3, 5, 4, 4, generator=g, dtype=DT)
    for rule in (R.create("swta"), R.create("swta", competition="poly", power=20.0)):
        z = rule.compete(s)
        assert bool((z >= 0).all())
        assert torch.allclose(z.sum(dim=1), torch.ones(3, 4, 4, dtype=DT), atol=1e-12)
    assert torch.equal(R.create("swta", competition="kwta", k=2).compete(s).sum(dim=1), torch.full((3, 4, 4), 2.0, dtype=DT))

    layer = nn.Conv2d(2, 5, 3, bias=False).to(DT)
    with torch.no_grad():
        layer.weight.normal_(generator=g)
    x = torch.rand(3, 2, 6, 6, generator=g, dtype=DT)
    u = layer(x).detach()
    cold = R.create("swta", temperature=1e-6)
    # the data is tie-free by a wide margin relative to T
    with torch.no_grad():
        sims = raised_cosine_sq(cold.check_layer(layer), x, u)
    sims = sims.sort(dim=1, descending=True).values
    assert float((sims[:, 0] - sims[:, 1]).min()) > 1e-4
    hard = R.create("swta", competition="kwta", k=1).update(layer, x, u)
    assert torch.allclose(cold.update(layer, x, u), hard, rtol=1e-10, atol=1e-12)


def test_swta_prototypes_reach_centroids():
    """6.5.3: with T = 0.02 the prototypes approach the centroids of their (cosine) Voronoi cells."""
    centres = torch.tensor([[1.0, 0.1, 0.1, 0.1], [0.1, 1.0, 0.1, 0.1], [0.1, 0.1, 1.0, 0.1]], dtype=DT)
    X, idx = clustered(centres, 200 * 300, 0.05, seed=26)
    layer = nn.Linear(4, 3, bias=False).to(DT)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([X[(idx == c).nonzero()[0, 0]] for c in (1, 2, 0)]))
    opt = Local(layer.parameters(), lr=0.5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + 0.05 * t))
    train(R.create("swta", temperature=0.02), layer, X.split(300), lr=0.0, optimizer=_Stepping(opt, sched))
    dist = torch.cdist(layer.weight.detach(), centres)
    assert float(dist.min(dim=1).values.max()) < 0.02
    assert sorted(dist.argmin(dim=1).tolist()) == [0, 1, 2]
