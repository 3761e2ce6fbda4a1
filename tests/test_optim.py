"""hebbian.optim: ``write_update`` (grad = -Delta W) and the ``Local`` optimizer (W <- W + lr * Delta W)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from hebbian.optim import Local, write_update

DT = torch.float64


def model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.Conv2d(2, 3, 3)).to(DT)


def deltas(m: nn.Module, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=g, dtype=DT) for p in m.parameters()]


def test_write_update_stores_minus_delta_and_reuses_the_buffer(device):
    p = nn.Parameter(torch.randn(3, 4, device=device))
    d = torch.randn(3, 4, device=device, requires_grad=True)
    write_update(p, d)
    assert torch.equal(p.grad, -d.detach()) and not p.grad.requires_grad
    buffer = p.grad
    d2 = torch.randn(3, 4, device=device)
    write_update(p, d2)
    assert p.grad is buffer and torch.equal(p.grad, -d2)  # written in place: optimizers may hold the buffer


def test_local_step_is_w_plus_lr_delta(device):
    m = model().to(device)
    before = [p.detach().clone() for p in m.parameters()]
    ds = [d.to(device) for d in deltas(m)]
    opt = Local(m.parameters(), lr=0.05)
    for p, d in zip(m.parameters(), ds):
        write_update(p, d)
    assert opt.step() is None
    for p, b, d in zip(m.parameters(), before, ds):
        assert torch.allclose(p.detach(), b + 0.05 * d, rtol=0, atol=1e-15)


def test_local_param_groups_and_parameters_without_grad():
    m = model()
    lin, conv = m[0], m[1]
    opt = Local([{"params": lin.parameters(), "lr": 0.1}, {"params": conv.parameters()}], lr=0.01)
    before = [p.detach().clone() for p in m.parameters()]
    d_lin = deltas(lin)
    for p, d in zip(lin.parameters(), d_lin):
        write_update(p, d)
    write_update(conv.weight, torch.ones_like(conv.weight))  # conv.bias has no grad: it must not move
    opt.step()
    assert torch.allclose(lin.weight.detach(), before[0] + 0.1 * d_lin[0])
    assert torch.allclose(lin.bias.detach(), before[1] + 0.1 * d_lin[1])
    assert torch.allclose(conv.weight.detach(), before[2] + 0.01)
    assert torch.equal(conv.bias.detach(), before[3])


def test_local_accepts_named_parameters():
    m = model()
    reference = copy.deepcopy(m)
    opt = Local(m.named_parameters(), lr=0.2)
    ref_opt = Local(reference.parameters(), lr=0.2)
    for net in (m, reference):
        for p, d in zip(net.parameters(), deltas(net)):
            write_update(p, d)
    opt.step()
    ref_opt.step()
    for p, q in zip(m.parameters(), reference.parameters()):
        assert torch.equal(p, q)
    assert opt.param_groups[0]["lr"] == 0.2


def test_local_closure_is_called():
    m = model()
    calls = []

    def closure():
        calls.append(1)
        return torch.tensor(3.0)

    assert float(Local(m.parameters(), lr=0.1).step(closure)) == 3.0 and calls == [1]


def test_local_with_lr_schedulers():
    """A LambdaLR (Krotov's linear anneal) and a StepLR scale the step exactly."""
    p = nn.Parameter(torch.zeros(2, dtype=DT))
    opt = Local([p], lr=0.04)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1 - epoch / 4)
    expected = torch.zeros(2, dtype=DT)
    for epoch in range(4):
        write_update(p, torch.ones(2, dtype=DT))
        opt.step()
        expected += 0.04 * (1 - epoch / 4)
        sched.step()
    assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-15)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)

    opt = Local([p], lr=1.0)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    before = p.detach().clone()
    for _ in range(3):
        write_update(p, torch.ones(2, dtype=DT))
        opt.step()
        step_lr.step()
    assert torch.allclose(p.detach(), before + 1.0 + 0.5 + 0.25, rtol=0, atol=1e-15)


def test_local_state_dict_roundtrip():
    m = model()
    opt = Local(m.parameters(), lr=0.3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    for p, d in zip(m.parameters(), deltas(m)):
        write_update(p, d)
    opt.step()
    sched.step()
    state, sched_state = opt.state_dict(), sched.state_dict()
    assert state["param_groups"][0]["lr"] == pytest.approx(0.03)

    m2 = model()
    opt2 = Local(m2.parameters(), lr=5.0)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=1, gamma=0.1)
    opt2.load_state_dict(state)
    sched2.load_state_dict(sched_state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.03)
    before = [p.detach().clone() for p in m2.parameters()]
    ds = deltas(m2, seed=5)
    for p, d in zip(m2.parameters(), ds):
        write_update(p, d)
    opt2.step()
    for p, b, d in zip(m2.parameters(), before, ds):
        assert torch.allclose(p.detach(), b + 0.03 * d, rtol=0, atol=1e-15)


@pytest.mark.parametrize("lr", [-1e-3, float("nan")])
def test_local_rejects_negative_lr(lr):
    with pytest.raises(ValueError, match="lr must be a non-negative number"):
        Local(model().parameters(), lr=lr)


