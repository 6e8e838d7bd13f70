"""ResNets assembled from torchvision's own blocks, with configurable depth, width and stem.

torchvision's ``ResNet`` hard-codes a 64-channel, stride-4 ImageNet stem. PatchDrop needs the same
family at other sizes: a 4x4-patch policy over an 8x8 Sentinel-2 chip, classifiers at 32-224 px. This
module builds ``torchvision.models.resnet.BasicBlock``/``Bottleneck`` stacks with:

- ``width``: channels of the first stage (64 = torchvision's ResNets, 16 = CIFAR ResNets);
- ``stem``: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool, for >= 96 px inputs), ``"small"`` (3x3/1
  conv, no pool, for 8-32 px inputs) or ``"medium"`` (3x3/2 conv, no pool, for 48-128 px inputs);
- ``layers``: blocks per stage, e.g. (2, 2, 2, 2) for ResNet18, (1, 1, 1) for a CIFAR ResNet8;
- ``head``: ``"linear"`` (global pooling + one linear layer: a classifier, or a policy that may learn
  one logit per patch position) or ``"patch"`` (a policy head: one logit per patch of a ``grid`` from the
  feature map under that patch, by a 1x1 convolution shared by all patches, plus one tile-wide logit
  from the pooled features; see :class:`PatchHead`);
- ``padding``: how convolutions pad the image edge: ``"zeros"`` (torchvision's) or ``"reflect"``. Zero
  padding lets a network tell the edge from the middle even on uniform ground, so a patch head learns
  positions (a fixed mask) from it; reflect padding gives uniform ground a uniform feature map.

With ``width=64, stem="imagenet", layers=(2, 2, 2, 2)`` the module tree and parameter shapes equal
torchvision's ``resnet18`` (so its state dicts load), which a test checks.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

STEMS = ("imagenet", "medium", "small")
HEADS = ("linear", "patch")
PADDINGS = ("zeros", "reflect")


class PatchHead(nn.Module):
    """Per-patch logits from a feature map: ``logit[i, j] = w . f[i, j] + b + g(mean f)``.

    ``f`` is the body's last feature map average-pooled onto the patch ``grid`` (rows, cols); ``w`` is
    one 1x1 convolution shared by every patch, so a patch's logit depends on what lies under it (and the
    receptive field around it), not on its position in the tile: the same ground gets the same score
    wherever the tiling puts it. ``g`` is a linear map of the tile's pooled features that shifts every
    patch of the tile alike: the tile-wide "is HR needed here at all" term. Output (B, rows * cols),
    patch ids row by row from the top-left like :mod:`zoomplan.train.masks`.
    """

    def __init__(self, channels: int, grid: Sequence[int]) -> None:
        super().__init__()
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"a patch head needs grid = [rows, cols] of positive ints, got {list(grid)!r}")
        self.grid = (int(grid[0]), int(grid[1]))
        self.patch = nn.Conv2d(channels, 1, 1)
        self.tile = nn.Linear(channels, 1)

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        local = self.patch(nn.functional.adaptive_avg_pool2d(fmap, self.grid)).flatten(1)
        return local + self.tile(fmap.mean(dim=(2, 3)))


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
        head: str = "linear",
        grid: Sequence[int] | None = None,
        padding: str = "zeros",
    ) -> None:
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if head == "patch" and (grid is None or int(grid[0]) * int(grid[1]) != num_outputs):
            raise ValueError(
                f"head 'patch' needs grid = [rows, cols] with rows * cols = {num_outputs} outputs, got {grid!r}"
            )
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
        channels = width * 2 ** (len(layers) - 1) * blk.expansion
        self.head = head
        self.fc: nn.Module = nn.Linear(channels, num_outputs) if head == "linear" else PatchHead(channels, grid or ())
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if padding != "zeros":
            # Conv2d pads with F.pad(mode=padding_mode) when it is not "zeros"; the pad widths are set at init.
            for m in self.modules():
                if isinstance(m, nn.Conv2d) and max(m.padding) > 0:  # type: ignore[arg-type]
                    m.padding_mode = padding
        # Zero-init the last BN of each residual branch (Goyal et al.): each block starts as identity.
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn3.weight)
            elif isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, blk: type[BasicBlock] | type[Bottleneck], planes: int, n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * blk.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * blk.expansion, stride), nn.BatchNorm2d(planes * blk.expansion)
            )
        out = [blk(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * blk.expansion
        out += [blk(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*out)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map, shape (B, C, h, w)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of shape (B, C)."""
        return torch.flatten(self.avgpool(self.feature_map(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.head == "patch":
            return self.fc(self.dropout(self.feature_map(x)))
        return self.fc(self.dropout(self.features(x)))
