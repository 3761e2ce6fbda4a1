"""Every public name of pytorch-hebbian (595ec79) is importable from hebbian.compat.pytorch_hebbian and behaves.

``OLD_NAMES`` is the table of the old public names by module (read off the upstream source). Each name has a
behaviour check in ``CHECKS`` (a test fails if one is missing), and docs/migrating.md must mention every name.
Numerical checks compare with float64 references written here from the published equations.
"""

from __future__ import annotations

import importlib
import logging
import re
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Engine, Events
from ignite.handlers import ProgressBar
from ignite.handlers.tensorboard_logger import TensorboardLogger
from ignite.metrics import Accuracy, RunningAverage
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import hebbian.rules as R
from hebbian.compat.pytorch_hebbian import compat_warnings

pytestmark = pytest.mark.usefixtures("single_thread")

P = "hebbian.compat.pytorch_hebbian"
DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating.md"

#: (old module, name): the public names of pytorch-hebbian, as ``from pytorch_hebbian.<module> import <name>``
OLD_NAMES: List[Tuple[str, str]] = [
    *[("config", n) for n in ("PATH", "ROOT", "DATASETS_DIR", "OUTPUT_DIR", "MODELS_DIR", "PARAMS_DIR", "VIDEOS_DIR",
                              "TENSORBOARD_DIR", "IGNITE_BAR_FORMAT", "LOGGING_FORMAT")],
    *[("learning_rules", n) for n in ("LearningRule", "KrotovsRule", "HebbsRule", "OjasRule")],
    ("learning_rules.learning_rule", "LearningRule"), ("learning_rules.krotov", "KrotovsRule"),
    ("learning_rules.hebb", "HebbsRule"), ("learning_rules.oja", "OjasRule"),
    ("optimizers", "Local"), ("optimizers.local", "Local"),
    *[("trainers", n) for n in ("Trainer", "SupervisedTrainer", "HebbianTrainer")],
    *[("evaluators", n) for n in ("SimpleEngine", "Evaluator", "HebbianEvaluator", "SupervisedEvaluator")],
    *[("handlers.tensorboard_logger", n) for n in ("WeightsScalarHandler", "WeightsHistHandler",
                                                   "NumActivationsScalarHandler", "ActivationsScalarHandler",
                                                   "ActivationsHistHandler", "WeightsImageHandler")],
    ("handlers.tqdm_logger", "OutputHandler"), ("handlers.tqdm_logger", "TqdmLogger"),
    ("metrics", "UnitConvergence"), ("metrics.unit_convergence", "UnitConvergence"),
    *[("nn", n) for n in ("Flatten", "RePU", "SPELoss")],
    ("nn.layers", "Flatten"), ("nn.layers", "RePU"), ("nn.loss", "SPELoss"),
    *[("utils", n) for n in ("plot_to_img", "extract_image_patches", "split_dataset", "prepare_batch", "load_weights",
                             "extract_layers_from_state_dict", "get_device")],
]
NAMES = sorted({n for _, n in OLD_NAMES})


def old(module: str, name: str):
    return getattr(importlib.import_module(f"{P}.{module}"), name)


@pytest.mark.parametrize("module,name", OLD_NAMES, ids=[f"{m}.{n}" for m, n in OLD_NAMES])
def test_old_name_is_importable(module, name):
    value = old(module, name)
    assert value is not None
    package = module.split(".")[0]
    if package != module and package != "handlers":  # the package re-exports its modules' names, as before
        assert old(package, name) is value


def test_star_import_of_tensorboard_handlers():
    namespace: dict = {}
    exec(f"from {P}.handlers.tensorboard_logger import *", namespace)
    assert {n for n in namespace if not n.startswith("__")} == {n for m, n in OLD_NAMES
                                                               if m == "handlers.tensorboard_logger"}


@pytest.mark.parametrize("name", NAMES)
def test_migration_guide_covers_the_name(name):
    text = re.sub(r"```.*?```", "", DOC.read_text(), flags=re.S)  # code spans outside fenced blocks
    spans = re.findall(r"`([^`]+)`", text)
    assert any(re.search(rf"\b{name}\b", span) for span in spans), f"docs/migrating.md does not mention `{name}`"


