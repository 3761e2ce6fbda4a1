"""Today's architectures at CPU size: torchvision's ViT, ResNet-18 and MobileNetV3, a Transformer encoder over image
rows and a Conv1d network, each as a :class:`~hebbian.models.HebbianNet` ``(body, readout)``.

They exist to show that every rule and GHL train any architecture (attention projections, grouped / depthwise and 1-d
convolutions): their Hebbian weights are found by :func:`hebbian.models.discovery.candidate_weights` (every
``Linear`` / ``Conv`` and attention input projection of the body), not declared. The body is the torchvision network
itself with its classifier replaced by ``nn.Identity``; the readout is the supervised ``nn.Linear``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Tuple

import torch
from torch import Tensor, nn

from hebbian.models.builder import check_count, check_width
from hebbian.models.layers import scaled
from hebbian.models.registry import HebbianNet, Recipe, register_model

_GHL = {"ghl": Recipe("ghl", {}, {"hebbian_layers": "every Linear/Conv and attention projection of the body"},
                      "this package: GHL on architectures beyond convnets (issue 11)")}


def _size(input_size: Any) -> Tuple[int, int]:
    if isinstance(input_size, int):
        return input_size, input_size
    h, w = input_size
    return int(h), int(w)


@register_model("vit", description="torchvision VisionTransformer (tiny): patch conv, pre-LN encoder, class token.",
                hebbian_layers=(), recipes=_GHL, source="Dosovitskiy et al., ICLR 2021; torchvision.models")
def vit(*, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0,
        patch_size: int = 7, num_layers: int = 2, num_heads: int = 4, hidden_dim: int = 64, mlp_dim: int = 128,
        dropout: float = 0.0) -> HebbianNet:
    """A ViT with ``hidden_dim * width`` features (rounded to a multiple of ``num_heads``)."""
    from torchvision.models import VisionTransformer

    h, w = _size(input_size)
    if h != w or h % patch_size:
        raise ValueError(f"input_size must be square and a multiple of patch_size={patch_size}, got {input_size!r}")
    heads = check_count("num_heads", num_heads)
    dim = heads * max(1, round(hidden_dim * check_width(width) / heads))
    body = VisionTransformer(image_size=h, patch_size=patch_size, num_layers=check_count("num_layers", num_layers),
                             num_heads=heads, hidden_dim=dim, mlp_dim=scaled(mlp_dim, width), dropout=dropout,
                             num_classes=num_classes)
    if in_channels != 3:
        body.conv_proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
    body.heads = nn.Identity()
    return HebbianNet(body, nn.Linear(dim, num_classes))


class RowTransformer(nn.Module):
    """``nn.TransformerEncoder`` over the rows of an image: each row is a token, embedded by a ``(1, W)`` convolution
    (a linear map of the row, shown as a filter image) plus a learned position; the tokens are mean-pooled.
    ``(N, C, H, W) -> (N, d_model)``."""

    def __init__(self, in_channels: int, rows: int, cols: int, d_model: int, nhead: int, num_layers: int,
                 dim_feedforward: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Conv2d(in_channels, d_model, kernel_size=(1, cols))
        self.position = nn.Parameter(torch.zeros(1, rows, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # (N, d, H, 1) -> (N, H, d)
        return self.encoder(tokens + self.position).mean(dim=1)


@register_model("transformer_rows", description="nn.TransformerEncoder over image rows (one token per row), mean pool.",
                hebbian_layers=(), recipes=_GHL, source="Vaswani et al., NeurIPS 2017; torch.nn.TransformerEncoder")
def transformer_rows(*, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0,
                     d_model: int = 64, nhead: int = 4, num_layers: int = 2, dim_feedforward: int = 128,
                     dropout: float = 0.0) -> HebbianNet:
    h, w = _size(input_size)
    heads = check_count("nhead", nhead)
    dim = heads * max(1, round(d_model * check_width(width) / heads))
    body = RowTransformer(in_channels, h, w, dim, heads, check_count("num_layers", num_layers),
                          scaled(dim_feedforward, width), dropout)
    return HebbianNet(body, nn.Linear(dim, num_classes))


@register_model("resnet18", description="torchvision ResNet-18 (BasicBlock x [2,2,2,2]), channels 64..512 x width, "
                "3x3 stem for small images.", hebbian_layers=(), recipes=_GHL,
                source="He et al., CVPR 2016; torchvision.models.resnet")
def resnet18(*, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0) -> HebbianNet:
    """torchvision's ResNet-18 with every stage's channels scaled by ``width`` and a 3x3 stride-1 stem + max-pool."""
    from torchvision.models.resnet import BasicBlock, ResNet

    check_width(width)
    body = ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)
    planes = [scaled(c, width) for c in (64, 128, 256, 512)]
    body.inplanes = planes[0]
    body.conv1 = nn.Conv2d(in_channels, planes[0], kernel_size=3, stride=1, padding=1, bias=False)
    body.bn1 = nn.BatchNorm2d(planes[0])
    for i, (name, stride) in enumerate((("layer1", 1), ("layer2", 2), ("layer3", 2), ("layer4", 2))):
        setattr(body, name, body._make_layer(BasicBlock, planes[i], 2, stride=stride))
    for m in body.modules():  # torchvision's initialisation of the rebuilt layers
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    body.fc = nn.Identity()
    return HebbianNet(body, nn.Linear(planes[3], num_classes))


@register_model("mobilenetv3", description="torchvision MobileNetV3-small (depthwise and grouped convs, SE), "
                "width_mult = width.", hebbian_layers=(), recipes=_GHL,
                source="Howard et al., ICCV 2019; torchvision.models.mobilenet_v3_small")
def mobilenetv3(*, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0,
                dropout: float = 0.2, bn_momentum: float = 0.1) -> HebbianNet:
    """MobileNetV3-small; ``bn_momentum`` of its BatchNorms (torchvision: 0.01, for ImageNet-length training; after a
    few hundred CPU-sized steps its running statistics lag the weights and the eval-mode network fails)."""
    from torchvision.models import mobilenet_v3_small

    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=bn_momentum)
    body = mobilenet_v3_small(width_mult=check_width(width), num_classes=num_classes, dropout=dropout,
                              norm_layer=norm)
    stem = body.features[0][0]
    if in_channels != 3:
        body.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, 2, 1, bias=False)
        nn.init.kaiming_normal_(body.features[0][0].weight, mode="fan_out")
    head = body.classifier[-1]
    body.classifier[-1] = nn.Identity()
    return HebbianNet(body, nn.Linear(head.in_features, num_classes))


@register_model("conv1d_rows", description="Conv1d network over image rows (channels = rows): 2 x [Conv1d, ReLU], "
                "the second grouped.", hebbian_layers=(), recipes=_GHL, source="this package")
def conv1d_rows(*, in_channels: int = 1, input_size: Any = 28, num_classes: int = 10, width: float = 1.0,
                channels: int = 64, groups: int = 4) -> HebbianNet:
    h, w = _size(input_size)
    c = groups * max(1, round(channels * check_width(width) / groups))
    body = nn.Sequential(
        nn.Flatten(1, 2),  # (N, C, H, W) -> (N, C*H, W): every image row a channel, a 1-d signal along W
        nn.Conv1d(in_channels * h, c, 3, padding=1), nn.ReLU(),
        nn.Conv1d(c, c, 3, padding=1, groups=check_count("groups", groups), padding_mode="reflect"), nn.ReLU(),
        nn.AdaptiveAvgPool1d(4), nn.Flatten(),
    )
    return HebbianNet(body, nn.Linear(4 * c, num_classes))
