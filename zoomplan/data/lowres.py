"""From one HR image batch to the two streams PatchDrop sees: HR (x_h) and simulated LR (x_l).

A sensor with coarser pixels integrates radiance over each pixel's footprint, so LR simulation is
area averaging (``F.interpolate(mode="area")``) to the LR ground pixel size; nearest-neighbour
sub-sampling (the paper code's choice) is available as an option. Both streams are cut from the same
augmented image, so they share their geometric augmentation (flips and 90-degree rotations, which are
valid for nadir overhead imagery).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoomplan.models.card import ModelCard, Normalization


def simulate_lr(images: torch.Tensor, size: int, method: str = "area") -> torch.Tensor:
    """Resample (B, C, H, W) float images covering one tile to (B, C, size, size).

    ``area`` averages every source pixel inside each LR pixel (a sensor's point-spread, boxcar
    approximation); ``nearest`` picks one source pixel per LR pixel.
    """
    if method == "area":
        return F.interpolate(images, size=(size, size), mode="area")
    if method == "nearest":
        return F.interpolate(images, size=(size, size), mode="nearest")
    raise ValueError(f"LR simulation method must be 'area' or 'nearest', got {method!r}")


def resize_hr(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float images to the HR stream's size (antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    if images.shape[-1] % size == 0 and images.shape[-2] % size == 0:
        return F.interpolate(images, size=(size, size), mode="area")
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def normalize(images: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """(x - mean) / std per channel, for values in [0, 1]."""
    mean = torch.tensor(norm.mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(norm.std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
    return (images - mean) / std


def dihedral(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply one of the 8 flips/rotations, chosen per image, to (B, C, H, W)."""
    ks = torch.randint(0, 8, (images.shape[0],), generator=generator).tolist()
    out = images.clone()
    for i, k in enumerate(ks):
        x = images[i]
        if k >= 4:
            x = torch.flip(x, dims=(-1,))
        out[i] = torch.rot90(x, k % 4, dims=(-2, -1))
    return out


@dataclass(frozen=True)
class Streams:
    """Turns uint8 HR images (B, 3, S, S) of one tile each into normalised (hr, lr) float tensors."""

    hr_size: int
    lr_size: int
    hr_norm: Normalization
    lr_norm: Normalization
    method: str = "area"

    @classmethod
    def from_card(cls, card: ModelCard) -> "Streams":
        return cls(card.hr_size_px, card.lr_size_px, card.hr_norm, card.lr_norm, card.lowres_method)

    def __call__(self, images: torch.Tensor, *, generator: torch.Generator | None = None, augment: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if augment:
            if generator is None:
                raise ValueError("augmentation needs an explicit torch.Generator")
            x = dihedral(x, generator)
        hr = normalize(resize_hr(x, self.hr_size), self.hr_norm)
        lr = normalize(simulate_lr(x, self.lr_size, self.method), self.lr_norm)
        return hr, lr


def channel_stats(images: torch.Tensor, size: int | None = None, method: str = "area") -> Normalization:
    """Per-channel mean/std of uint8 images (B, 3, S, S) in [0, 1], optionally after LR simulation."""
    x = images.float() / 255.0
    if size is not None:
        x = simulate_lr(x, size, method)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return Normalization(tuple(round(v, 5) for v in mean.tolist()), tuple(round(v, 5) for v in std.tolist()))