def test_every_old_name_has_a_behaviour_check():
    assert set(CHECKS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_old_name_behaves(name, tmp_path, monkeypatch):
    compat_warnings.reset_warnings()
    CHECKS[name](tmp_path, monkeypatch)


# ============================================================================================ helpers
def fc_model(d: int = 6, m: int = 5, classes: int = 3) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([("flatten", nn.Flatten()), ("linear1", nn.Linear(d, m, bias=False)),
                                      ("repu", nn.ReLU()), ("linear2", nn.Linear(m, classes))]))


def conv_model(c: int = 2, m: int = 4, classes: int = 3) -> nn.Sequential:
    from collections import OrderedDict

    return nn.Sequential(OrderedDict([("conv1", nn.Conv2d(c, m, 3, stride=2, padding=1, bias=False)),
                                      ("repu", nn.ReLU()), ("flatten", nn.Flatten()),
                                      ("linear1", nn.Linear(m * 3 * 3, classes))]))


def loader(n: int = 24, shape=(6,), classes: int = 3, batch: int = 8, seed: int = 0) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *shape, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch)


def krotov_reference(x: torch.Tensor, w: torch.Tensor, p: float, k: int, delta: float, prec: float = 1e-30):
    """pytorch-hebbian's Krotov update in float64, from the equation: I = sgn(W)|W|^(p-1) x; g = 1 (top), -delta
    (rank k); ds = g x^T - (sum g I) W; dW = ds / max|ds|."""
    x, w = x.double(), w.double()
    current = (w.sign() * w.abs() ** (p - 1)) @ x.t()  # (M, S)
    order = current.argsort(dim=0, descending=True)
    g = torch.zeros_like(current)
    cols = torch.arange(x.shape[0])
    g[order[0], cols] = 1.0
    g[order[k - 1], cols] = -delta
    ds = g @ x - (g * current).sum(1, keepdim=True) * w
    return ds / max(float(ds.abs().max()), prec)


class Writer:
    """Stands in for a SummaryWriter: records (kind, tag, value, step)."""

    def __init__(self) -> None:
        self.records: List[tuple] = []

    def add_scalar(self, tag, value, step):
        self.records.append(("scalar", tag, float(value), step))

    def add_histogram(self, tag, values, global_step):
        self.records.append(("histogram", tag, np.asarray(values), global_step))

    def add_image(self, tag, image, step):
        self.records.append(("image", tag, image, step))

    def close(self):
        pass

    def tags(self, kind: str) -> Dict[str, object]:
        return {tag: value for k, tag, value, _ in self.records if k == kind}


def tb_logger(tmp_path) -> Tuple[TensorboardLogger, Writer]:
    logger = TensorboardLogger(log_dir=str(tmp_path / "tb"))
    logger.writer.close()
    logger.writer = Writer()
    return logger, logger.writer


def fire(handler, engine: Engine, logger, event=Events.EPOCH_COMPLETED) -> None:
    engine.state.epoch = 3
    handler(engine, logger, event)


# ============================================================================================ config
def check_config_folders(tmp_path, monkeypatch):
    config = importlib.import_module(f"{P}.config")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEBBIAN_DATA_ROOT", raising=False)
    assert config.ROOT == str(tmp_path)
    assert config.OUTPUT_DIR == str(tmp_path / "output")
    assert config.MODELS_DIR == str(tmp_path / "output" / "models")
    assert config.PARAMS_DIR == str(tmp_path / "output" / "params")
    assert config.VIDEOS_DIR == str(tmp_path / "output" / "videos")
    assert config.TENSORBOARD_DIR == str(tmp_path / "output" / "tensorboard" / "runs")
    assert config.DATASETS_DIR == str(tmp_path / "data")  # neither ../shared/datasets nor ./data exists here
    monkeypatch.setenv("HEBBIAN_DATA_ROOT", str(tmp_path / "elsewhere"))
    assert config.DATASETS_DIR == str(tmp_path / "elsewhere")
    assert (Path(config.PATH) / "config.py").is_file()


