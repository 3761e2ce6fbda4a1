"""Data-parallel Hebbian training on 2 CPU processes (gloo) equals single-process training on the global batches.

One ``idist.Parallel(backend="gloo", nproc_per_node=2)`` launch (module fixture) runs every case; each rank trains on
its half of every global batch (DistributedSampler-style strided split; the last global batch of 17 splits 9/8, where
GHL must weight each rank's gradient by its share) and writes its final weights to a file in
``tmp_path``; the tests compare them with a single-process run of the same global batches: equal to float rounding,
and bit for bit equal to one process with ``shares=2`` (``train.shares``: a forward pass and the rules' sums per share,
added in rank order, which is what the all-reduce of two ranks computes), so that the association of the batch sum
is the only difference. A second launch of 3 processes with ``shares=3`` (their sums added in rank order, not in the
all-reduce's order) equals one process with ``shares=3`` bit for bit.
"""

from __future__ import annotations

import datetime
import importlib.util
import socket
from collections import OrderedDict
from pathlib import Path

import ignite.distributed as idist
import pytest
import torch
from ignite.engine import Events
from torch import nn

from hebbian.optim import Local
from hebbian.models import FoldiakLayer
from hebbian.rules import BCM, DFA, GHL, Foldiak, Krotov, Oja, RewardModulated, SoftHebb
from hebbian.trainers import HebbianTrainer
from hebbian.trainers.distributed import check_replicas_in_sync

# one torch thread in the test process and in every rank: a reduction (a BatchNorm mean) can round differently
# with another thread count, and the bit-for-bit checks compare the two
pytestmark = [pytest.mark.distributed, pytest.mark.usefixtures("single_thread")]

WORLD, GLOBAL_BATCH, STEPS, LAST_BATCH = 2, 16, 4, 17
TOL = 1e-6


def mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(h1=nn.Linear(10, 8, bias=False), act=nn.ReLU(), h2=nn.Linear(8, 6, bias=False),
                                     head=nn.Linear(6, 3)))


def lateral_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(h1=FoldiakLayer(10, 8, steps=10, output="rate"), head=nn.Linear(8, 3)))


def normed_net(seed: int) -> nn.Module:
    """BatchNorm (batch statistics per process, running statistics per process) and dropout (masks from the RNG)
    before a Hebbian layer: a process's share gives other values than the whole batch, beyond rounding."""
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(h1=nn.Linear(10, 8, bias=False), bn=nn.BatchNorm1d(8), act=nn.ReLU(),
                                     drop=nn.Dropout(0.3), h2=nn.Linear(8, 6, bias=False), head=nn.Linear(6, 3)))


def convnet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 3), act=nn.ReLU(), flat=nn.Flatten(),
                                     fc=nn.Linear(4 * 4 * 4, 3)))


# name -> (model factory, rule, wrap in DDP, input shape)
CASES = {
    "krotov": (mlp, lambda: Krotov(k=3, delta=0.4), False, (10,)),      # max-abs normalisation of the global sum
    "softhebb": (mlp, lambda: SoftHebb(t_inv=2.0), False, (10,)),
    "oja": (mlp, lambda: Oja(), False, (10,)),                         # mean over the global sample count
    "bcm": (mlp, lambda: BCM(tau=2.0), False, (10,)),                  # a threshold from the global y^2
    "foldiak": (lateral_net, lambda: Foldiak(alpha=0.3, gamma=0.1), False, (10,)),  # the layer's buffers too
    "krotov_conv_ddp": (convnet, lambda: Krotov(k=2), True, (1, 6, 6)),  # conv statistics; model wrapped in DDP
    # three-factor rules: each rank's output broadcast to its layers; the reward prediction and the trace from the
    # global batch's sums (no exploration: its noise is drawn per process)
    "three_factor_reward": (mlp, lambda: RewardModulated(trace_decay=0.5, activation="relu"), False, (10,)),
    "three_factor_feedback": (mlp, lambda: DFA(seed=1), False, (10,)),  # feedback matrices seeded per layer
}
# what a process computes from its share differs from the whole batch's values beyond rounding (each process's batch
# statistics, its own exploration draw): only one process with shares=2 equals the two processes
SHARES_CASES = {
    "batchnorm_dropout": (normed_net, lambda: Oja(), False, (10,)),
    "three_factor_exploring": (mlp, lambda: RewardModulated(exploration=0.5, post="noise", trace_decay=0.5), False,
                               (10,)),
}
# two epochs: after the uneven last batch (9 and 8 rows) the processes' RNGs are no longer in step
EPOCHS = {name: 2 for name in SHARES_CASES}
THREE = ("krotov", "batchnorm_dropout", "three_factor_exploring", "three_factor_reward")  # 3 processes, shares=3
if importlib.util.find_spec("hebbian.trainers.ghl") is not None:
    CASES["ghl_ddp"] = (convnet, lambda: GHL(t_inv=1.0), True, (1, 6, 6))  # sign of the DDP-averaged gradient
    CASES["ghl"] = (convnet, lambda: GHL(t_inv=1.0), False, (1, 6, 6))  # no DDP: the trainer averages the gradients


