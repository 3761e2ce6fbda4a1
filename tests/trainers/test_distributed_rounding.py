"""How far data-parallel training is from one process, and why a ranking rule can end up far (issue 22).

Two processes compute, bit for bit, what one process computes when it adds the statistics of the two shares of every
batch (rows ``0::2`` and ``1::2``, as the sampler splits them; ``test_distributed.py`` checks that against real gloo
processes). So these tests run the two trajectories side by side in one process, on the same global batches of the
bundled digits: ``whole`` sums each batch at once (one process), ``shares`` adds the two shares' sums (two processes).
The sums differ by float rounding only (the association of the sum). A rule without a ranking stays within rounding
of one process over a run; a ranking rule (Krotov's winner and rank-k unit) turns that rounding into a different update
as soon as two units' currents are tied within it, and from there on the runs part.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
from torch import Tensor, nn

from hebbian.rules import Krotov, create
from hebbian.rules.base import LearningRule, Statistics
from hebbian.rules.layers import LayerView

ROUNDING = 1e-5  # |dW| of two runs that differ by float32 rounding only, over hundreds of steps (they reach ~1e-6)
P, K = 3.0, 7


@pytest.fixture(scope="module")
def digits() -> Tensor:
    from sklearn.datasets import load_digits

    return torch.tensor(load_digits().data, dtype=torch.float32) / 16.0  # (1797, 64) in [0, 1]


def batches(data: Tensor, size: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    while True:
        yield data[torch.randint(0, len(data), (size,), generator=g)]


class Trajectory:
    """One layer trained by ``rule`` with ``W <- W + lr * dW``; the batch sum taken at once or as two shares."""

    def __init__(self, rule: LearningRule, units: int, shares: int, init: Callable[[Tensor], Tensor]) -> None:
        torch.manual_seed(0)
        self.layer = nn.Linear(64, units, bias=False)
        with torch.no_grad():
            init(self.layer.weight)
        self.rule, self.view, self.shares = rule, LayerView(self.layer), shares

    def statistics(self, x: Tensor) -> Statistics:
        parts = [{k: v.clone() for k, v in self.rule.statistics(self.view, xs, self.layer(xs)).items()}
                 for xs in (x[r::self.shares] for r in range(self.shares))]
        return parts[0] if self.shares == 1 else {k: parts[0][k] + parts[1][k] for k in parts[0]}

    @torch.no_grad()
    def step(self, x: Tensor, lr: float) -> None:
        self.layer.weight.add_(self.rule.finalize(self.view, self.statistics(x)), alpha=lr)

    @property
    def weight(self) -> Tensor:
        return self.layer.weight.detach()


def currents(w: Tensor, x: Tensor) -> Tensor:
    """Krotov's p = 3 current :math:`I_{nk} = \\sum_i |w_{ki}| w_{ki} x_{ni}`, ``(S, M)``."""
    return x @ (w.abs() * w).T


def ranked(current: Tensor) -> Tensor:
    """Per sample, the winner and the rank-K unit (the two units Krotov's rule updates), ``(S, 2)``."""
    top = current.topk(K, dim=1).indices
    return top[:, [0, K - 1]]


def test_one_step_equals_one_process_to_rounding(digits):
    x = next(batches(digits, 128))
    for name in ("krotov", "oja", "softhebb", "sanger"):
        rule = Krotov(p=P, k=K, delta=0.4) if name == "krotov" else create(name)
        runs = [Trajectory(rule.clone(), 64, shares, nn.init.normal_) for shares in (1, 2)]
        for run in runs:
            run.step(x, lr=0.04)
        diff = (runs[0].weight - runs[1].weight).abs().max().item()
        ulps = diff / (torch.finfo(torch.float32).eps * runs[0].weight.abs().max().item())
        assert ulps <= 8, f"{name}: one step of two shares differs from one process by {diff:.3g} ({ulps:.1f} ulp)"


@pytest.mark.parametrize("name", ["oja", "sanger", "oja_subspace", "instar", "hpca"])
def test_a_rule_without_ranking_stays_within_rounding_of_one_process_over_a_run(digits, name):
    runs = [Trajectory(create(name), 32, shares, lambda w: nn.init.normal_(w, std=0.1)) for shares in (1, 2)]
    initial = runs[0].weight.clone()
    diffs = []
    for x in (b for b, _ in zip(batches(digits, 64), range(300))):
        for run in runs:
            run.step(x, lr=0.01)
        diffs.append((runs[0].weight - runs[1].weight).abs().max().item())
    assert all(torch.isfinite(run.weight).all() for run in runs)
    assert max(diffs) <= ROUNDING, f"{name}: two shares left one process by {max(diffs):.3g} within 300 steps"
    assert (runs[0].weight - initial).abs().max() > 100 * ROUNDING  # it trained: not a vacuous comparison


def test_krotov_parts_from_one_process_exactly_where_rounding_changes_a_winner(digits):
    # many units make near-ties frequent; the first one within rounding comes after ~180 steps here
    whole, shares = (Trajectory(Krotov(p=P, k=K, delta=0.4), 1024, n, nn.init.normal_) for n in (1, 2))
    for step, x in enumerate(batches(digits, 128), start=1):
        assert step <= 2000, "no ranking changed in 2000 steps: the two runs never parted"
        i_whole, i_shares = currents(whole.weight, x), currents(shares.weight, x)
        changed = (ranked(i_whole) != ranked(i_shares)).any(dim=1)
        whole.step(x, lr=0.04)
        shares.step(x, lr=0.04)
        diff = (whole.weight - shares.weight).abs().max().item()
        if not bool(changed.any()):
            # the same winners and rank-k units: the updates differ by rounding only, and so do the weights
            assert diff <= ROUNDING, f"step {step}: weights differ by {diff:.3g} without a changed ranking"
            continue
        # the first changed ranking: for each such sample, the unit each run chose at that rank and the one the other
        # run chose had currents tied within rounding (of the currents' own size) in the one-process run
        for n in changed.nonzero().flatten().tolist():
            for pos in range(2):
                a, b = ranked(i_whole)[n, pos], ranked(i_shares)[n, pos]
                gap = (i_whole[n, a] - i_whole[n, b]).abs().item()
                assert gap <= ROUNDING * i_whole[n].abs().max().item(), f"step {step}: units {a}, {b} apart by {gap}"
        assert diff >= 1e-3, f"step {step}: a changed winner moved the weights by only {diff:.3g}"
        break