def check_config_formats(tmp_path, monkeypatch):
    config = importlib.import_module(f"{P}.config")
    record = logging.LogRecord("pytorch_hebbian.x", logging.INFO, __file__, 1, "hello", None, None)
    assert logging.Formatter(config.LOGGING_FORMAT).format(record) == "[INFO] pytorch_hebbian.x:hello"
    bar = ProgressBar(bar_format=config.IGNITE_BAR_FORMAT)
    assert "{bar}" in config.IGNITE_BAR_FORMAT and bar is not None


# ============================================================================================ rules
def check_learning_rule(tmp_path, monkeypatch):
    """An old-style subclass trains Linear and Conv2d layers: update = mean input (patch) -> W += lr * mean."""
    LearningRule = old("learning_rules", "LearningRule")
    HebbianTrainer, Local = old("trainers", "HebbianTrainer"), old("optimizers", "Local")

    class MeanInput(LearningRule):
        def update(self, inputs, weights):
            return inputs.mean(0, keepdim=True).expand_as(weights)

    for model, shape in ((fc_model(), (6,)), (conv_model(), (2, 5, 5))):
        data = loader(n=8, shape=shape, batch=8)
        w0 = next(p for n, p in model.named_parameters() if n.endswith("1.weight")).detach().clone()
        trainer = HebbianTrainer(model, MeanInput(), Local(model.named_parameters(), lr=0.5))
        trainer.run(data, epochs=1)
        x = next(iter(data))[0].double()
        if shape == (6,):
            expected = w0.double() + 0.5 * x.mean(0)
            got = model.linear1.weight
        else:  # the true patches of a stride-2, padding-1 convolution over two channels
            patches = F.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 18)
            expected = w0.double() + 0.5 * patches.mean(0).reshape(1, 2, 3, 3)
            got = model.conv1.weight
        torch.testing.assert_close(got.double(), expected.expand_as(got), rtol=1e-5, atol=1e-6)


def check_krotovs_rule(tmp_path, monkeypatch):
    KrotovsRule = old("learning_rules", "KrotovsRule")
    g = torch.Generator().manual_seed(0)
    x, w = torch.rand(32, 12, generator=g, dtype=torch.float64), torch.randn(7, 12, generator=g, dtype=torch.float64)
    rule = KrotovsRule(delta=0.3, k=3, norm=3)
    torch.testing.assert_close(rule.update(x, w), krotov_reference(x, w, 3, 3, 0.3), rtol=0, atol=1e-12)
    normalized = KrotovsRule(delta=0.3, k=3, norm=3, normalize=True).update(x, w)
    torch.testing.assert_close(normalized, krotov_reference(x / x.norm(dim=1, keepdim=True), w, 3, 3, 0.3),
                               rtol=0, atol=1e-12)
    assert (rule.precision, rule.delta, rule.norm, rule.k, rule.normalize) == (1e-30, 0.3, 3, 3, False)
    native = rule.to_rule()
    assert isinstance(native, R.Krotov) and (native.p, native.k, native.delta, native.prec) == (3.0, 3, 0.3, 1e-30)
    layer = nn.Linear(100, 400, bias=False)
    nn.init.zeros_(layer.weight)
    rule.init_layers([layer])
    assert abs(float(layer.weight.mean())) < 0.01 and abs(float(layer.weight.std()) - 1) < 0.01
    with pytest.raises(ValueError, match="norm must be >= 1"):
        KrotovsRule(norm=0.5)