def global_batches(shape, seed: int = 7):
    """``STEPS`` global batches of ``GLOBAL_BATCH``, then an uneven one of ``LAST_BATCH`` (ranks get 9 and 8)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, *shape, generator=g), torch.randint(0, 3, (n,), generator=g))
            for n in [GLOBAL_BATCH] * STEPS + [LAST_BATCH]]


def make_trainer(name: str, model: nn.Module, shares=None):
    factory, rule, _, _ = {**CASES, **SHARES_CASES}[name]
    if name.startswith("ghl"):
        from hebbian.trainers.ghl import GHLTrainer, ghl_param_groups

        opt = torch.optim.SGD(ghl_param_groups(model, ["conv"], lr_conv=0.05, wd_conv=0.01, lr=0.01), lr=0.01)
        return GHLTrainer(model, rule(), opt, sync_check_every=1)
    supervised_from = -1 if factory is convnet else "head"
    return HebbianTrainer(model, rule(), Local(model.parameters(), lr=0.05), supervised_from=supervised_from,
                          sync_check_every=1, shares=shares)


def bare(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _worker(local_rank: int, out_dir: str, shares=None) -> None:
    torch.set_num_threads(1)
    rank, world = idist.get_rank(), idist.get_world_size()
    out = Path(out_dir)
    results = {}
    everything = {**CASES, **SHARES_CASES}
    cases = everything if shares is None else {n: everything[n] for n in THREE}
    for name, (factory, _, ddp, shape) in cases.items():
        # ranks start from different weights: the trainer broadcasts rank 0's at STARTED (DDP does it when wrapping)
        model = factory(seed=0 if rank == 0 else 100 + rank)
        if ddp:
            model = idist.auto_model(model)
            assert isinstance(model, nn.parallel.DistributedDataParallel)
        trainer = make_trainer(name, model, shares)
        local = [(x[rank::world], y[rank::world]) for x, y in global_batches(shape)]  # DistributedSampler split
        if world == 2:  # (3 ranks get 6, 5 and 5 rows, which all_gather cannot take)
            union = idist.all_gather(local[0][0])  # [rank 0 rows; rank 1 rows]
            expected = torch.cat([global_batches(shape)[0][0][r::world] for r in range(world)])
            assert torch.equal(union, expected)
        torch.manual_seed(5)  # the processes' RNGs in step (as a run's seed leaves them): dropout, exploration
        trainer.run(local, epochs=EPOCHS.get(name, 1))
        results[name] = {k: v.detach().clone() for k, v in bare(model).state_dict().items()}
    if shares is not None:
        torch.save(results, out / f"rank{rank}.pt")
        return

    # a deliberately desynchronised replica is caught by the trainer's periodic check
    model = mlp(seed=0)
    trainer = make_trainer("oja", model)

    @trainer.on(Events.ITERATION_STARTED(once=2))
    def _desync(_):
        if rank == 1:
            with torch.no_grad():
                model.h2.weight[0, 0] += 0.01

    try:
        trainer.run([(x[rank::world], y[rank::world]) for x, y in global_batches((10,))], epochs=1)
        results["desync_error"] = ""
    except RuntimeError as err:
        results["desync_error"] = f"{trainer.state.iteration}: {err}"
    # and directly
    try:
        check_replicas_in_sync([model.h1.weight], ["h1"])
        results["direct_in_sync"] = "ok"
    except RuntimeError as err:  # pragma: no cover - reported by the test
        results["direct_in_sync"] = str(err)
    torch.save(results, out / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # CPU processes: with a GPU visible, Ignite's gloo model would bind rank r to cuda:r (absent on a 1-GPU machine)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUDA_VISIBLE_DEVICES", "")
        with idist.Parallel(backend="gloo", nproc_per_node=WORLD, master_port=_free_port(),
                            timeout=datetime.timedelta(seconds=180)) as parallel:
            parallel.run(_worker, str(out))
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.fixture(scope="module")
def three_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp3")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUDA_VISIBLE_DEVICES", "")
        with idist.Parallel(backend="gloo", nproc_per_node=3, master_port=_free_port(),
                            timeout=datetime.timedelta(seconds=180)) as parallel:
            parallel.run(_worker, str(out), 3)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(3)]


def single_process(name: str, shares=None) -> dict:
    factory, _, _, shape = {**CASES, **SHARES_CASES}[name]
    model = factory(seed=0)
    trainer = make_trainer(name, model, shares)
    torch.manual_seed(5)
    trainer.run(global_batches(shape), epochs=EPOCHS.get(name, 1))
    return {k: v.detach() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process_on_the_global_batches(ranks, name):
    reference = single_process(name)
    initial = CASES[name][0](seed=0).state_dict()
    for key, ref in reference.items():
        for r in range(WORLD):
            got = ranks[r][name][key]
            diff = (got - ref).abs().max().item()
            assert diff <= TOL, f"{name} {key} rank {r}: max abs difference {diff:.3g}"
        assert torch.equal(ranks[0][name][key], ranks[1][name][key]), f"{name} {key}: replicas differ"
    moved = [k for k in reference if not torch.equal(reference[k], initial[k])]
    assert any(k.startswith(("h", "conv")) for k in moved), f"{name}: nothing trained"


def assert_equal_to_ranks(ranks, name: str, reference: dict) -> None:
    """Every tensor of process 0 (buffers too: BatchNorm's running statistics are each process's own) and every
    parameter of all processes equals ``reference`` bit for bit."""
    parameters = {k for k, _ in {**CASES, **SHARES_CASES}[name][0](seed=0).named_parameters()}
    for key, ref in reference.items():
        for r in range(len(ranks)) if key in parameters else [0]:
            got = ranks[r][name][key]
            assert torch.equal(got, ref), \
                f"{name} {key} rank {r}: differs from shares={len(ranks)} by {(got - ref).abs().max().item():.3g}"


@pytest.mark.parametrize("name", [n for n in {**CASES, **SHARES_CASES} if not n.startswith("ghl")])
def test_two_processes_equal_one_process_with_two_shares_bit_for_bit(ranks, name):
    # what makes 2 processes differ from 1 (by float rounding) is only the association of the batch sum: the
    # all-reduce of two ranks is one addition a + b, exact and the same on both ranks; one process with shares=2 runs
    # a forward pass per share (batch statistics, dropout masks, exploration draws as each process draws them) and
    # adds the two shares' sums, and so gets the same bits
    reference = single_process(name, shares=WORLD)
    assert_equal_to_ranks(ranks, name, reference)
    if name in SHARES_CASES:  # and not merely because the whole batch gives the same: these differ beyond rounding
        whole = single_process(name)
        assert any((whole[k] - reference[k]).abs().max() > 1e-4 for k in reference if k.startswith("h"))


@pytest.mark.slow  # a second launch, of 3 processes: about 20-40 s on a shared 2-core machine
@pytest.mark.parametrize("name", THREE)
def test_three_processes_with_three_shares_equal_one_process_with_three_shares_bit_for_bit(three_ranks, name):
    # three ranks add their sums in rank order ((s0 + s1) + s2, gathered) instead of the all-reduce's own order
    assert_equal_to_ranks(three_ranks, name, single_process(name, shares=3))


def test_desynchronised_replica_fails_loudly(ranks):
    for r in range(WORLD):
        message = ranks[r]["desync_error"]
        assert message.startswith("2: ") and "drifted apart" in message and "'h2'" in message and "'h1'" not in message
        assert ranks[r]["direct_in_sync"] == "ok"
