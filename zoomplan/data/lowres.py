"""From one HR image batch to the two streams PatchDrop sees: HR (x_h) and simulated LR (x_l).

A sensor with coarser pixels integrates radiance over each pixel's footprint, so LR simulation is
area averaging (``F.interpolate(mode="area")``) to the LR ground pixel size; nearest-neighbour
sub-sampling (the paper code's choice) is available as an option. A real sensor is blurrier than a
box of one pixel: ``psf_sigma`` (in LR pixels) adds a Gaussian point-spread function before the
sampling (Sentinel-2's 10 m bands: MTF 0.15-0.3 at Nyquist, i.e. sigma 0.5-0.6 pixel; see
:func:`psf_mtf_nyquist`). In training, the LR stream also gets the sensor's noise and a random
radiometric change per image (:class:`Radiometry`: gain, haze, gamma), which stands for what varies
between real scenes and for the error of mapping top-of-atmosphere reflectance onto 8-bit display
RGB. Both streams are cut from the same augmented image, so they share their geometric augmentation
(flips and 90-degree rotations, which are valid for nadir overhead imagery).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from zoomplan.models.card import ModelCard, Normalization

PSF_OVERSAMPLE = 4
"""The PSF is applied on a grid ``PSF_OVERSAMPLE`` times finer than the LR grid, then box-averaged."""


def gaussian_kernel1d(sigma_px: float, radius: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian of standard deviation ``sigma_px`` pixels (radius 3 sigma by default)."""
    if sigma_px <= 0:
        return torch.ones(1)
    r = radius if radius is not None else max(1, math.ceil(3 * sigma_px))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return k / k.sum()


def psf_mtf_nyquist(sigma_px: float) -> float:
    """MTF at the Nyquist frequency (0.5 cycle per pixel) of a Gaussian PSF of ``sigma_px`` pixels
    combined with the pixel's own box: exp(-2 pi^2 sigma^2 f^2) * sinc(f) at f = 0.5."""
    f = 0.5
    return math.exp(-2 * math.pi**2 * sigma_px**2 * f**2) * math.sin(math.pi * f) / (math.pi * f)