def check_hebbs_rule(tmp_path, monkeypatch):
    HebbsRule = old("learning_rules", "HebbsRule")
    g = torch.Generator().manual_seed(1)
    x, w = torch.rand(16, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    y = x @ w.t()
    expected = 0.2 * sum(torch.outer(y[n], x[n]) for n in range(16)) / 16
    torch.testing.assert_close(HebbsRule(c=0.2).update(x, w), expected, rtol=0, atol=1e-12)


def check_ojas_rule(tmp_path, monkeypatch):
    OjasRule = old("learning_rules", "OjasRule")
    g = torch.Generator().manual_seed(2)
    x, w = torch.rand(16, 5, generator=g, dtype=torch.float64), torch.randn(3, 5, generator=g, dtype=torch.float64)
    expected = torch.zeros_like(w)
    for n in range(16):  # pytorch-hebbian's loop: c * y_i (x_j - y_i w_ij), averaged over the batch
        y = w @ x[n]
        expected += 0.3 * y[:, None] * (x[n][None, :] - y[:, None] * w) / 16
    torch.testing.assert_close(OjasRule(c=0.3).update(x, w), expected, rtol=0, atol=1e-12)


# ============================================================================================ optimizer
def check_local(tmp_path, monkeypatch):
    Local = old("optimizers", "Local")
    model = fc_model()
    with pytest.raises(TypeError, match="lr is required"):
        Local(named_params=model.named_parameters())
    opt = Local(named_params=model.named_parameters(), lr=0.1)
    assert opt.param_names == ("linear1.weight", "linear2.weight", "linear2.bias")
    w0 = model.linear1.weight.detach().clone()
    opt.local_step(torch.ones(5, 6), layer_name="linear1")
    torch.testing.assert_close(model.linear1.weight.detach(), w0 + 0.1)
    with pytest.raises(ValueError, match="no parameter 'nope.weight'"):
        opt.local_step(torch.ones(1), layer_name="nope")


# ============================================================================================ trainers
def check_trainer(tmp_path, monkeypatch):
    Trainer = old("trainers", "Trainer")
    seen = []
    engine = Engine(lambda e, b: seen.append(b))
    Trainer(engine, fc_model()).run(train_loader=[1, 2], epochs=3)
    assert seen == [1, 2] * 3


def check_supervised_trainer(tmp_path, monkeypatch):
    SupervisedTrainer = old("trainers", "SupervisedTrainer")
    model = fc_model()
    w0 = model.linear2.weight.detach().clone()
    trainer = SupervisedTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss())
    assert isinstance(trainer.engine, Engine)
    trainer.run(train_loader=loader(), epochs=2)
    assert trainer.engine.state.epoch == 2 and trainer.engine.state.metrics["loss"] > 0
    assert not torch.equal(model.linear2.weight, w0)


def check_hebbian_trainer(tmp_path, monkeypatch):
    HebbianTrainer, KrotovsRule = old("trainers", "HebbianTrainer"), old("learning_rules", "KrotovsRule")
    OjasRule, Local = old("learning_rules", "OjasRule"), old("optimizers", "Local")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 4, bias=False),
                          nn.ReLU(), nn.Linear(4, 3))
    opt = Local(named_params=model.named_parameters(), lr=0.05)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    # old positional order: model, learning_rule, optimizer, supervised_from, freeze_layers
    with pytest.warns(compat_warnings.PytorchHebbianCompatWarning, match="one forward pass"):
        trainer = HebbianTrainer(model, {"1": KrotovsRule(k=2), "3": OjasRule()}, opt, -1, None)
    assert [(lyr.idx, lyr.name) for lyr in trainer.layers] == [(1, "1"), (3, "3")]
    # KrotovsRule re-draws its own layer from N(0, 1); OjasRule leaves layer "3" as it was
    assert not torch.equal(model[1].weight, initial["1.weight"]) and torch.equal(model[3].weight, initial["3.weight"])
    RunningAverage(output_transform=lambda out: out).attach(trainer.engine, "out")  # ignite metric, default use
    model[5].weight.grad = torch.ones_like(model[5].weight)  # a stale backprop gradient on the readout
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = trainer.run(train_loader=loader(), epochs=2)
    assert state.output == 0 and trainer.engine.state.metrics["out"] == 0
    assert not torch.equal(model[1].weight, before["1.weight"]) and not torch.equal(model[3].weight, before["3.weight"])
    assert torch.equal(model[5].weight, before["5.weight"])  # the readout does not move
    frozen = HebbianTrainer(model, KrotovsRule(), opt, freeze_layers=["3"])
    assert [lyr.name for lyr in frozen.layers] == ["1"]
    hooks = len(model[1]._forward_hooks)
    with pytest.raises(KeyError, match="No learning rule was specified for layer '3'"):
        HebbianTrainer(model, {"1": KrotovsRule()}, opt)
    assert len(model[1]._forward_hooks) == hooks  # the failed trainer left no hooks behind


