"""Patch masks and the paper's fixed baselines (Fixed-H, Fixed-V, Stochastic, Random).

Patch ids run row by row from the top-left: for the 4x4 grid, id = 4 * row + col.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Priority orders from the paper (PATCHDROP.md). Fixed-H lists 15 ids; 12 is appended last.
FIXED_H = (5, 6, 9, 10, 13, 14, 1, 2, 0, 3, 4, 7, 8, 11, 15, 12)
FIXED_V = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3)


def upsample_mask(actions: torch.Tensor, grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """(B, P) actions -> (B, 1, H, W) pixel mask, each patch a constant block (nearest upsampling)."""
    b = actions.shape[0]
    m = actions.float().view(b, 1, grid[0], grid[1])
    return F.interpolate(m, size=size, mode="nearest")


def apply_mask(images: torch.Tensor, actions: torch.Tensor, grid: tuple[int, int] = (4, 4)) -> torch.Tensor:
    """x_h^m = x_h * upsample(a): dropped patches become 0 in normalised space (the mean colour)."""
    return images * upsample_mask(actions, grid, images.shape[-2:]).to(images.dtype)


def counts_for_mean(n: int, mean: float, num_patches: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image patch counts (n,) whose mean is ``mean``: floor/ceil mixed in the right proportion."""
    mean = min(max(float(mean), 0.0), float(num_patches))
    lo = math.floor(mean)
    n_hi = round((mean - lo) * n)
    counts = torch.full((n,), lo, dtype=torch.long)
    if n_hi:
        idx = torch.randperm(n, generator=generator)[:n_hi]
        counts[idx] = min(lo + 1, num_patches)
    return counts


def priority_actions(order: tuple[int, ...], counts: torch.Tensor, num_patches: int) -> torch.Tensor:
    """Acquire the first ``counts[i]`` patches of ``order`` for image i. Returns (B, P) float."""
    rank = torch.empty(num_patches, dtype=torch.long)
    rank[torch.tensor(order[:num_patches])] = torch.arange(num_patches)
    return (rank.unsqueeze(0) < counts.unsqueeze(1)).float()


def random_actions(counts: torch.Tensor, num_patches: int, generator: torch.Generator) -> torch.Tensor:
    """Acquire ``counts[i]`` patches uniformly at random for image i. Returns (B, P) float."""
    scores = torch.rand(counts.shape[0], num_patches, generator=generator)
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < counts.unsqueeze(1)).float()


def centre_distances(grid: tuple[int, int]) -> torch.Tensor:
    """Distance of each patch centre from the image centre, in patch units, (P,)."""
    r = torch.arange(grid[0], dtype=torch.float64) + 0.5 - grid[0] / 2
    c = torch.arange(grid[1], dtype=torch.float64) + 0.5 - grid[1] / 2
    return torch.sqrt(r.view(-1, 1) ** 2 + c.view(1, -1) ** 2).flatten()


def stochastic_probs(mean: float, grid: tuple[int, int] = (4, 4), decay: float = 1.0) -> torch.Tensor:
    """Survival probability per patch, decaying as exp(-d / decay) with the distance d of the patch
    centre from the image centre, scaled (and clipped at 1) so that the expected count equals ``mean``.
    """
    p = grid[0] * grid[1]
    mean = min(max(float(mean), 0.0), float(p))
    w = torch.exp(-centre_distances(grid) / decay)
    lo, hi = 0.0, 1e6
    for _ in range(200):  # bisection on the scale c: sum(min(1, c w)) = mean
        c = (lo + hi) / 2
        if torch.clamp(c * w, max=1.0).sum().item() < mean:
            lo = c
        else:
            hi = c
    return torch.clamp(hi * w, max=1.0).float()


def stochastic_actions(n: int, mean: float, grid: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Sample (n, P) actions from :func:`stochastic_probs`."""
    probs = stochastic_probs(mean, grid)
    return torch.bernoulli(probs.expand(n, -1), generator=generator)