@pytest.mark.parametrize("nesterov", [False, True])
def test_write_update_with_sgd_momentum_and_weight_decay_matches_formula(nesterov):
    """SGD on grad = -Delta: b <- mu b + (1 - tau)(-Delta + lambda w) (b = g on the first step), w <- w - lr b
    (nesterov: w <- w - lr (g + mu b))."""
    lr, mu, wd = 0.1, 0.9, 0.01
    dampening = 0.0 if nesterov else 0.2
    p = nn.Parameter(torch.randn(3, 4, dtype=DT, generator=torch.Generator().manual_seed(2)))
    opt = torch.optim.SGD([p], lr=lr, momentum=mu, weight_decay=wd, dampening=dampening, nesterov=nesterov)
    w = p.detach().clone()
    buf = None
    g = torch.Generator().manual_seed(3)
    for _ in range(4):
        delta = torch.randn(3, 4, dtype=DT, generator=g)
        write_update(p, delta)
        opt.step()
        grad = -delta + wd * w
        buf = grad.clone() if buf is None else mu * buf + (1 - dampening) * grad
        w = w - lr * ((grad + mu * buf) if nesterov else buf)
        assert torch.allclose(p.detach(), w, rtol=0, atol=1e-13)


def test_write_update_with_plain_sgd_moves_along_delta():
    p = nn.Parameter(torch.zeros(5, dtype=DT))
    delta = torch.arange(5, dtype=DT)
    write_update(p, delta)
    torch.optim.SGD([p], lr=0.5).step()
    assert torch.equal(p.detach(), 0.5 * delta)


def row_sparse(shape, rows, seed):
    g = torch.Generator().manual_seed(seed)
    d = torch.zeros(shape, dtype=DT)
    d[rows] = torch.randn(len(rows), *shape[1:], generator=g, dtype=DT)
    return d


def test_row_sparse_writes_leave_exactly_minus_delta_in_the_gradient(device):
    p = nn.Parameter(torch.randn(6, 4, dtype=DT, device=device))
    for seed, rows in enumerate(([0, 3], [1, 3, 5], [2])):
        d = row_sparse((6, 4), rows, seed).to(device)
        write_update(p, d, torch.tensor(rows, device=device))
        assert torch.equal(p.grad, -d)  # the previous write's rows were cleared
    d = torch.randn(6, 4, dtype=DT, device=device)
    write_update(p, d)  # dense again
    assert torch.equal(p.grad, -d)


def test_a_gradient_changed_in_place_after_a_row_write_is_cleared_whole():
    from hebbian.rules.buffers import nonzero_rows

    p = nn.Parameter(torch.randn(6, 4, dtype=DT))
    write_update(p, row_sparse((6, 4), [1], 0), torch.tensor([1]))
    assert nonzero_rows(p.grad) is None  # the first write allocates the gradient and writes it whole
    write_update(p, row_sparse((6, 4), [1], 0), torch.tensor([1]))
    assert nonzero_rows(p.grad).tolist() == [1]
    p.grad[4] = 9.0  # someone else wrote another row: the note no longer holds
    assert nonzero_rows(p.grad) is None
    d = row_sparse((6, 4), [2], 1)
    write_update(p, d, torch.tensor([2]))
    assert torch.equal(p.grad, -d)


def test_local_steps_only_the_noted_rows_and_records_them_exactly():
    from hebbian.rules.buffers import rows_written_since, written_rows

    torch.manual_seed(0)
    sparse, dense = nn.Parameter(torch.randn(6, 4, dtype=DT)), None
    dense = nn.Parameter(sparse.detach().clone())
    opt_s, opt_d = Local([sparse], lr=0.3), Local([dense], lr=0.3)
    write_update(sparse, torch.zeros(6, 4, dtype=DT))  # allocates the gradient (a first write is always whole)
    for seed, rows in enumerate(([0, 3], [1, 3, 5])):
        d = row_sparse((6, 4), rows, seed)
        write_update(sparse, d, torch.tensor(rows))
        write_update(dense, d)
        version = sparse._version
        opt_s.step()
        opt_d.step()
        torch.testing.assert_close(sparse, dense, rtol=0, atol=1e-15)
        assert rows_written_since(sparse, version).tolist() == rows
        assert rows_written_since(sparse, version - 1) is None  # only the exact version before the step counts
        assert rows_written_since(dense, dense._version - 1) is None  # a dense step records nothing
        index = rows_written_since(sparse, version)
        stepped = written_rows(sparse, index)  # the step's own values of those rows, no second gather ...
        assert written_rows(sparse, index) is stepped and torch.equal(stepped, sparse.detach()[rows])
    with torch.no_grad():
        sparse[index[0], 0] += 1.0  # ... until anything else writes the weight: then they are gathered anew
    assert written_rows(sparse, index) is not stepped
    assert torch.equal(written_rows(sparse, index), sparse.detach()[index])


def test_momentum_sgd_sees_the_full_row_sparse_gradient():
    p = nn.Parameter(torch.zeros(5, 3, dtype=DT))
    q = nn.Parameter(torch.zeros(5, 3, dtype=DT))
    opt_p = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    opt_q = torch.optim.SGD([q], lr=0.1, momentum=0.9)
    for seed, rows in enumerate(([0], [4], [0, 2])):
        d = row_sparse((5, 3), rows, seed)
        write_update(p, d, torch.tensor(rows))
        write_update(q, d)
        opt_p.step()
        opt_q.step()
    assert torch.equal(p, q)  # momentum keeps moving rows the latest update did not touch