# ============================================================================================ evaluators
def check_simple_engine(tmp_path, monkeypatch):
    SimpleEngine = old("evaluators", "SimpleEngine")
    events, calls = [], []
    engine = SimpleEngine(lambda *a, **k: calls.append((a, k)))
    engine.add_event_handler(Events.STARTED, lambda e: events.append("started"))
    engine.add_event_handler(Events.COMPLETED, lambda e: events.append("completed"))
    engine.run(1, b=2)
    assert events == ["started", "completed"] and calls == [((1,), {"b": 2})]


def check_evaluator(tmp_path, monkeypatch):
    Evaluator, SimpleEngine = old("evaluators", "Evaluator"), old("evaluators", "SimpleEngine")
    runs = []

    class Counting(Evaluator):
        def __init__(self):
            super().__init__()
            self.engine = SimpleEngine(lambda data: runs.append(data))

    trainer = Engine(lambda e, b: None)
    Counting().attach(trainer, Events.EPOCH_COMPLETED(every=2), data="val")
    trainer.run([0], max_epochs=4)
    assert runs == ["val", "val"]


def check_supervised_evaluator(tmp_path, monkeypatch):
    SupervisedEvaluator = old("evaluators", "SupervisedEvaluator")
    model, data = fc_model(), loader()
    evaluator = SupervisedEvaluator(model, nn.CrossEntropyLoss())
    evaluator.run(data)
    x, y = data.dataset.tensors
    with torch.no_grad():
        logits = model(x).double()
    assert evaluator.metrics["accuracy"] == pytest.approx(float((logits.argmax(1) == y).double().mean()))
    assert evaluator.metrics["loss"] == pytest.approx(float(F.cross_entropy(logits, y)), rel=1e-5)
    custom = SupervisedEvaluator(model, nn.CrossEntropyLoss(), {"acc": Accuracy()})  # old 3rd positional: metrics
    custom.run(data)
    assert set(custom.engine.state.metrics) == {"acc"}


def check_hebbian_evaluator(tmp_path, monkeypatch):
    HebbianEvaluator = old("evaluators", "HebbianEvaluator")
    SupervisedEvaluator, SupervisedTrainer = old("evaluators", "SupervisedEvaluator"), old("trainers",
                                                                                          "SupervisedTrainer")
    torch.manual_seed(0)
    model, train, val = conv_model(), loader(shape=(2, 5, 5)), loader(shape=(2, 5, 5), seed=1)
    scores = []

    def init_function(h_model):  # as pytorch-hebbian's examples/hebbian.py builds it
        criterion = nn.CrossEntropyLoss()
        h_evaluator = SupervisedEvaluator(model=h_model, criterion=criterion)
        h_train_evaluator = SupervisedEvaluator(model=h_model, criterion=criterion)
        h_optimizer = torch.optim.Adam(params=h_model.parameters(), lr=1e-2)
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(h_optimizer, "max", verbose=True, patience=1)
        h_trainer = SupervisedTrainer(model=h_model, optimizer=h_optimizer, criterion=criterion)
        h_evaluator.engine.add_event_handler(Events.COMPLETED,
                                             lambda e: scheduler.step(e.state.metrics["accuracy"]))
        h_evaluator.engine.add_event_handler(Events.COMPLETED, lambda e: scores.append(e.state.metrics["accuracy"]))
        return h_trainer, h_train_evaluator, h_evaluator

    conv0, readout0 = model.conv1.weight.detach().clone(), model.linear1.weight.detach().clone()
    evaluator = HebbianEvaluator(model, "accuracy", lambda e: e.state.metrics["accuracy"], init_function, 6, -1)
    evaluator.run(train, val)
    assert len(scores) == 6 and evaluator.best_score == max(scores)
    assert set(evaluator.engine.state.metrics) == {"accuracy", "loss"}
    assert evaluator.engine.state.metrics["accuracy"] == max(scores)
    assert torch.equal(model.conv1.weight, conv0) and not model.conv1.weight.requires_grad
    assert not torch.equal(model.linear1.weight, readout0)
    default = HebbianEvaluator(model, "accuracy", lambda e: e.state.metrics["accuracy"], epochs=2)
    default.run(train, val)
    assert default.best_score is not None and "loss" in default.engine.state.metrics


