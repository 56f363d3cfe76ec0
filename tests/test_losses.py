"""Losses: the WGAN-GP terms and the masked reconstruction / moment-matching losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trajsynth.blocks.masks import length_mask
from trajsynth.losses.reconstruction import masked_mse, moment_matching
from trajsynth.losses.wgan import critic_loss, generator_loss, gradient_penalty

B, S = 64, 10


class LinearCritic(nn.Module):
    """D(z, c) = ⟨w, z⟩ + 5·c: its gradient in z is w everywhere, whatever the condition."""

    def __init__(self, slope: float):
        super().__init__()
        w = torch.randn(S, generator=torch.Generator().manual_seed(0))
        self.w = nn.Parameter(slope * w / w.norm())

    def forward(self, z, c):
        return z @ self.w[:, None] + 5 * c


class HalfSquaredNorm(nn.Module):
    """D(z, c) = ‖z‖² / 2: its gradient in z is z itself."""

    def forward(self, z, c):
        return 0.5 * (z**2).sum(-1, keepdim=True)


def batches(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, S, generator=g) * 2 - 1, torch.rand(B, S, generator=g) * 2 - 1, torch.rand(B, 1, generator=g)


# --------------------------------------------------------------------------- gradient penalty


def test_gradient_penalty_is_zero_for_a_one_lipschitz_linear_critic():
    real, fake, cond = batches()
    gp = gradient_penalty(LinearCritic(1.0), real, fake, cond)
    assert gp.shape == () and gp.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("slope", [3.0, 0.5])
def test_gradient_penalty_of_a_linear_critic_is_the_squared_slope_gap(slope):
    """Steeper (or flatter) than 1-Lipschitz is penalised by (‖w‖ − 1)², at every interpolate."""
    real, fake, cond = batches()
    critic = LinearCritic(slope)
    gp = gradient_penalty(critic, real, fake, cond)
    assert gp.item() == pytest.approx((slope - 1) ** 2, rel=1e-5)
    gp.backward()  # the penalty trains the critic: it pulls ‖w‖ back towards 1
    grad_along_w = (critic.w.grad @ critic.w).item()
    assert grad_along_w > 0 if slope > 1 else grad_along_w < 0


def test_gradient_penalty_is_taken_at_interpolates_between_real_and_fake():
    real, fake, cond = batches()
    gp = gradient_penalty(HalfSquaredNorm(), real, fake, cond, generator=torch.Generator().manual_seed(11))
    alpha = torch.rand(B, 1, generator=torch.Generator().manual_seed(11))
    x_hat = alpha * real + (1 - alpha) * fake
    assert gp.item() == pytest.approx(((x_hat.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)
    # the same generator seed gives the same penalty; another seed another one
    again = gradient_penalty(HalfSquaredNorm(), real, fake, cond, generator=torch.Generator().manual_seed(11))
    other = gradient_penalty(HalfSquaredNorm(), real, fake, cond, generator=torch.Generator().manual_seed(12))
    assert again.item() == gp.item() and other.item() != gp.item()


def test_gradient_penalty_when_real_equals_fake_is_taken_at_that_point():
    real, _, cond = batches()
    gp = gradient_penalty(HalfSquaredNorm(), real, real.clone(), cond)
    assert gp.item() == pytest.approx(((real.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)


# --------------------------------------------------------------------------- critic and generator losses


def test_critic_loss_sign():
    real_high, fake_low = torch.full((B, 1), 2.0), torch.full((B, 1), -1.0)
    assert critic_loss(real_high, fake_low).item() == pytest.approx(-3.0)  # a good critic has a negative loss
    assert critic_loss(fake_low, real_high).item() == pytest.approx(3.0)
    d = torch.randn(B, 1)
    assert critic_loss(d, d).item() == 0.0


def test_critic_loss_gradients_push_real_up_and_fake_down():
    d_real, d_fake = torch.randn(B, 1, requires_grad=True), torch.randn(B, 1, requires_grad=True)
    critic_loss(d_real, d_fake).backward()
    assert torch.allclose(d_real.grad, torch.full((B, 1), -1 / B))  # descending raises real scores
    assert torch.allclose(d_fake.grad, torch.full((B, 1), 1 / B))  # and lowers fake scores


def test_generator_loss_sign_and_gradient():
    assert generator_loss(torch.full((B, 1), 2.0)).item() == pytest.approx(-2.0)
    assert generator_loss(torch.full((B, 1), 3.0)) < generator_loss(torch.full((B, 1), 2.0))
    d_fake = torch.randn(B, 1, requires_grad=True)
    generator_loss(d_fake).backward()
    assert torch.allclose(d_fake.grad, torch.full((B, 1), -1 / B))  # descending raises the fake scores


# --------------------------------------------------------------------------- masked MSE


def test_masked_mse_equals_plain_mse_without_padding():
    a, b = torch.randn(3, 7, 4), torch.randn(3, 7, 4)
    full = torch.ones(3, 7, dtype=torch.bool)
    assert masked_mse(a, b, full).item() == pytest.approx(F.mse_loss(a, b).item(), rel=1e-6)


def test_masked_mse_ignores_padded_steps():
    lengths = torch.tensor([7, 4, 1])
    mask = length_mask(lengths, 7)
    a, b = torch.randn(3, 7, 4), torch.randn(3, 7, 4)
    loss = masked_mse(a, b, mask)
    # the mean over the valid steps only, every (step, dim) weighted the same
    valid = torch.cat([(a[i, :n] - b[i, :n]) ** 2 for i, n in enumerate(lengths.tolist())])
    assert loss.item() == pytest.approx(valid.mean().item(), rel=1e-6)
    # whatever sits past the lengths does not count, however large
    a2 = torch.where(mask.unsqueeze(-1), a, torch.full_like(a, 1e4))
    assert masked_mse(a2, b, mask).item() == pytest.approx(loss.item(), rel=1e-6)
    assert masked_mse(a, b, mask).item() != pytest.approx(F.mse_loss(a, b).item(), rel=1e-3)
    # and gets no gradient
    a3 = a.clone().requires_grad_(True)
    masked_mse(a3, b, mask).backward()
    assert a3.grad[~mask].abs().max() == 0 and a3.grad[mask].abs().sum() > 0


def test_masked_mse_is_zero_for_equal_inputs_and_finite_for_an_empty_mask():
    a = torch.randn(2, 5, 3)
    assert masked_mse(a, a.clone(), length_mask(torch.tensor([5, 2]), 5)).item() == 0.0
    empty = masked_mse(a, torch.randn(2, 5, 3), torch.zeros(2, 5, dtype=torch.bool))
    assert empty.item() == 0.0


# --------------------------------------------------------------------------- moment matching


def test_moment_matching_is_zero_for_identical_batches():
    real, _, _ = batches()
    assert moment_matching(real.clone(), real).item() == 0.0


def test_moment_matching_grows_with_a_shift():
    real, _, _ = batches()
    values = [moment_matching(real + s, real).item() for s in (0.0, 0.1, 0.5, 1.0)]
    assert values[0] == 0.0 and values == sorted(values) and len(set(values)) == 4
    # a shift moves only the means: the loss is the squared shift
    assert values[2] == pytest.approx(0.25, rel=1e-5) and values[3] == pytest.approx(1.0, rel=1e-5)


def test_moment_matching_sees_a_change_of_spread():
    real, _, _ = batches()
    centred = real - real.mean(0)
    loss = moment_matching(centred * 2, centred)  # same means, twice the standard deviations
    assert loss.item() == pytest.approx(F.mse_loss(2 * centred.std(0), centred.std(0)).item(), rel=1e-5)
    assert loss.item() > 0.05


def test_moment_matching_gradient_reaches_the_fake_batch():
    real, fake, _ = batches()
    fake = fake.requires_grad_(True)
    moment_matching(fake, real).backward()
    assert fake.grad.abs().sum() > 0
