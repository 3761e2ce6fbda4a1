"""He et al.'s CIFAR ResNets (ResNet-20, -32, -44, -56, -110, -1202): the networks of GHL's depth claim.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016, section 4.2: a 3x3 convolution
with 16 filters, then three stages of ``n`` basic blocks (two 3x3 convolutions each) on maps of 32, 16 and 8 pixels
with 16, 32 and 64 filters, global average pooling and the classifier; ``depth = 6 n + 2`` weighted layers. The
first block of stages 2 and 3 halves the map with a stride-2 convolution, and every shortcut is the identity
(option A: the skipped input is subsampled by 2 and zero-padded with the new channels), so the network has no 1x1
projection convolutions and its convolutions are exactly the ``6 n + 1`` 3x3 ones. Initialisation: He's normal
(``kaiming_normal_``), as the paper's reference [13]. ``width`` scales the 16 / 32 / 64 filters.
"""

from __future__ import annotations

from typing import Any, List

import torch.nn.functional as F
from torch import Tensor, nn

from hebbian.models.builder import check_width
from hebbian.models.layers import scaled
from hebbian.models.registry import HebbianNet, Recipe, register_model

#: the depths of He et al.'s CIFAR-10 table (Table 6)
PAPER_DEPTHS = (20, 32, 44, 56, 110, 1202)

_GHL = {"ghl": Recipe("ghl", {}, {"hebbian_layers": "every conv of the body (6 n + 1, no projection shortcuts)"},
                      "Hua et al., ICASSP 2026: GHL on deep residual networks (ResNet-1202)")}


def blocks_per_stage(depth: int) -> int:
    """``n`` of ``depth = 6 n + 2`` (ValueError naming ``depth`` otherwise)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6 n + 2 for a positive integer n (20, 32, 44, 56, 110, 1202), got {depth!r}")
    return (depth - 2) // 6


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``; the shortcut is the identity, or (``stride`` 2) the input
    subsampled by 2 with ``planes - in_planes`` zero channels added (option A). ``(N, in_planes, H, W) -> (N, planes,
    H / stride, W / stride)``."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.stride, self.extra = stride, planes - in_planes

    def shortcut(self, x: Tensor) -> Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def _stage(in_planes: int, planes: int, n: int, stride: int) -> nn.Sequential:
    return nn.Sequential(*[BasicBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1)
                           for i in range(n)])


@register_model("resnet_cifar", description="He et al.'s CIFAR ResNet-(6n+2): 3x3 stem, 3 stages of n basic blocks "
                "(16/32/64 x width filters), identity shortcuts (option A), global pool; depth 20 ... 1202.",
                hebbian_layers=(), recipes=_GHL, source="He et al., CVPR 2016, section 4.2")
def resnet_cifar(*, in_channels: int = 3, input_size: Any = 32, num_classes: int = 10, width: float = 1.0,
                 depth: int = 20) -> HebbianNet:
    """ResNet-``depth`` (``depth = 6 n + 2``) with 16 / 32 / 64 filters times ``width``; any input size (global
    pooling)."""
    n = blocks_per_stage(depth)
    planes = [scaled(c, check_width(width)) for c in (16, 32, 64)]
    layers: List[nn.Module] = [nn.Conv2d(in_channels, planes[0], 3, padding=1, bias=False),
                               nn.BatchNorm2d(planes[0]), nn.ReLU()]
    layers += [_stage(planes[0], planes[0], n, 1), _stage(planes[0], planes[1], n, 2),
               _stage(planes[1], planes[2], n, 2)]
    body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    readout = nn.Linear(planes[2], num_classes)
    for m in [*body.modules(), readout]:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
    return HebbianNet(body, readout)