# ============================================================================================ handlers
def check_weights_scalar_handler(tmp_path, monkeypatch):
    handler = old("handlers.tensorboard_logger", "WeightsScalarHandler")(fc_model(), layer_names=["linear2"])
    logger, writer = tb_logger(tmp_path)
    fire(handler, Engine(lambda e, b: None), logger)
    assert set(writer.tags("scalar")) == {"weights_norm/linear2/weight", "weights_norm/linear2/bias"}
    logger.close()


def check_weights_hist_handler(tmp_path, monkeypatch):
    model = fc_model()
    handler = old("handlers.tensorboard_logger", "WeightsHistHandler")(model, layer_names=["linear1"], tag="t")
    logger, writer = tb_logger(tmp_path)
    fire(handler, Engine(lambda e, b: None), logger)
    hist = writer.tags("histogram")
    assert list(hist) == ["t/weights/linear1/weight"]
    np.testing.assert_array_equal(hist["t/weights/linear1/weight"], model.linear1.weight.detach().numpy())
    logger.close()


def _forward_twice(model, x1, x2):
    with torch.no_grad():
        model(x1)
        model(x2)


def check_num_activations_scalar_handler(tmp_path, monkeypatch):
    model = fc_model()
    handler = old("handlers.tensorboard_logger", "NumActivationsScalarHandler")(model, layer_names=["repu"])
    x1, x2 = torch.rand(4, 6), torch.rand(4, 6)
    _forward_twice(model, x1, x2)
    with torch.no_grad():
        expected = np.mean([float((model[:3](x) > 0).sum(1).float().mean()) for x in (x1, x2)])
    logger, writer = tb_logger(tmp_path)
    fire(handler, Engine(lambda e, b: None), logger)
    assert writer.tags("scalar") == pytest.approx({"num_activations_mean/repu": expected})
    with pytest.raises(ValueError, match="not top-level children"):
        old("handlers.tensorboard_logger", "NumActivationsScalarHandler")(model, layer_names=["nope"])
    logger.close()


def check_activations_scalar_handler(tmp_path, monkeypatch):
    model = fc_model()
    handler = old("handlers.tensorboard_logger", "ActivationsScalarHandler")(model, reduction=torch.std,
                                                                           layer_names=["linear1"])
    x = torch.rand(4, 6)
    with torch.no_grad():
        model(x)
        expected = float(model.linear1(x).std())
    logger, writer = tb_logger(tmp_path)
    fire(handler, Engine(lambda e, b: None), logger)
    assert writer.tags("scalar") == pytest.approx({"activations_std/linear1": expected})
    logger.close()


def check_activations_hist_handler(tmp_path, monkeypatch):
    model = fc_model()
    handler = old("handlers.tensorboard_logger", "ActivationsHistHandler")(model, layer_names=["repu"])
    x = torch.rand(4, 6)
    with torch.no_grad():
        model(x)
        expected = model[:3](x).numpy()
    logger, writer = tb_logger(tmp_path)
    fire(handler, Engine(lambda e, b: None), logger)
    np.testing.assert_allclose(writer.tags("histogram")["activations/repu"], expected)
    logger.close()


def check_weights_image_handler(tmp_path, monkeypatch):
    WeightsImageHandler = old("handlers.tensorboard_logger", "WeightsImageHandler")
    logger, writer = tb_logger(tmp_path)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 70, bias=False), nn.Linear(70, 3))
    fire(WeightsImageHandler(model, (1, 4, 4)), Engine(lambda e, b: None), logger)
    images = writer.tags("image")
    assert list(images) == ["1/weight"]  # the first Linear only; all 70 units: 8 rows of 9 (4 px shown 24 px, + 1 px padding)
    assert images["1/weight"].shape == (3, 8 * 25 + 1, 9 * 25 + 1)
    writer.records.clear()
    fire(WeightsImageHandler(conv_model(), (2, 5, 5)), Engine(lambda e, b: None), logger)
    assert list(writer.tags("image")) == ["conv1/weight"]
    logger.close()


