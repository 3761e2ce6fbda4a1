"""Checkpoints: atomic writes, safe loads, and a resumed run that ends bit for bit where the uninterrupted one does."""

from __future__ import annotations

import functools
import os
import pathlib
import random
from collections import OrderedDict

import numpy as np
import pytest
import torch
from ignite.engine import Events
from ignite.handlers import LRScheduler
from torch import nn
from torch.utils.data import TensorDataset

from hebbian.data import in_memory_loader, load_dataset
from hebbian.optim import Local
from hebbian.rules import Krotov, Oja, SoftHebb, softhebb_init_
from hebbian.trainers import DeterministicHebbianTrainer, HebbianTrainer
from hebbian.trainers.checkpoint import (
    InvalidCheckpointError,
    KeepPreviousDiskSaver,
    NonFiniteCheckpointError,
    RNGStates,
    non_finite_entries,
    remove_partial_saves,
    RuleStates,
    checkpoint_objects,
    latest_checkpoint,
    load_checkpoint,
    resume_from,
    setup_checkpointing,
)

EPOCHS, BATCH = 2, 128


def small_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    # Dropout draws from the global RNG in every (train-mode) forward: the RNG state must resume exactly too
    return nn.Sequential(OrderedDict(flat=nn.Flatten(), drop=nn.Dropout(0.1), h1=nn.Linear(64, 16, bias=False),
                                     act=nn.ReLU(), h2=nn.Linear(16, 12, bias=False), head=nn.Linear(12, 10)))


def build(seed: int = 0, device: str = "cpu"):
    """A fresh run: SoftHebb (stateful) + Krotov, SGD with momentum, a linear LambdaLR anneal, deterministic engine."""
    net = small_net(seed)
    softhebb_init_(net.h1.weight, radius=5.0)
    net = net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5)
    trainer = DeterministicHebbianTrainer(net, {"h1": SoftHebb(t_inv=2.0), "h2": Krotov(k=3)}, opt, device=device)
    total = EPOCHS * 12  # digits: 1442 training images, 128 per batch -> 12 batches
    scheduler = LRScheduler(torch.optim.lr_scheduler.LambdaLR(opt, lambda it: 1.0 - it / total))
    trainer.add_event_handler(Events.ITERATION_STARTED, scheduler)
    return net, opt, trainer, scheduler


@functools.lru_cache(maxsize=1)
def digits():
    return load_dataset("digits")


def loader(device: str = "cpu"):
    return in_memory_loader(TensorDataset(*(t.to(device) for t in digits().tensors)), BATCH, shuffle=True)


def final_state(net, opt, trainer) -> dict:
    return {"model": {k: v.cpu() for k, v in net.state_dict().items()},
            "momentum": [opt.state[p]["momentum_buffer"].cpu() for p in (net.h1.weight, net.h2.weight)],
            "rates": trainer.bindings[0].rule.rates.cpu(), "iteration": trainer.state.iteration}


