"""Networks of the published Hebbian experiments, by name, at any width and input size.

>>> from hebbian.models import create_model
>>> net = create_model("deephebb", in_channels=1, input_size=8, width=0.05)
>>> net[-1]  # every network is an nn.Sequential whose last child is the linear readout
Linear(in_features=77, out_features=10, bias=True)
"""

from hebbian.models.builder import SequentialBuilder
from hebbian.models.deephebb import deephebb
from hebbian.models.fasthebb import fasthebb
from hebbian.models.krotov import hebbian_conv, krotov_fc
from hebbian.models.lateral import FoldiakLayer, foldiak_fc, settle
from hebbian.models.modern import conv1d_rows, mobilenetv3, resnet18, transformer_rows, vit
from hebbian.models.resnet_cifar import resnet_cifar
from hebbian.models.layers import PMetricLinear, RePU, Triangle, scaled
from hebbian.models.registry import (
    HebbianNet,
    LayerRecipe,
    ModelInfo,
    Recipe,
    create_model,
    get_model_info,
    list_models,
    register_model,
)

__all__ = [
    "create_model", "list_models", "get_model_info", "register_model", "ModelInfo", "Recipe", "LayerRecipe",
    "HebbianNet", "RePU", "Triangle", "PMetricLinear", "scaled", "SequentialBuilder",
    "krotov_fc", "hebbian_conv", "deephebb", "fasthebb", "vit", "transformer_rows", "resnet18", "mobilenetv3",
    "resnet_cifar", "conv1d_rows", "FoldiakLayer", "foldiak_fc", "settle",
]