def check_output_handler(tmp_path, monkeypatch):
    OutputHandler, TqdmLogger = old("handlers.tqdm_logger", "OutputHandler"), old("handlers.tqdm_logger",
                                                                                   "TqdmLogger")
    pbar = ProgressBar()
    messages: List[str] = []
    monkeypatch.setattr(pbar, "log_message", messages.append)
    engine = Engine(lambda e, b: None)
    engine.state.metrics = {"accuracy": 0.5, "loss": torch.tensor(12345.0)}
    engine.state.epoch = 3
    OutputHandler("validation", metric_names=["accuracy"])(engine, TqdmLogger(pbar), Events.EPOCH_COMPLETED)
    assert messages == ["Validation epoch 3: accuracy=0.5000"]
    with pytest.raises(RuntimeError, match="works only with TqdmLogger"):
        OutputHandler("x")(engine, object(), Events.EPOCH_COMPLETED)


def check_tqdm_logger(tmp_path, monkeypatch):
    TqdmLogger = old("handlers.tqdm_logger", "TqdmLogger")
    pbar = ProgressBar()
    messages: List[str] = []
    monkeypatch.setattr(pbar, "log_message", messages.append)
    trainer, evaluator = Engine(lambda e, b: None), Engine(lambda e, b: None)
    from ignite.handlers import global_step_from_engine

    logger = TqdmLogger(pbar=pbar)
    logger.attach_output_handler(evaluator, event_name=Events.COMPLETED, tag="validation",
                                 global_step_transform=global_step_from_engine(trainer))
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(loss=12345.0, acc=0.25))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run([0]))
    trainer.run([0], max_epochs=2)
    assert messages == ["Validation epoch 1: loss=1.2345e+04, acc=0.2500"] * 1 + \
        ["Validation epoch 2: loss=1.2345e+04, acc=0.2500"]
    logger.close()


# ============================================================================================ metric
def check_unit_convergence(tmp_path, monkeypatch):
    UnitConvergence = old("metrics", "UnitConvergence")
    layer = nn.Linear(4, 4, bias=False)
    with torch.no_grad():  # sum |w|^3 per unit: 0.5, 1.05, 1.2, 8 -> 2 of 4 below 1 + 0.1 (old one-sided rule)
        layer.weight.copy_(torch.tensor([[0.5 ** (1 / 3), 0, 0, 0], [1.05 ** (1 / 3), 0, 0, 0],
                                         [1.2 ** (1 / 3), 0, 0, 0], [2.0, 0, 0, 0]]))
    engine = Engine(lambda e, b: {"linear": torch.zeros(1)})  # a dict output, as hebbian's own trainers return
    UnitConvergence(layer, 3).attach(engine, "unit_conv")
    engine.run([0, 1], max_epochs=1)
    assert engine.state.metrics["unit_conv"] == 0.5


# ============================================================================================ nn
def check_flatten(tmp_path, monkeypatch):
    assert old("nn", "Flatten")()(torch.zeros(2, 3, 4, 5)).shape == (2, 60)


def check_repu(tmp_path, monkeypatch):
    torch.testing.assert_close(old("nn", "RePU")(3)(torch.tensor([-1.0, 2.0])), torch.tensor([0.0, 8.0]))


def check_spe_loss(tmp_path, monkeypatch):
    out, target = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]), torch.tensor([2, 1])
    expected = 0.0
    for n in range(2):
        for c in range(3):
            t = 1.0 if c == target[n] else -1.0
            expected += abs(np.tanh(0.2 * float(out[n, c])) - t) ** 2
    assert float(old("nn", "SPELoss")(m=2, beta=0.2)(out, target)) == pytest.approx(expected, rel=1e-6)


# ============================================================================================ utils
def check_plot_to_img(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 1), dpi=50)
    img = old("utils", "plot_to_img")(fig)
    assert img.shape == (3, 50, 100) and 0 <= img.min() and img.max() <= 1


def check_extract_image_patches(tmp_path, monkeypatch):
    x = torch.arange(2 * 2 * 4 * 5, dtype=torch.float64).reshape(2, 2, 4, 5)
    patches = old("utils", "extract_image_patches")(x, (2, 3), stride=(2, 1))
    expected = [x[n, c, i:i + 2, j:j + 3] for n in range(2) for i in (0, 2) for j in range(3) for c in range(2)]
    torch.testing.assert_close(patches, torch.stack(expected))