def assert_bitwise_equal(a: dict, b: dict) -> float:
    assert a["iteration"] == b["iteration"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for x, y in zip(a["momentum"], b["momentum"]):
        assert torch.equal(x, y)
    assert torch.equal(a["rates"], b["rates"])
    return max((a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"])


@functools.lru_cache(maxsize=None)
def uninterrupted(device: str) -> dict:
    net, opt, trainer, _ = build(device=device)
    torch.manual_seed(123)
    trainer.run(loader(device), epochs=EPOCHS)
    return final_state(net, opt, trainer)


def test_resume_mid_epoch_is_bit_for_bit(tmp_path, device):  # device: every available one (conftest fixture)
    device = str(device)
    net, opt, trainer, scheduler = build(device=device)
    handler = setup_checkpointing(trainer, checkpoint_objects(trainer, lr_scheduler=scheduler), tmp_path,
                                  every=5, n_saved=2)
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=17), lambda e: e.terminate())  # epoch 2, batch 5
    torch.manual_seed(123)
    trainer.run(loader(device), epochs=EPOCHS)
    assert trainer.state.iteration == 17
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["checkpoint_15.pt", "checkpoint_17.pt"]
    assert handler.last_checkpoint == tmp_path / "checkpoint_17.pt"

    for name in ("checkpoint_17.pt", "checkpoint_15.pt"):  # the terminate-time and the periodic checkpoint
        # different initial weights: everything must come from the file
        net, opt, trainer, scheduler = build(seed=99, device=device)
        loaded = resume_from(tmp_path / name if name != "checkpoint_17.pt" else tmp_path,
                             checkpoint_objects(trainer, lr_scheduler=scheduler))
        assert loaded.name == name
        torch.manual_seed(123)
        trainer.run(loader(device))
        max_diff = assert_bitwise_equal(final_state(net, opt, trainer), uninterrupted(device))
        assert max_diff == 0.0


# ---------------------------------------------------------------------- what is saved
def test_everything_saved_loads_with_weights_only(tmp_path):
    net, opt, trainer, scheduler = build()
    setup_checkpointing(trainer, checkpoint_objects(trainer, lr_scheduler=scheduler), tmp_path, every=5)
    torch.manual_seed(0)
    trainer.run(loader(), max_iters=5)
    ckpt = torch.load(tmp_path / "checkpoint_5.pt", weights_only=True)  # plain torch.load, not our helper
    assert sorted(ckpt) == ["lr_scheduler", "model", "optimizer", "rules", "trainer"]
    assert ckpt["rules"]["h1"]["hyperparameters"] == {"t_inv": 2.0, "q": 0.5, "p": 2.0}
    assert torch.equal(ckpt["rules"]["h1"]["rates"], trainer.bindings[0].rule.rates)
    assert ckpt["trainer"]["iteration"] == 5 and set(ckpt["trainer"]["rng_states"]) >= {"python", "numpy", "torch"}


def test_rule_states_round_trip_and_refuse_other_layers():
    net = small_net()
    trainer = HebbianTrainer(net, {"h1": SoftHebb(t_inv=3.0), "h2": Oja(normalize="sum")}, Local(net.parameters()))
    trainer.run([torch.rand(8, 1, 8, 8)], epochs=1)
    state = RuleStates(trainer).state_dict()
    other = small_net()
    fresh = HebbianTrainer(other, {"h1": SoftHebb(), "h2": Oja()}, Local(other.parameters()))
    RuleStates(fresh).load_state_dict(state)
    assert fresh.bindings[0].rule.t_inv == 3.0 and fresh.bindings[1].rule.normalize == "sum"
    assert torch.equal(fresh.bindings[0].rule.rates, trainer.bindings[0].rule.rates)
    net3 = small_net()
    only_h1 = HebbianTrainer(net3, {"h1": SoftHebb()}, Local(net3.parameters()))
    with pytest.raises(ValueError, match=r"rule states are for layers \['h1', 'h2'\].*bound layers are \['h1'\]"):
        RuleStates(only_h1).load_state_dict(state)
    with pytest.raises(ValueError, match="already included"):
        checkpoint_objects(trainer, model=net)
    wrapped = HebbianTrainer(nn.DataParallel(net3), {"h1": SoftHebb()}, Local(net3.parameters()))
    assert checkpoint_objects(wrapped)["model"] is net3  # saved without the "module." prefix
    with pytest.raises(TypeError, match="RuleBinding"):
        RuleStates([1, 2])


# ---------------------------------------------------------------------- atomic writes
def _crashing_save(real_save, exc):
    def save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial checkpoint bytes")  # a torch file begins like a zip archive, then: crash
        f.flush()
        raise exc
    return save


@pytest.mark.parametrize("n_saved", [1, 2])
@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch, n_saved, exc):
    net = small_net()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters(), lr=0.1))
    setup_checkpointing(trainer, checkpoint_objects(trainer), tmp_path, every=2, n_saved=n_saved)
    snapshot = {}
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=2), lambda e: snapshot.update(
        {k: v.clone() for k, v in net.state_dict().items()}))

    @trainer.on(Events.ITERATION_COMPLETED(once=3))
    def _break_torch_save(_):
        monkeypatch.setattr(torch, "save", _crashing_save(torch.save, exc))

    with pytest.raises(type(exc)):
        trainer.run([torch.rand(4, 1, 8, 8) for _ in range(6)], epochs=1)
    monkeypatch.undo()
    assert trainer.state.iteration == 4
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_2.pt"]  # no partial file, no temp file left
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint_2.pt"
    other = small_net(seed=5)
    fresh = HebbianTrainer(other, Oja(), Local(other.parameters(), lr=0.1))
    resume_from(tmp_path, checkpoint_objects(fresh))
    assert fresh.state.iteration == 2
    for k, v in other.state_dict().items():
        assert torch.equal(v, snapshot[k]), k


def test_saver_deletes_old_files_only_after_a_successful_save(tmp_path):
    saver = KeepPreviousDiskSaver(tmp_path)
    saver({"a": torch.ones(2)}, "checkpoint_1.pt")
    saver.remove("checkpoint_1.pt")  # what Checkpoint asks before writing the next one
    assert (tmp_path / "checkpoint_1.pt").exists()
    saver({"a": torch.zeros(2)}, "checkpoint_2.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_2.pt"]
    saver.remove("checkpoint_2.pt")  # Checkpoint re-saving the same file name
    saver({"a": torch.full((2,), 3.0)}, "checkpoint_2.pt")
    assert torch.equal(load_checkpoint(tmp_path / "checkpoint_2.pt")["a"], torch.full((2,), 3.0))
    with pytest.raises(ValueError, match="atomic"):
        KeepPreviousDiskSaver(tmp_path, atomic=False)


