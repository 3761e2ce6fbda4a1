"""The TensorBoard handlers called directly: exact values, selection of layers, rank 0 only, misuse."""

from __future__ import annotations

import ignite.distributed as idist
import pytest
import torch
from ignite.engine import Engine, Events
from ignite.handlers import TensorboardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from hebbian.optim import Local
from hebbian.rules import create
from hebbian.trainers import HebbianTrainer
from hebbian.visualizers import (
    ActivationStatsHandler,
    FilterGridHandler,
    OnRankZero,
    UnitConvergenceHandler,
    UpdateHistHandler,
    UpdateNormHandler,
    attach_visualizers,
    unit_convergence,
)

from viz_helpers import conv_model, digits_loader, fc_model

ITER = Events.ITERATION_COMPLETED


def _engine(iteration: int = 7) -> Engine:
    engine = Engine(lambda e, b: None)
    engine.state.iteration, engine.state.epoch = iteration, 1
    return engine


def _read(logdir) -> EventAccumulator:
    acc = EventAccumulator(str(logdir), size_guidance={"images": 0, "histograms": 0, "scalars": 0})
    acc.Reload()
    return acc


def _log(tmp_path, handler, engine, event=ITER) -> EventAccumulator:
    logger = TensorboardLogger(log_dir=str(tmp_path))
    handler(engine, logger, event)
    logger.close()
    return _read(tmp_path)


def test_update_norm_is_the_frobenius_norm_of_each_update(tmp_path):
    engine = _engine()
    engine.state.hebbian_updates = {"a.b": torch.tensor([[3.0, 4.0]]), "c": torch.ones(2, 2)}
    acc = _log(tmp_path, UpdateNormHandler(tag="hebb", whitelist=["a"]), engine)
    assert acc.Tags()["scalars"] == ["hebb/update_norm/a/b"]
    (event,) = acc.Scalars("hebb/update_norm/a/b")
    assert (event.step, event.value) == (7, pytest.approx(5.0))


def test_update_handlers_log_nothing_before_the_first_update(tmp_path):
    acc = _log(tmp_path, UpdateHistHandler(), _engine())
    assert acc.Tags()["histograms"] == [] and acc.Tags()["scalars"] == []


def test_global_step_transform(tmp_path):
    engine = _engine()
    engine.state.hebbian_updates = {"c": torch.ones(2)}
    acc = _log(tmp_path, UpdateNormHandler(global_step_transform=lambda e, name: 1000 + e.state.iteration), engine)
    assert acc.Scalars("update_norm/c")[0].step == 1007


def test_unit_convergence_without_bindings_uses_p2_for_every_layer(tmp_path):
    model = conv_model()
    with torch.no_grad():
        model[0].weight.div_(model[0].weight.flatten(1).norm(dim=1).view(-1, 1, 1, 1))  # all 8 units at norm 1
    acc = _log(tmp_path, UnitConvergenceHandler(model, histogram=False), _engine())
    assert set(acc.Tags()["scalars"]) == {"unit_convergence/0", "unit_convergence/3"}
    assert acc.Scalars("unit_convergence/0")[0].value == 1.0
    assert acc.Scalars("unit_convergence/3")[0].value == unit_convergence(model[3].weight)


def test_unit_convergence_skips_rules_without_a_fixed_norm(tmp_path):
    model = fc_model()
    trainer = HebbianTrainer(model, create("hebb"), Local(model.named_parameters(), lr=0.01))
    acc = _log(tmp_path, UnitConvergenceHandler(model), trainer)
    assert acc.Tags()["scalars"] == [] and acc.Tags()["histograms"] == []


def test_activation_stats_with_a_probe_on_an_engine_without_bindings(tmp_path):
    torch.manual_seed(0)
    model = fc_model()
    probe = torch.rand(32, 1, 8, 8)
    acc = _log(tmp_path, ActivationStatsHandler(model, probe=(probe, None)), _engine())
    u = model[1](probe.flatten(1)).detach()
    assert acc.Scalars("activation/mean/1")[0].value == pytest.approx(float(u.mean()), rel=1e-5)
    assert acc.Scalars("activation/dead_fraction/1")[0].value == pytest.approx(float((u <= 0).all(0).float().mean()))
    assert {"activation/winner_usage/1", "activation/mean/3"} <= set(acc.Tags()["scalars"])  # no bindings: all


