"""The Krotov rule's cached p-metric weights stay exact across optimizer steps (float64, several batches)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from hebbian.models.layers import PMetricLinear
from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer


def reference_steps(w: torch.Tensor, batches, p: float, k: int, delta: float, lr: float) -> torch.Tensor:
    """The numpy notebook's minibatch loop, written out densely in float64."""
    w = w.clone()
    for x in batches:
        current = x @ (torch.sign(w) * w.abs() ** (p - 1)).t()
        order = current.argsort(dim=1, descending=True)
        g = torch.zeros_like(current)
        g[torch.arange(len(x)), order[:, 0]] = 1.0
        g[torch.arange(len(x)), order[:, k - 1]] = -delta
        ds = g.t() @ x - (g * current).sum(0).unsqueeze(1) * w
        w = w + lr * ds / ds.abs().max()
    return w


def trained(layer: nn.Linear, batches, p: float) -> torch.Tensor:
    model = nn.Sequential(layer, nn.ReLU(), nn.Linear(8, 2)).double()
    trainer = HebbianTrainer(model, {"0": create("krotov", p=p, k=3, delta=0.3)},
                             Local(model.named_parameters(), lr=0.05))
    trainer.run([(x, torch.zeros(len(x), dtype=torch.long)) for x in batches], max_epochs=1)
    return model[0].weight.detach()


def test_training_with_cached_p_weights_follows_the_dense_reference():
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(5, 6, generator=g, dtype=torch.float64) for _ in range(6)]
    for p in (3.0, 4.5):
        start = torch.randn(8, 6, generator=g, dtype=torch.float64)
        expected = reference_steps(start, batches, p, 3, 0.3, 0.05)
        for layer in (nn.Linear(6, 8, bias=False), PMetricLinear(6, 8, bias=False, p=p)):
            layer = layer.double()
            with torch.no_grad():
                layer.weight.copy_(start)
            torch.testing.assert_close(trained(layer, batches, p), expected, rtol=1e-10, atol=1e-12)


def test_a_cloned_rule_starts_with_an_empty_cache():
    rule = create("krotov", p=3.0, k=2)
    layer = nn.Linear(4, 3, bias=False)
    x = torch.rand(2, 4)
    rule.update(layer, x, layer(x))
    clone = copy.deepcopy(rule)
    assert clone._p_weights._buf is None and rule._p_weights._buf is not None


def test_updates_kept_by_a_handler_are_not_overwritten_by_later_batches():
    from ignite.engine import Events

    g = torch.Generator().manual_seed(1)
    batches = [(torch.rand(5, 6, generator=g), torch.zeros(5, dtype=torch.long)) for _ in range(4)]
    model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 2))
    trainer = HebbianTrainer(model, {"0": create("krotov", p=3.0, k=3)}, Local(model.named_parameters(), lr=0.05))
    kept, copies = [], []

    @trainer.on(Events.ITERATION_COMPLETED)
    def keep(engine):
        kept.append(engine.state.hebbian_updates["0"])
        copies.append(engine.state.hebbian_updates["0"].clone())

    trainer.run(batches, max_epochs=1)
    for a, b in zip(kept, copies):
        assert torch.equal(a, b)
    assert len({t.data_ptr() for t in kept}) == len(kept)  # each kept update is its own memory


def test_an_unkept_update_is_built_in_the_same_memory_every_batch():
    from ignite.engine import Events

    g = torch.Generator().manual_seed(2)
    batches = [(torch.rand(5, 6, generator=g), torch.zeros(5, dtype=torch.long)) for _ in range(4)]
    model = nn.Sequential(nn.Linear(6, 8, bias=False), nn.ReLU(), nn.Linear(8, 2))
    trainer = HebbianTrainer(model, {"0": create("krotov", p=3.0, k=3)}, Local(model.named_parameters(), lr=0.05))
    rule = trainer.bindings[0].rule  # the trainer's own copy
    seen = set()
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: seen.add(rule._delta._buf.data_ptr()))
    trainer.run(batches, max_epochs=1)
    assert len(seen) == 1


def test_after_a_row_sparse_step_only_the_written_rows_are_recomputed(monkeypatch):
    import hebbian.rules.krotov as krotov
    from hebbian.optim import write_update
    from hebbian.rules.krotov import PWeightCache, p_weights

    w = nn.Parameter(torch.randn(6, 4, dtype=torch.float64))
    cache, opt = PWeightCache(), Local([w], lr=0.2)
    write_update(w, torch.zeros(6, 4, dtype=torch.float64))  # allocate the gradient
    cache(w, 3.0)
    shapes = []
    real = krotov.p_weights
    monkeypatch.setattr(krotov, "p_weights", lambda t, p, out=None: shapes.append(tuple(t.shape)) or real(t, p, out))
    delta = torch.zeros(6, 4, dtype=torch.float64)
    delta[[1, 4]] = 1.5
    write_update(w, delta, torch.tensor([1, 4]))
    opt.step()
    got = cache(w, 3.0)
    assert shapes == [(2, 4)]  # the two written rows, not the whole weight
    assert torch.equal(got, p_weights(w.detach(), 3.0))
    with torch.no_grad():
        w.mul_(2.0)  # any other in-place write: recomputed whole
    assert torch.equal(cache(w, 3.0), p_weights(w.detach(), 3.0)) and shapes[-1] == (6, 4)
