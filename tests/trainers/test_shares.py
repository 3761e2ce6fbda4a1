"""``shares`` (``train.shares``): one process computes each batch's statistics as N data-parallel processes do.

The equality with real gloo processes, bit for bit, is in ``test_distributed.py``; here: the rank-order sum, that
``None`` and 1 are the whole-batch path, that N shares are the rule's own sums of the shares (computed here through
the rule's interface, not through the trainer), the RNG and buffers a step leaves, and the one-line errors.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import ignite.distributed as idist
import pytest
import torch
from torch import nn

from hebbian.optim import Local
from hebbian.rules import Krotov, Oja, RewardModulated
from hebbian.rules.layers import LayerView
from hebbian.trainers import HebbianTrainer
from hebbian.trainers.distributed import RowSparse, add_in_rank_order, compact
from hebbian.trainers.modulation import perturbed


def mlp(seed: int = 0, normed: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    middle = [("bn", nn.BatchNorm1d(8)), ("drop", nn.Dropout(0.5))] if normed else []
    return nn.Sequential(OrderedDict([("h1", nn.Linear(10, 8, bias=False)), *middle, ("act", nn.ReLU()),
                                      ("h2", nn.Linear(8, 6, bias=False)), ("head", nn.Linear(6, 3))]))


def batches(sizes=(16, 16, 17), seed: int = 3):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 10, generator=g), torch.randint(0, 3, (n,), generator=g)) for n in sizes]


def train(shares, rule=lambda: Krotov(k=3, delta=0.4), data=None, normed=False, seed=None):
    model = mlp(normed=normed)
    sizes = []
    model.h1.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    trainer = HebbianTrainer(model, rule(), Local(model.parameters(), lr=0.05), supervised_from="head", shares=shares)
    if seed is not None:
        torch.manual_seed(seed)
    trainer.run(data or batches(), epochs=1)
    return model, sizes, trainer.state.hebbian_updates


def test_add_in_rank_order_adds_the_shares_left_to_right_and_keeps_them():
    g = torch.Generator().manual_seed(0)
    parts = [[{"a": torch.randn(500, generator=g) * 10.0 ** torch.randint(-3, 4, (500,), generator=g)}]
             for _ in range(3)]
    kept = copy.deepcopy(parts)
    a, b, c = (p[0]["a"] for p in parts)
    total = add_in_rank_order(parts)[0]["a"]
    assert torch.equal(total, (a + b) + c)
    assert not torch.equal((a + b) + c, a + (b + c))  # the order matters for these numbers: the test is not vacuous
    assert all(torch.equal(p[0]["a"], q[0]["a"]) for p, q in zip(parts, kept))
    half = [[{"a": t[0]["a"].half()}] for t in parts]  # (as the all-reduce's buffer: in float32 at least)
    h = add_in_rank_order(half)[0]["a"]
    assert h.dtype == torch.float16
    assert torch.equal(h, ((a.half().float() + b.half().float()) + c.half().float()).half())
    assert torch.equal(add_in_rank_order(parts[:1])[0]["a"], a)


def test_a_row_sparse_sum_is_added_on_the_union_of_the_rows_and_noted():
    # (Krotov's fully connected update notes the only rows it wrote; the sum stays the rule's row-sparse update)
    from hebbian.rules.buffers import nonzero_rows, note_nonzero_rows

    g = torch.Generator().manual_seed(1)
    tensors, written = [], [torch.tensor([0, 3]), torch.tensor([3, 5]), torch.tensor([7])]
    for rows in written:
        t = torch.zeros(9, 4)
        t[rows] = torch.randn(len(rows), 4, generator=g)
        note_nonzero_rows(t, rows)
        tensors.append(t)
    dense = (tensors[0].clone() + tensors[1]) + tensors[2]
    first = tensors[0].clone()
    note_nonzero_rows(first, written[0])
    # the other shares as noted tensors, or compacted to their rows (as the trainer keeps them)
    for others in ([[{"delta": t}] for t in tensors[1:]], [compact([{"delta": t}]) for t in tensors[1:]]):
        start = first.clone()
        note_nonzero_rows(start, written[0])
        total = add_in_rank_order([[{"delta": start}], *others])[0]["delta"]
        assert torch.equal(total, dense)
        assert total is start and nonzero_rows(total).tolist() == [0, 3, 5, 7]
    assert isinstance(compact([{"delta": tensors[1]}])[0]["delta"], RowSparse)
    # without a note on share 0's tensor: the dense sum, a new tensor
    total = add_in_rank_order([[{"delta": tensors[0].clone()}], *[compact([{"delta": t}]) for t in tensors[1:]]])
    assert torch.equal(total[0]["delta"], dense)


def test_none_and_one_share_are_the_whole_batch_path():
    (whole, sizes_none, _), (one, sizes_one, _) = train(None), train(1)
    assert sizes_none == sizes_one == [16, 16, 17]  # one forward pass of each whole batch
    for key, value in whole.state_dict().items():
        assert torch.equal(value, one.state_dict()[key]), key


def test_two_shares_are_the_rules_sums_of_the_shares_added_in_rank_order():
    # one step's update, recomputed through the rule's interface: statistics of rows 0::2 and 1::2 (each from its own forward
    # pass), s0 + s1, finalize; and within rounding of the whole batch's update
    x, y = batches(sizes=(17,))[0]
    model, sizes, updates = train(2, rule=Oja, data=[(x, y)])
    assert sizes == [8, 9]  # share 1 (8 rows), then share 0 (9 rows)
    reference = mlp()
    for name in ("h1", "h2"):
        layer = getattr(reference, name)
        view, rule = LayerView(layer), Oja()
        inputs = []
        handle = layer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
        with torch.no_grad():
            for r in range(2):
                reference(x[r::2])
            reference(x)
        handle.remove()
        s0, s1 = (rule.statistics(view, inputs[r], layer(inputs[r])) for r in range(2))
        delta = rule.finalize(view, {k: s0[k] + s1[k] for k in s0})
        whole = rule.finalize(view, rule.statistics(view, inputs[2], layer(inputs[2])))
        assert torch.equal(updates[name], delta), name
        assert (delta - whole).abs().max() <= 1e-6
    assert not torch.equal(model.h1.weight, reference.h1.weight)


def test_each_share_starts_from_the_step_s_rng_and_buffers_and_the_step_leaves_process_0_s():
    x, y = batches(sizes=(17,))[0]
    model, _, _ = train(2, rule=Oja, data=[(x, y)], normed=True, seed=11)
    after = torch.get_rng_state()
    copy_ = mlp(normed=True)
    torch.manual_seed(11)
    copy_.train()
    with torch.no_grad():
        copy_(x[0::2])  # process 0's share alone: its BatchNorm running statistics and its dropout draw
    assert torch.equal(torch.get_rng_state(), after)
    for key in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"):
        assert torch.equal(model.state_dict()[key], copy_.state_dict()[key]), key


def test_exploration_of_a_share_is_that_process_s_draw():
    rule = RewardModulated(exploration=1.0, post="noise")
    out = torch.zeros(4, 3)
    torch.manual_seed(0)
    draws = [rule.perturb(out) for _ in range(3)]
    for r in range(3):
        torch.manual_seed(0)
        assert torch.equal(perturbed(rule, out, (r, 3)), draws[r])


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "2"])
def test_bad_shares_are_one_line_errors(bad):
    model = mlp()
    with pytest.raises(ValueError, match=r"^shares must be a positive integer or None, got ") as err:
        HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), supervised_from="head", shares=bad)
    assert "\n" not in str(err.value)


def test_a_batch_smaller_than_the_shares_is_refused():
    with pytest.raises(ValueError, match=r"a batch of 2 samples cannot be split into shares=3 shares"):
        train(3, data=batches(sizes=(2,)))


def test_in_a_data_parallel_run_shares_is_the_number_of_processes(monkeypatch):
    monkeypatch.setattr(idist, "get_world_size", lambda: 3)
    model = mlp()
    with pytest.raises(ValueError, match=r"^shares=2 in a data-parallel run of 3 processes: .* use shares=3"):
        HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), supervised_from="head", shares=2)
    for ok in (None, 1, 3):
        HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), supervised_from="head", shares=ok)


@pytest.mark.parametrize("sizes, parted", [((16, 16, 16), False), ((17, 16, 16), True)])
def test_a_draw_between_steps_is_followed_while_the_processes_are_in_step_and_said_once_when_not(sizes, parted):
    # a DataLoader draws its seed from the torch RNG each epoch, in every process: one process with shares follows
    # that draw for every share while the shares have drawn alike (dropout of equal shares), and cannot once a batch
    # of 17 (9 and 8 rows: dropout masks of unequal size) has parted them
    from ignite.engine import Events

    from hebbian.trainers.shares import SharesRNGWarning

    model = mlp(normed=True)
    trainer = HebbianTrainer(model, Oja(), Local(model.parameters(), lr=0.05), supervised_from="head", shares=2)
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda _: torch.rand(1))
    with pytest.warns(SharesRNGWarning) if parted else _no_warning(SharesRNGWarning) as record:
        trainer.run(batches(sizes), epochs=1)
    if parted:
        assert len([w for w in record if issubclass(w.category, SharesRNGWarning)]) == 1


def _no_warning(category):
    import contextlib
    import warnings

    @contextlib.contextmanager
    def context():
        with warnings.catch_warnings():
            warnings.simplefilter("error", category)
            yield []
    return context()
