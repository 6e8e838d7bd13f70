"""One optimisation step and one evaluation pass per stage: the PatchDrop maths on a batch.

Stages (Algorithm 1 of the paper): ``hr`` and ``lr`` train the classifiers with cross-entropy;
``policy`` (Pt) trains the policy with REINFORCE against a frozen HR classifier; ``ft1`` trains the
policy and the HR classifier jointly (the classifier on images masked by the *sampled* actions);
``ft2`` adds the frozen LR classifier, combined by the card's rule (see ``models.card.COMBINE_RULES``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoomplan.train.masks import apply_mask
from zoomplan.train.reward import explore, greedy, reward, self_critical_loss


def cosine_lr(step: int, total: int, base: float, warmup: int = 0) -> float:
    """Learning rate at ``step`` of ``total``: linear warm-up for ``warmup`` steps, then cosine to 0."""
    if total <= 0:
        return base
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))


def combine_probs(
    hr_logits: torch.Tensor, lr_logits: torch.Tensor | None, actions: torch.Tensor, rule: str
) -> torch.Tensor:
    """Class probabilities (B, K) from the HR stream and optionally the LR stream.

    ``paper``: (S/P) softmax(h) + (1 - S/P) softmax(l) with S the acquired patches per image;
    ``logit-sum``: softmax(h + l). Without an LR stream: softmax(h).
    """
    ph = hr_logits.float().softmax(dim=1)
    if lr_logits is None:
        return ph
    if rule == "logit-sum":
        return (hr_logits.float() + lr_logits.float()).softmax(dim=1)
    w = actions.float().sum(dim=1, keepdim=True) / actions.shape[1]
    return w * ph + (1.0 - w) * lr_logits.float().softmax(dim=1)


@dataclass
class Tally:
    """Running sums over a pass: loss, correct predictions, acquired patches, reward, images."""

    loss: float = 0.0
    correct: float = 0.0
    patches: float = 0.0
    reward: float = 0.0
    n: int = 0

    def add(self, loss: float, correct: float, patches: float, rew: float, n: int) -> None:
        self.loss += loss * n
        self.correct += correct
        self.patches += patches
        self.reward += rew
        self.n += n

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.loss, self.correct, self.patches, self.reward, float(self.n)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, t: torch.Tensor) -> "Tally":
        v = t.tolist()
        return cls(v[0], v[1], v[2], v[3], int(v[4]))

    def summary(self) -> dict[str, float]:
        n = max(self.n, 1)
        return {"loss": self.loss / n, "acc": self.correct / n, "S": self.patches / n, "reward": self.reward / n}


@dataclass
class PolicyModels:
    """The networks of a policy stage. ``hr`` is trained in Ft-1/Ft-2; ``lr`` (frozen) only in Ft-2."""

    policy: nn.Module
    hr: nn.Module
    lr: nn.Module | None
    train_hr: bool
    combine: str
    grid: tuple[int, int]
    lr_folds: list[nn.Module] | None = None  # out-of-fold LR classifiers for training images (Ft-2)
    fold_of: torch.Tensor | None = None  # (N,) fold of each training image: the fold model that never saw it

    def lr_logits(self, lr: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor | None:
        """LR stream logits; for training images with out-of-fold models, each image's logits come
        from the fold model trained without it (so they are as reliable as on unseen images)."""
        if self.lr is None:
            return None
        if self.lr_folds is None or self.fold_of is None or index is None:
            return self.lr(lr)
        every = torch.stack([f(lr) for f in self.lr_folds])  # (K, B, C)
        fold = self.fold_of.to(index.device)[index]
        return every[fold, torch.arange(lr.shape[0], device=lr.device)]


def classifier_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy loss and the number of correct predictions of a classifier on one batch."""
    logits = model(x)
    loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
    return loss, (logits.argmax(1) == y).sum()


def policy_step(
    m: PolicyModels,
    hr: torch.Tensor,
    lr: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    sigma: float,
    generator: torch.Generator | None,
    index: torch.Tensor | None = None,
    cost_power: float = 2.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of one REINFORCE (+ classifier) step with the self-critical baseline.

    Returns the total loss (policy loss, plus the classifier's loss in Ft-1/Ft-2) and batch statistics
    of the *sampled* actions: correct predictions, acquired patches and reward sums.
    """
    probs = torch.sigmoid(m.policy(lr).float())
    probs_x = explore(probs, alpha)
    if generator is not None and generator.device == probs_x.device:
        sampled = torch.bernoulli(probs_x.detach(), generator=generator)
    else:
        sampled = torch.bernoulli(probs_x.detach())
    g = greedy(probs.detach())
    with torch.no_grad():
        lr_logits = m.lr_logits(lr, index)
    with torch.set_grad_enabled(m.train_hr):
        logits_s = m.hr(apply_mask(hr, sampled, m.grid))
    with torch.no_grad():
        logits_g = m.hr(apply_mask(hr, g, m.grid))
    p_s = combine_probs(logits_s, lr_logits, sampled, m.combine)
    p_g = combine_probs(logits_g, lr_logits, g, m.combine)
    correct_s = p_s.argmax(1) == y
    r_s = reward(sampled, correct_s, sigma, cost_power)
    r_g = reward(g, p_g.argmax(1) == y, sigma, cost_power)
    loss = self_critical_loss(probs_x, sampled, r_s, r_g)
    if m.train_hr:
        loss = loss + F.nll_loss(torch.log(p_s.clamp_min(1e-8)), y)
    stats = {"correct": float(correct_s.sum()), "patches": float(sampled.sum()), "reward": float(r_s.sum())}
    return loss, stats


@torch.inference_mode()
def policy_predict(m: PolicyModels, hr: torch.Tensor, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time behaviour: greedy actions a = [s > 0.5] and class probabilities, (B, P), (B, K)."""
    actions = greedy(torch.sigmoid(m.policy(lr).float()))
    lr_logits = m.lr(lr) if m.lr is not None else None
    return actions, combine_probs(m.hr(apply_mask(hr, actions, m.grid)), lr_logits, actions, m.combine)


@torch.inference_mode()
def masked_predict(
    hr_model: nn.Module,
    lr_model: nn.Module | None,
    hr: torch.Tensor,
    lr: torch.Tensor,
    actions: torch.Tensor,
    combine: str,
    grid: tuple[int, int],
) -> torch.Tensor:
    """Class probabilities for given actions (baselines evaluated with a stage's classifiers)."""
    lr_logits = lr_model(lr) if lr_model is not None else None
    return combine_probs(hr_model(apply_mask(hr, actions, grid)), lr_logits, actions, combine)
