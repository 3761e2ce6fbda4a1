"""Details of the compat layer beyond the name table: input-normalised Krotov on conv layers, old-style rule errors,
``complete_forward``, warnings given once, the torch shim, and the main package staying free of the compat layer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hebbian.rules as R
from hebbian.compat.pytorch_hebbian import compat_warnings, torch_shims
from hebbian.compat.pytorch_hebbian.learning_rules import KrotovsRule, LearningRule
from hebbian.compat.pytorch_hebbian.optimizers import Local
from hebbian.compat.pytorch_hebbian.trainers import HebbianTrainer

pytestmark = pytest.mark.usefixtures("single_thread")
PACKAGE = Path(__file__).resolve().parents[2] / "hebbian"


def test_input_normalized_krotov_on_conv_matches_normalized_patches():
    """normalize=True on a conv layer equals the old equation on unit-norm patches (float64, patches unfolded here)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 6, 3, stride=2, padding=1, bias=False).double()
    x = torch.rand(3, 2, 7, 7, dtype=torch.float64)
    x[0, :, :4, :4] = 0  # some all-zero patches: left as they are
    with torch.no_grad():
        u = conv(x)
    delta = KrotovsRule(delta=0.2, k=3, norm=3, normalize=True).to_rule().update(conv, x, u)
    patches = F.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 18)
    norms = patches.norm(dim=1, keepdim=True)
    patches = patches / torch.where(norms == 0, torch.ones_like(norms), norms)
    w = conv.weight.detach().reshape(6, -1)
    current = (w.sign() * w.abs() ** 2) @ patches.t()
    order = current.argsort(dim=0, descending=True)
    g = torch.zeros_like(current)
    cols = torch.arange(patches.shape[0])
    g[order[0], cols], g[order[2], cols] = 1.0, -0.2
    ds = g @ patches - (g * current).sum(1, keepdim=True) * w
    torch.testing.assert_close(delta.reshape(6, -1), ds / ds.abs().max(), rtol=0, atol=1e-12)


def test_old_style_rule_with_a_wrong_update_shape_is_a_clear_error():
    class Wrong(LearningRule):
        def update(self, inputs, weights):
            return torch.zeros(3)

    model = nn.Sequential(nn.Linear(4, 2, bias=False), nn.Linear(2, 2))
    trainer = HebbianTrainer(model, Wrong(), Local(model.named_parameters(), lr=0.1))
    with pytest.raises(ValueError, match=r"Wrong.update must return a tensor with the weights' 8 elements"):
        trainer.run([(torch.rand(2, 4), torch.zeros(2))], epochs=1)


def test_a_subclass_overriding_update_trains_with_its_own_update():
    class Zero(KrotovsRule):
        def update(self, inputs, weights):
            return torch.zeros_like(weights)

    assert isinstance(Zero().to_rule(), R.LearningRule) and not isinstance(Zero().to_rule(), R.Krotov)
    assert isinstance(KrotovsRule().to_rule(), R.Krotov)


def test_complete_forward_runs_the_layers_after_the_last_hebbian_one():
    def running_mean_after(complete_forward: bool, batches: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.BatchNorm1d(3), nn.Linear(3, 2))
        trainer = HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.1),
                                 complete_forward=complete_forward)
        data = TensorDataset(torch.rand(4 * batches, 4), torch.zeros(4 * batches))
        trainer.run(DataLoader(data, batch_size=4), epochs=1)
        return model[1].running_mean.clone()

    # the first batch runs the whole forward (it counts every weight's uses); later ones stop after layer 0 unless
    # complete_forward is set
    assert torch.equal(running_mean_after(False, 2), running_mean_after(False, 1))
    assert not torch.equal(running_mean_after(True, 2), running_mean_after(True, 1))


def test_differences_are_warned_once():
    compat_warnings.reset_warnings()
    model = nn.Sequential(nn.Conv2d(1, 3, 3, bias=False), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with pytest.warns(compat_warnings.PytorchHebbianCompatWarning, match="true image patches"):
        HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.1))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        HebbianTrainer(model, KrotovsRule(), Local(model.named_parameters(), lr=0.1))


def test_reduce_lr_on_plateau_takes_verbose_again(capsys):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", verbose=True, patience=0, factor=0.5)
    assert isinstance(scheduler, torch_shims.ORIGINAL)
    scheduler.step(1.0)
    scheduler.step(0.5)  # no improvement: halve
    assert opt.param_groups[0]["lr"] == 0.5
    assert "reducing learning rate of group 0 to 5.0000e-01" in capsys.readouterr().out
    if torch_shims.needed():
        torch_shims.uninstall()
        try:
            with pytest.raises(TypeError):
                torch.optim.lr_scheduler.ReduceLROnPlateau(opt, verbose=True)
        finally:
            assert torch_shims.install()


def test_the_main_package_does_not_use_the_compat_layer():
    for path in PACKAGE.rglob("*.py"):
        if "compat" in path.relative_to(PACKAGE).parts:
            continue
        assert not re.search(r"^\s*(from|import)\s+hebbian\.compat", path.read_text(), flags=re.M), path
    assert not [info.name for info in R.rule_infos() if info.cls.__module__.startswith("hebbian.compat")]