# ---------------------------------------------------------------------- safe loads
class _Payload:
    """Unpickling this would create a file: the kind of side effect ``weights_only=True`` must prevent."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_a_checkpoint_with_pickled_code_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "checkpoint_9.pt"
    torch.save({"model": {"w": torch.ones(1)}, "payload": _Payload(marker)}, path)
    net = small_net()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters()))
    with pytest.raises(InvalidCheckpointError, match=r"not a valid checkpoint \(truncated or not written by hebbian\)"
                       ) as err:
        resume_from(tmp_path, checkpoint_objects(trainer))
    assert "weights_only" not in str(err.value) and "\n" not in str(err.value)  # none of torch's advice
    assert not marker.exists()


def _good_checkpoint(path):
    net = small_net()
    torch.save({"model": net.state_dict()}, path)
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["empty", "truncated", "text", "list"])
def test_damaged_files_are_not_valid_checkpoints(tmp_path, damage):
    path = tmp_path / "checkpoint_3.pt"
    data = _good_checkpoint(path)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "text":
        path.write_text("model: 1\n")
    else:
        torch.save([torch.ones(2)], path)
    with pytest.raises(InvalidCheckpointError, match="not a valid checkpoint"):
        load_checkpoint(path)


def test_non_finite_checkpoints_are_neither_written_nor_loaded(tmp_path):
    net = small_net()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters()))
    saver = KeepPreviousDiskSaver(tmp_path)
    state = {"model": {k: v.clone() for k, v in net.state_dict().items()}}
    state["model"]["h2.weight"][1, 2] = float("inf")
    with pytest.raises(NonFiniteCheckpointError, match=r"model\.h2\.weight"):
        saver(state, "checkpoint_1.pt")
    assert list(tmp_path.iterdir()) == []  # nothing written, no partial file
    # a file that holds NaN (written by other means) is refused when loaded, and nothing is loaded
    state["model"]["h2.weight"][1, 2] = float("nan")
    torch.save({**state, **{k: v.state_dict() for k, v in checkpoint_objects(trainer).items() if k != "model"}},
               tmp_path / "checkpoint_2.pt")
    before = net.h1.weight.clone()
    with pytest.raises(NonFiniteCheckpointError, match=r"non-finite \(NaN/Inf\) values in model\.h2\.weight"):
        resume_from(tmp_path, checkpoint_objects(trainer))
    assert torch.equal(net.h1.weight, before)
    assert non_finite_entries({"a": [torch.ones(2), {"b": torch.tensor([1.0, float("-inf")])}],
                               "n": torch.arange(3)}) == ["a.1.b"]


def test_a_partial_save_is_named_as_such_and_cleaned_up(tmp_path, monkeypatch):
    saver = KeepPreviousDiskSaver(tmp_path)
    monkeypatch.setattr(torch, "save", lambda obj, f, **kw: (f.write(b"PK partial"), os.kill(os.getpid(), 0),
                                                             (_ for _ in ()).throw(SystemExit(9))))
    with pytest.raises(SystemExit):
        saver({"a": torch.ones(1)}, "checkpoint_4.pt")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []  # an exception removes it at once
    # a killed process cannot: what it leaves is a dot-file ending in .partial (and ignite's tmpXXXXXXXX)
    (tmp_path / ".checkpoint_4.pt.abc123.partial").write_bytes(b"PK")
    (tmp_path / "tmpab_c1234").write_bytes(b"PK")
    (tmp_path / "checkpoint_2.pt").write_bytes(b"kept")
    (tmp_path / "notes.txt").write_text("kept")
    removed = remove_partial_saves(tmp_path)
    assert sorted(p.name for p in removed) == [".checkpoint_4.pt.abc123.partial", "tmpab_c1234"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2.pt", "notes.txt"]


def test_rng_states_round_trip():
    states = RNGStates()
    saved = states.state_dict()
    a = (torch.rand(3), np.random.rand(), random.random())
    states.load_state_dict(saved)
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_resume_errors(tmp_path):
    net = small_net()
    trainer = HebbianTrainer(net, Oja(), Local(net.parameters()))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        resume_from(tmp_path, checkpoint_objects(trainer))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resume_from(tmp_path / "nope.pt", checkpoint_objects(trainer))
    torch.save({"model": net.state_dict()}, tmp_path / "checkpoint_1.pt")
    with pytest.raises(KeyError, match=r"no entries \['optimizer', 'rules', 'trainer'\]"):
        resume_from(tmp_path, checkpoint_objects(trainer))
    with pytest.raises(ValueError, match="every"):
        setup_checkpointing(trainer, {"model": net}, tmp_path, every=0)
