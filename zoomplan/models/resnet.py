"""ResNets assembled from torchvision's own blocks, with configurable depth, width and stem.

torchvision's ``ResNet`` hard-codes a 64-channel, stride-4 ImageNet stem. PatchDrop needs the same
family at other sizes: a 4x4-patch policy over an 8x8 Sentinel-2 chip, classifiers at 32-224 px. This
module builds ``torchvision.models.resnet.BasicBlock``/``Bottleneck`` stacks with:

- ``width``: channels of the first stage (64 = torchvision's ResNets, 16 = CIFAR ResNets);
- ``stem``: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool, for >= 96 px inputs), ``"small"`` (3x3/1
  conv, no pool, for 8-32 px inputs) or ``"medium"`` (3x3/2 conv, no pool, for 48-128 px inputs);
- ``layers``: blocks per stage, e.g. (2, 2, 2, 2) for ResNet18, (1, 1, 1) for a CIFAR ResNet8.

With ``width=64, stem="imagenet", layers=(2, 2, 2, 2)`` the module tree and parameter shapes equal
torchvision's ``resnet18`` (so its state dicts load), which a test checks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

STEMS = ("imagenet", "medium", "small")


class ResNet(nn.Module):
    """A ResNet with ``len(layers)`` stages of widths ``width * 2**i`` and a linear head."""

    def __init__(
        self,
        layers: Sequence[int],
        num_outputs: int,
        *,
        width: int = 64,
        block: str = "basic",
        stem: str = "imagenet",
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        blk: type[BasicBlock] | type[Bottleneck] = BasicBlock if block == "basic" else Bottleneck
        self.inplanes = width
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=2 if stem == "medium" else 1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        stages = []
        for i, n in enumerate(layers):
            stages.append(self._make_layer(blk, width * 2**i, n, stride=1 if i == 0 else 2))
        # Named layer1..layerN like torchvision so that state dicts line up.
        for i, s in enumerate(stages):
            setattr(self, f"layer{i + 1}", s)
        self.num_stages = len(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * blk.expansion, num_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # Zero-init the last BN of each residual branch (Goyal et al.): each block starts as identity.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, blk: type[BasicBlock] | type[Bottleneck], planes: int, n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * blk.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * blk.expansion, stride), nn.BatchNorm2d(planes * blk.expansion))
        out = [blk(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * blk.expansion
        out += [blk(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of shape (B, C)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))
