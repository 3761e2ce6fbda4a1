"""Unit convergence: the fraction of units at the rule's fixed-point norm."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from hebbian.rules import create
from hebbian.trainers import HebbianTrainer
from hebbian.optim import Local
from hebbian.visualizers import ConvergenceHistory, fixed_point_p, unit_convergence, unit_norms
from hebbian.visualizers.convergence import convergence_targets

from viz_helpers import EPOCH_LENGTH, EPOCHS, digits_loader, fc_model


def test_unit_convergence_hand_computed():
    weight = torch.tensor([[1.0, 0.0], [0.6, 0.8], [2.0, 0.0], [0.5, 0.5]])
    assert unit_norms(weight, 2.0).tolist() == pytest.approx([1.0, 1.0, 4.0, 0.5])
    assert unit_convergence(weight, p=2.0, tol=0.1) == 0.5  # units 0 and 1
    assert unit_norms(weight, 1.0).tolist() == pytest.approx([1.0, 1.4, 2.0, 1.0])
    assert unit_convergence(weight, p=1.0, tol=0.1) == 0.5  # units 0 and 3
    assert unit_convergence(weight, p=1.0, tol=0.5) == 0.75  # 1.4 is within 0.5
    assert unit_convergence(weight, p=2.0, tol=10.0) == 1.0


def test_unit_convergence_of_conv_weights_is_per_output_channel():
    weight = torch.zeros(3, 2, 2, 2)
    weight[0, 0, 0, 0] = 1.0
    weight[1] = 0.5  # 8 * 0.25 = 2
    weight[2, 1] = 0.5  # 4 * 0.25 = 1
    assert unit_norms(weight).tolist() == pytest.approx([1.0, 2.0, 1.0])
    assert unit_convergence(weight) == pytest.approx(2 / 3)


def test_bad_arguments():
    with pytest.raises(ValueError, match="p must"):
        unit_convergence(torch.ones(2, 2), p=0)
    with pytest.raises(ValueError, match="tol must"):
        unit_convergence(torch.ones(2, 2), tol=-1)
    with pytest.raises(ValueError, match="weight"):
        unit_norms(torch.ones(3))


@pytest.mark.parametrize(
    "rule, p",
    [(create("krotov", p=3.0), 3.0), (create("softhebb"), 2.0), (create("oja"), 2.0), (create("sanger"), 2.0),
     (create("competitive_oja"), 2.0), (create("hebb"), None), (create("instar"), None), (create("swta"), None)],
    ids=lambda v: getattr(getattr(v, "info", None), "name", str(v)),
)
def test_fixed_point_exponent_comes_from_the_rule(rule, p):
    assert fixed_point_p(rule) == p


def test_convergence_history_records_every_epoch_and_plots():
    model = fc_model()
    trainer = HebbianTrainer(model, create("krotov", p=3.0), Local(model.named_parameters(), lr=0.02))
    history = ConvergenceHistory(trainer).attach(trainer)
    trainer.run(digits_loader(), epochs=EPOCHS, epoch_length=EPOCH_LENGTH)
    assert list(history.history) == ["1"]
    assert len(history.history["1"]) == EPOCHS
    assert history.history["1"][-1] == unit_convergence(model[1].weight, 3.0)
    restored = ConvergenceHistory(trainer)
    restored.load_state_dict(history.state_dict())
    assert restored.history == history.history
    fig, ax = history.plot()
    assert len(ax.get_lines()) == 1
    assert convergence_targets(trainer.bindings, p=1.5) == {"1": 1.5}
    with pytest.raises(TypeError, match="bindings"):
        ConvergenceHistory(Engine(lambda e, b: None))