def check_split_dataset(tmp_path, monkeypatch):
    train, val = old("utils", "split_dataset")(TensorDataset(torch.arange(10)), val_split=0.3)
    assert (len(train), len(val)) == (7, 3)
    assert sorted(int(t[0]) for t in list(train) + list(val)) == list(range(10))


def check_prepare_batch(tmp_path, monkeypatch):
    x, y = old("utils", "prepare_batch")((torch.ones(2), torch.zeros(2)), device="cpu")
    assert x.device.type == "cpu" and torch.equal(y, torch.zeros(2))


def check_load_weights(tmp_path, monkeypatch):
    load_weights = old("utils", "load_weights")
    source = fc_model()
    path = tmp_path / "m.pt"
    torch.save(source.state_dict(), path)
    whole = load_weights(fc_model(), str(path))
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), source.state_dict().values()))
    part = fc_model()
    bias = part.linear2.bias.detach().clone()
    load_weights(part, str(path), layer_names=["linear1", ("linear2", "linear2")], freeze=True)
    assert torch.equal(part.linear1.weight, source.linear1.weight) and torch.equal(part.linear2.bias, bias)
    assert not part.linear1.weight.requires_grad and part.linear2.bias.requires_grad is False


def check_extract_layers_from_state_dict(tmp_path, monkeypatch):
    sd = fc_model().state_dict()
    out = old("utils", "extract_layers_from_state_dict")(sd, ["linear1", ("linear2", "head")])
    assert set(out) == {"linear1.weight", "head.weight"} and out["head.weight"] is sd["linear2.weight"]
    with pytest.raises(KeyError, match="no 'nope.weight'"):
        old("utils", "extract_layers_from_state_dict")(sd, ["nope"])


def check_get_device(tmp_path, monkeypatch):
    get_device = old("utils", "get_device")
    assert get_device("cpu") == "cpu"
    assert get_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch.empty(1).device.type == "cpu"  # no global default-device change
    with pytest.raises(ValueError, match="device must be"):
        get_device("tpu")


CHECKS: Dict[str, Callable] = {
    "PATH": check_config_folders, "ROOT": check_config_folders, "DATASETS_DIR": check_config_folders,
    "OUTPUT_DIR": check_config_folders, "MODELS_DIR": check_config_folders, "PARAMS_DIR": check_config_folders,
    "VIDEOS_DIR": check_config_folders, "TENSORBOARD_DIR": check_config_folders,
    "IGNITE_BAR_FORMAT": check_config_formats, "LOGGING_FORMAT": check_config_formats,
    "LearningRule": check_learning_rule, "KrotovsRule": check_krotovs_rule, "HebbsRule": check_hebbs_rule,
    "OjasRule": check_ojas_rule, "Local": check_local,
    "Trainer": check_trainer, "SupervisedTrainer": check_supervised_trainer, "HebbianTrainer": check_hebbian_trainer,
    "SimpleEngine": check_simple_engine, "Evaluator": check_evaluator,
    "SupervisedEvaluator": check_supervised_evaluator, "HebbianEvaluator": check_hebbian_evaluator,
    "WeightsScalarHandler": check_weights_scalar_handler, "WeightsHistHandler": check_weights_hist_handler,
    "NumActivationsScalarHandler": check_num_activations_scalar_handler,
    "ActivationsScalarHandler": check_activations_scalar_handler,
    "ActivationsHistHandler": check_activations_hist_handler, "WeightsImageHandler": check_weights_image_handler,
    "OutputHandler": check_output_handler, "TqdmLogger": check_tqdm_logger,
    "UnitConvergence": check_unit_convergence, "Flatten": check_flatten, "RePU": check_repu,
    "SPELoss": check_spe_loss, "plot_to_img": check_plot_to_img,
    "extract_image_patches": check_extract_image_patches, "split_dataset": check_split_dataset,
    "prepare_batch": check_prepare_batch, "load_weights": check_load_weights,
    "extract_layers_from_state_dict": check_extract_layers_from_state_dict, "get_device": check_get_device,
}