def test_activation_stats_winners_only_for_competitive_rules(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Linear(8, 8), nn.Linear(8, 10))
    trainer = HebbianTrainer(model, {"1": create("krotov"), "2": create("oja")}, Local(model.parameters(), lr=0.01))
    handler = ActivationStatsHandler(model, probe=torch.rand(16, 1, 8, 8), whitelist=["1", "2"])
    scalars = set(_log(tmp_path, handler, trainer).Tags()["scalars"])
    assert "activation/winner_usage/1" in scalars and "activation/winner_usage/2" not in scalars
    assert "activation/mean/2" in scalars and "activation/mean/3" not in scalars
    handler.remove()


def test_filter_grid_skips_layers_it_cannot_draw(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Linear(10, 3))  # fan-in 10: no image shape
    with pytest.warns(UserWarning, match="'2'"):
        handler = FilterGridHandler(model)
    acc = _log(tmp_path, handler, _engine())
    assert acc.Tags()["images"] == ["filters/1"]
    with pytest.raises(ValueError, match="no selected"), pytest.warns(UserWarning):
        FilterGridHandler(model, whitelist=["2"])
    with pytest.raises(ValueError, match="input_shape"):
        FilterGridHandler(model, input_shape={"1": (3, 8, 8)})


def test_filter_grid_input_shape_hint_applies_where_it_fits(tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 6), nn.Linear(6, 3))
    handler = FilterGridHandler(model, input_shape=(3, 4, 4), whitelist=["1"])
    assert handler.shapes == {"1.weight": (3, 4, 4)}
    image = _log(tmp_path, handler, _engine()).Images("filters/1")[0]
    assert (image.width, image.height) == (3 * 25 + 1, 2 * 25 + 1)  # 4x4 colour tiles shown 24x24


def test_handlers_refuse_other_loggers():
    with pytest.raises(RuntimeError, match="TensorboardLogger"):
        FilterGridHandler(fc_model())(_engine(), object(), ITER)


def test_nothing_is_written_or_recorded_on_other_ranks(tmp_path, monkeypatch):
    monkeypatch.setattr(idist, "get_rank", lambda: 1)
    model = fc_model()
    trainer = HebbianTrainer(model, create("krotov"), Local(model.named_parameters(), lr=0.01))
    logger = TensorboardLogger(log_dir=str(tmp_path))
    handlers = attach_visualizers(logger, trainer, every_iters=1, every_epochs=1)
    calls = []
    spy = OnRankZero(lambda *args: calls.append(args))
    logger.attach(trainer, spy, event_name=ITER)
    trainer.run(digits_loader(), epochs=1, epoch_length=3)
    logger.close()
    tags = _read(tmp_path).Tags()
    assert not any(tags[k] for k in ("images", "histograms", "scalars"))
    assert calls == []
    assert not handlers["activations"].recorder.armed and handlers["activations"].recorder.stats == {}


def test_attach_visualizers_rates(tmp_path):
    model = fc_model()
    trainer = HebbianTrainer(model, create("krotov"), Local(model.named_parameters(), lr=0.01))
    logger = TensorboardLogger(log_dir=str(tmp_path))
    handlers = attach_visualizers(logger, trainer, every_iters=None)
    assert set(handlers) == {"filters", "convergence", "weights", "update_hist"}
    with pytest.raises(ValueError, match="every_iters"):
        attach_visualizers(logger, trainer, every_iters=0)
    with pytest.raises(TypeError, match="model"):
        attach_visualizers(logger, _engine())
    logger.close()


def test_activation_stats_without_probe_log_the_pass_recorded_since_the_last_call(tmp_path):
    model = fc_model()
    handler = ActivationStatsHandler(model, whitelist=["1"])
    logger = TensorboardLogger(log_dir=str(tmp_path))
    model(torch.rand(8, 1, 8, 8))  # hooks not armed yet: nothing recorded
    handler(_engine(1), logger, ITER)  # logs nothing, arms
    x = torch.rand(8, 1, 8, 8)
    model(x)
    handler(_engine(2), logger, ITER)  # logs x's statistics, re-arms
    assert handler.recorder.armed
    handler.arm()  # armed from outside from now on: calls no longer re-arm
    model(x)
    handler(_engine(3), logger, ITER)
    assert not handler.recorder.armed
    logger.close()
    means = _read(tmp_path).Scalars("activation/mean/1")
    assert [e.step for e in means] == [2, 3]
    assert means[0].value == pytest.approx(float(model[1](x.flatten(1)).detach().mean()), rel=1e-5)
    handler.remove()
