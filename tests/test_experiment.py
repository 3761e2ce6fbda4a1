"""hebbian.experiment: which layers a run trains."""

from torch import nn

from hebbian.experiment import hebbian_layer_names


def test_a_weight_shared_by_two_layers_is_named_once():
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight
    model = nn.Sequential(first, nn.ReLU(), second, nn.ReLU(), nn.Linear(4, 2))
    assert hebbian_layer_names(model) == ["0"]  # was ["0", "2"]: one parameter in two optimizer groups
    assert hebbian_layer_names(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))) == ["0", "1"]
