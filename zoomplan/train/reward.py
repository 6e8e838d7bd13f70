"""PatchDrop's reward, exploration bound and REINFORCE loss: pure tensor functions.

Notation follows Uzkent & Ermon (CVPR 2020): P patches, action a in {0,1}^P (1 = acquire the HR patch),
policy probabilities s in [0,1]^P.
"""

from __future__ import annotations

import torch


def reward(actions: torch.Tensor, correct: torch.Tensor, sigma: float, power: float = 2.0) -> torch.Tensor:
    """R(a, y_hat, y) = 1 - (|a|_1 / P)^power if correct else -sigma.  Shapes (B, P), (B,) -> (B,).

    ``power`` 2 is the paper's; 1 charges the first patches as much as the last (4 of 16 patches cost
    0.25 instead of 0.0625), so that a tile the LR stream already classifies is worth no patch at all.
    """
    frac = actions.float().sum(dim=1) / actions.shape[1]
    return torch.where(correct.bool(), 1.0 - frac ** float(power), torch.full_like(frac, -float(sigma)))


def explore(probs: torch.Tensor, alpha: float) -> torch.Tensor:
    """s' = alpha * s + (1 - alpha) * (1 - s): keeps every probability in [1 - alpha, alpha]."""
    return alpha * probs + (1.0 - alpha) * (1.0 - probs)


def greedy(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Test-time action a = [s > threshold] as float (B, P)."""
    return (probs > threshold).float()


def log_prob(probs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """sum_p log(s_p a_p + (1 - s_p)(1 - a_p)), shape (B,). Clamped to avoid log(0)."""
    p = probs * actions + (1.0 - probs) * (1.0 - actions)
    return torch.log(p.clamp_min(1e-8)).sum(dim=1)


def self_critical_loss(
    probs_explore: torch.Tensor, sampled: torch.Tensor, r_sampled: torch.Tensor, r_greedy: torch.Tensor
) -> torch.Tensor:
    """REINFORCE with the self-critical baseline: -mean(A * log pi(a)), A = R(a) - R(a_hat).

    ``probs_explore`` carries the gradient; the advantage is treated as a constant.
    """
    advantage = (r_sampled - r_greedy).detach()
    return -(advantage * log_prob(probs_explore, sampled)).mean()


def alpha_at(epoch: int, epochs: int, start: float, end: float) -> float:
    """Exploration bound for ``epoch`` (0-based) of ``epochs``: linear from ``start`` to ``end``.

    ``start == end`` gives the public code's constant bound (0.8); the paper ramps 0.7 -> 0.95.
    """
    if epochs <= 1:
        return float(end)
    t = min(max(epoch / (epochs - 1), 0.0), 1.0)
    return float(start + (end - start) * t)
