"""LogisticProbe on real features: scale-free, repeatable, and blind to the test split until the choice is made."""

import pytest
import torch
from ignite.engine import Events
from torch.utils.data import TensorDataset

from hebbian.data import in_memory_loader, load_dataset
from hebbian.models import create_model
from hebbian.probes import LogisticProbe, create_probe, get_probe_info, list_probes


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", train=False)


def _loader(dataset):
    return in_memory_loader(dataset, 512, shuffle=False)


def _model(n=1.0, seed=0):
    torch.manual_seed(seed)
    return create_model("krotov_fc", input_size=8, width=0.01, n=n)  # 20 units: far from the ceiling


@pytest.mark.parametrize("n", [1.0, 3.0])
@pytest.mark.parametrize("scale", [10.0, 0.1])
def test_scaling_a_layers_weights_moves_the_accuracy_by_less_than_0_3_points(digits, single_thread, n, scale):
    train, test = digits
    model = _model(n)
    before = LogisticProbe(model).run(_loader(train), _loader(test))
    with torch.no_grad():
        model.linear1.weight.mul_(scale)
    after = LogisticProbe(model).run(_loader(train), _loader(test))
    assert abs(after["test_accuracy"] - before["test_accuracy"]) < 0.003
    assert before["test_accuracy"] < 0.95  # not at the ceiling: the test can see a difference


def test_a_second_run_on_the_same_features_gives_the_same_accuracy(digits, single_thread):
    train, test = digits
    model = _model()
    first = LogisticProbe(model, seed=3).run(_loader(train), _loader(test))
    second = LogisticProbe(model, seed=3).run(_loader(train), _loader(test))
    assert first == second
    assert set(first) >= {"train_accuracy", "val_accuracy", "test_accuracy", "l2", "converged"}


class _Recorder:
    """A loader that records when it is read."""

    def __init__(self, dataset, log, name):
        self.inner, self.log, self.name = _loader(dataset), log, name

    def __iter__(self):
        self.log.append(self.name)
        return iter(self.inner)

    def __len__(self):
        return len(self.inner)


def test_the_test_split_is_read_once_after_the_choice_and_never_influences_it(digits, single_thread):
    train, test = digits
    x, y = test.tensors
    scrambled = TensorDataset(x.flip(0), (y + 3) % 10)  # other images, wrong labels
    model = _model()
    runs = []
    for test_set in (test, scrambled):
        log = []
        probe = LogisticProbe(model)
        probe.add_event_handler(Events.ITERATION_COMPLETED, lambda e: log.append("fit"))
        metrics = probe.run(_Recorder(train, log, "train"), _Recorder(test_set, log, "test"))
        assert log.count("test") == 1 and log.index("test") == len(log) - 1  # after every fit, once
        assert log.count("fit") == len(probe.l2_grid)
        runs.append((metrics, probe.readout))
    (a, fit_a), (b, fit_b) = runs
    assert a["l2"] == b["l2"] and a["val_accuracy"] == b["val_accuracy"]
    assert torch.equal(fit_a.weight, fit_b.weight)
    assert a["test_accuracy"] != b["test_accuracy"]


def test_validation_is_carved_from_the_training_data(digits, single_thread):
    train, _ = digits
    probe = LogisticProbe(_model(), validation_fraction=0.25)
    metrics = probe.run(_loader(train))
    assert "test_accuracy" not in metrics and 0 < metrics["val_accuracy"] <= 1


def test_registry_lists_the_protocols_and_refuses_unknown_ones(digits):
    assert {"logistic", "readout", "softhebb", "pytorch_hebbian"} <= set(list_probes())
    assert get_probe_info("softhebb").defaults["dropout"] == 0.5
    with pytest.raises(KeyError, match="known probes"):
        get_probe_info("nope")
    with pytest.raises(TypeError, match="does not take dropout"):
        create_probe("logistic", _model(), dropout=0.5)
    assert isinstance(create_probe("logistic", _model(), seed=1), LogisticProbe)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"validation_fraction": 0.0}, "validation_fraction"),
    ({"l2_grid": []}, "l2_grid"),
    ({"l2_grid": [-1.0]}, "l2_grid"),
    ({"tol": 0.0}, "tol"),
    ({"max_iter": 0}, "max_iter"),
    ({"supervised_from": 0}, "supervised_from"),
])
def test_bad_arguments_name_the_parameter(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        LogisticProbe(_model(), **kwargs)