def gaussian_blur(images: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, reflecting at the edges."""
    if sigma_px <= 0:
        return images
    # Radius 3 sigma, but no wider than reflect padding allows (the image's side - 1).
    r = min(max(1, math.ceil(3 * sigma_px)), images.shape[-1] - 1, images.shape[-2] - 1)
    k = gaussian_kernel1d(sigma_px, r).to(images.device, images.dtype)
    c = images.shape[1]
    x = F.pad(images, (r, r, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    x = F.pad(x, (0, 0, r, r), mode="reflect")
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def simulate_lr(images: torch.Tensor, size: int, method: str = "area", psf_sigma: float = 0.0) -> torch.Tensor:
    """Resample (B, C, H, W) float images covering one tile to (B, C, size, size).

    ``area`` averages every source pixel inside each LR pixel (a sensor's point-spread, boxcar
    approximation); ``nearest`` picks one source pixel per LR pixel. ``psf_sigma`` > 0 (LR pixels)
    first blurs with a Gaussian PSF on a grid ``PSF_OVERSAMPLE`` times finer than the LR grid (edges
    reflected: a tile has no neighbours here), so each LR pixel also sees some of its neighbours' light.
    """
    if method not in ("area", "nearest"):
        raise ValueError(f"LR simulation method must be 'area' or 'nearest', got {method!r}")
    if psf_sigma > 0:
        fine = size * PSF_OVERSAMPLE
        x = (
            F.interpolate(images, size=(fine, fine), mode="area")
            if images.shape[-1] >= fine
            else F.interpolate(images, size=(fine, fine), mode="bilinear", align_corners=False)
        )
        images = gaussian_blur(x, psf_sigma * PSF_OVERSAMPLE)
    return F.interpolate(images, size=(size, size), mode=method)


@dataclass(frozen=True)
class Radiometry:
    """Random radiometric change of the LR stream per training image (values in [0, 1]).

    ``x' = clip((x * g * g_b + h * haze_b) ** gamma, 0, 1)`` with a global gain g ~ U(gain), a per-band
    gain g_b ~ U(1 - band_gain, 1 + band_gain), an additive haze h ~ U(haze) weighted by ``haze_colour``
    (red, green, blue: path radiance grows towards blue), a gamma ~ exp(U(log gamma range)), and Gaussian
    noise of ``noise`` (standard deviation, unit values) per pixel.
    """

    gain: tuple[float, float] = (1.0, 1.0)
    band_gain: float = 0.0
    haze: tuple[float, float] = (0.0, 0.0)
    haze_colour: tuple[float, ...] = (0.6, 0.8, 1.0)
    gamma: tuple[float, float] = (1.0, 1.0)
    noise: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "Radiometry":
        d = dict(d or {})
        kw: dict[str, Any] = {}
        for key in ("gain", "haze", "gamma"):
            if key in d:
                lo, hi = (float(v) for v in d.pop(key))
                kw[key] = (lo, hi)
        if "haze_colour" in d:
            kw["haze_colour"] = tuple(float(v) for v in d.pop("haze_colour"))
        for key in ("band_gain", "noise"):
            if key in d:
                kw[key] = float(d.pop(key))
        if d:
            raise ValueError(f"unknown LR radiometry key(s) {', '.join(sorted(d))}")
        return cls(**kw)

    @property
    def identity(self) -> bool:
        return self == Radiometry(haze_colour=self.haze_colour)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.identity:
            return x
        b, c = x.shape[:2]

        def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(shape, generator=generator)

        g = u(*self.gain, b, 1) * u(1 - self.band_gain, 1 + self.band_gain, b, c)
        colour = torch.tensor(self.haze_colour[:c] if len(self.haze_colour) >= c else (1.0,) * c)
        h = u(*self.haze, b, 1) * colour
        gamma = torch.exp(u(math.log(self.gamma[0]), math.log(self.gamma[1]), b, 1))
        out = (x * g.view(b, c, 1, 1).to(x) + h.view(b, c, 1, 1).to(x)).clamp(0, 1)
        out = out.pow(gamma.view(b, 1, 1, 1).to(x))
        if self.noise > 0:
            out = out + self.noise * torch.randn(out.shape, generator=generator).to(x)
        return out.clamp(0, 1)


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
    psf_sigma: float = 0.0
    radiometry: Radiometry = field(default_factory=Radiometry)

    @classmethod
    def from_card(cls, card: ModelCard, radiometry: Radiometry | None = None) -> "Streams":
        """The card's streams; ``radiometry`` (training only) perturbs the LR stream when augmenting."""
        return cls(
            card.hr_size_px,
            card.lr_size_px,
            card.hr_norm,
            card.lr_norm,
            card.lowres_method,
            card.lr_psf_sigma,
            radiometry or Radiometry(),
        )

    def __call__(
        self, images: torch.Tensor, *, generator: torch.Generator | None = None, augment: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()
        if augment:
            if generator is None:
                raise ValueError("augmentation needs an explicit torch.Generator")
            x = dihedral(x, generator)
        hr = normalize(resize_hr(x, self.hr_size), self.hr_norm)
        lr = simulate_lr(x, self.lr_size, self.method, self.psf_sigma)
        if augment and generator is not None:
            lr = self.radiometry(lr, generator)
        return hr, normalize(lr, self.lr_norm)


def channel_stats(
    images: torch.Tensor, size: int | None = None, method: str = "area", psf_sigma: float = 0.0
) -> Normalization:
    """Per-channel mean/std of uint8 images (B, 3, S, S) in [0, 1], optionally after LR simulation."""
    x = images.float() / 255.0
    if size is not None:
        x = simulate_lr(x, size, method, psf_sigma)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return Normalization(tuple(round(v, 5) for v in mean.tolist()), tuple(round(v, 5) for v in std.tolist()))
