"""Reward, exploration bound, self-critical advantage and masks against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zoomplan.train.masks import (
    FIXED_H,
    FIXED_V,
    apply_mask,
    counts_for_mean,
    priority_actions,
    random_actions,
    stochastic_actions,
    stochastic_probs,
)
from zoomplan.train.reward import alpha_at, explore, greedy, log_prob, reward, self_critical_loss
from zoomplan.train.steps import PolicyModels, combine_probs, cosine_lr


def test_reward_hand_values() -> None:
    a = torch.zeros(3, 16)
    a[0, :4] = 1  # 4 of 16 -> 1 - 0.25^2 = 0.9375
    a[1, :16] = 1  # all -> 0
    a[2, :8] = 1  # wrong -> -sigma whatever |a|
    r = reward(a, torch.tensor([True, True, False]), sigma=0.5)
    torch.testing.assert_close(r, torch.tensor([0.9375, 0.0, -0.5]))
    assert reward(a[:1], torch.tensor([False]), sigma=20.0).item() == -20.0
    # cost_power 1: the first patches cost as much as the last (4 of 16 -> 1 - 0.25 = 0.75).
    torch.testing.assert_close(
        reward(a, torch.tensor([True, True, False]), sigma=0.5, power=1.0), torch.tensor([0.75, 0.0, -0.5])
    )


def test_exploration_bound() -> None:
    s = torch.tensor([[0.0, 0.5, 1.0, 0.9]])
    torch.testing.assert_close(explore(s, 0.8), torch.tensor([[0.2, 0.5, 0.8, 0.74]]))
    assert alpha_at(0, 10, 0.7, 0.95) == pytest.approx(0.7)
    assert alpha_at(9, 10, 0.7, 0.95) == pytest.approx(0.95)
    assert alpha_at(3, 10, 0.8, 0.8) == pytest.approx(0.8)
    assert greedy(torch.tensor([[0.5, 0.51, 0.2]])).tolist() == [[0.0, 1.0, 0.0]]


def test_self_critical_loss_hand_value() -> None:
    probs = torch.tensor([[0.8, 0.4]], requires_grad=True)
    a = torch.tensor([[1.0, 0.0]])
    # log pi(a) = log 0.8 + log 0.6 ; advantage = 0.9 - 0.5 = 0.4 ; loss = -0.4 * log pi
    loss = self_critical_loss(probs, a, torch.tensor([0.9]), torch.tensor([0.5]))
    assert loss.item() == pytest.approx(-0.4 * (math.log(0.8) + math.log(0.6)), rel=1e-6)
    loss.backward()
    # d/ds1 of -A log s1 = -A / s1 ; d/ds2 of -A log(1 - s2) = A / (1 - s2)
    torch.testing.assert_close(probs.grad, torch.tensor([[-0.4 / 0.8, 0.4 / 0.6]]))
    assert log_prob(torch.tensor([[0.8, 0.4]]), a).item() == pytest.approx(math.log(0.48))


def test_zero_advantage_gives_no_gradient() -> None:
    probs = torch.full((2, 16), 0.3, requires_grad=True)
    a = torch.bernoulli(torch.full((2, 16), 0.5))
    self_critical_loss(probs, a, torch.ones(2), torch.ones(2)).backward()
    assert torch.all(probs.grad == 0)


def test_mask_zeroes_dropped_patches_only() -> None:
    x = torch.ones(1, 3, 8, 8)
    a = torch.zeros(1, 16)
    a[0, 5] = 1  # row 1, col 1 -> pixels [2:4, 2:4]
    m = apply_mask(x, a)
    assert m.sum().item() == 3 * 4
    assert torch.all(m[0, :, 2:4, 2:4] == 1)


def test_fixed_orders_and_counts() -> None:
    assert sorted(FIXED_H) == list(range(16)) and sorted(FIXED_V) == list(range(16))
    a = priority_actions(FIXED_H, torch.tensor([2, 0]), 16)
    assert a[0].nonzero().flatten().tolist() == [5, 6] and a[1].sum() == 0
    assert priority_actions(FIXED_V, torch.tensor([5]), 16)[0].nonzero().flatten().tolist() == [4, 5, 6, 7, 8]
    g = torch.Generator().manual_seed(0)
    c = counts_for_mean(1000, 5.3, 16, g)
    assert c.float().mean().item() == pytest.approx(5.3) and set(c.tolist()) == {5, 6}
    r = random_actions(c, 16, g)
    assert torch.equal(r.sum(1).long(), c)


def test_stochastic_baseline_mean_and_centre_bias() -> None:
    p = stochastic_probs(6.0)
    assert p.sum().item() == pytest.approx(6.0, abs=1e-4)
    assert p[5] > p[1] > p[0]  # centre > edge > corner
    acts = stochastic_actions(4000, 6.0, (4, 4), torch.Generator().manual_seed(1))
    assert acts.sum(1).mean().item() == pytest.approx(6.0, abs=0.1)


def test_combine_rules() -> None:
    h = torch.tensor([[2.0, 0.0]])
    lr = torch.tensor([[0.0, 2.0]])
    none = torch.zeros(1, 16)
    torch.testing.assert_close(combine_probs(h, lr, none, "paper"), lr.softmax(1))  # no patch -> LR alone
    torch.testing.assert_close(combine_probs(h, lr, torch.ones(1, 16), "paper"), h.softmax(1))
    half = torch.cat([torch.ones(1, 8), torch.zeros(1, 8)], 1)
    torch.testing.assert_close(combine_probs(h, lr, half, "paper"), 0.5 * h.softmax(1) + 0.5 * lr.softmax(1))
    torch.testing.assert_close(combine_probs(h, lr, half, "logit-sum"), torch.tensor([[0.5, 0.5]]))


def test_cosine_lr() -> None:
    assert cosine_lr(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert cosine_lr(10, 100, 1.0, warmup=10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0) == pytest.approx(0.0)


class _Const(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 3), self.value)


def test_out_of_fold_lr_logits_come_from_the_fold_that_never_saw_the_image() -> None:
    pm = PolicyModels(
        nn.Identity(),
        nn.Identity(),
        _Const(-1.0),
        True,
        "paper",
        (4, 4),
        lr_folds=[_Const(0.0), _Const(1.0), _Const(2.0)],
        fold_of=torch.tensor([2, 0, 1, 1, 0]),
    )
    x = torch.zeros(3, 3, 8, 8)
    got = pm.lr_logits(x, torch.tensor([0, 3, 4]))
    assert got[:, 0].tolist() == [2.0, 1.0, 0.0]
    assert pm.lr_logits(x)[:, 0].tolist() == [-1.0, -1.0, -1.0]  # no index (val/test): the full LR classifier
