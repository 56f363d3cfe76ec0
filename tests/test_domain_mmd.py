"""The domain two-sample penalty: zero in expectation for one distribution, large for shifted ones."""

from __future__ import annotations

import pytest
import torch

from trajsynth.losses.domain import domain_mmd, mmd2


def test_mmd_separates_shifted_samples_from_alike_ones():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 8, generator=g), torch.randn(200, 8, generator=g)
    alike = float(mmd2(a, b))
    shifted = float(mmd2(a, b + 1.0))
    assert abs(alike) < 0.02, "unbiased: about zero for two samples of one distribution"
    assert shifted > 20 * max(abs(alike), 1e-3)


def test_one_standardised_dimension_counts():
    """A domain carried by one narrow dimension among 32 wide ones is still seen (the codes are standardised)."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(256, 32, generator=g) * 10.0
    domain = torch.arange(256) % 2
    z[:, 0] = torch.randn(256, generator=g) * 1e-3 + domain * 3e-3  # 3 σ apart, at a tiny scale
    assert float(domain_mmd(z, domain)) > 0.01
    z[:, 0] = torch.randn(256, generator=g) * 1e-3
    assert abs(float(domain_mmd(z, domain))) < 0.01


def test_domains_that_cannot_be_compared_give_zero_and_gradients_flow():
    z = torch.randn(10, 4, requires_grad=True)
    assert float(domain_mmd(z, torch.zeros(10, dtype=torch.int64))) == 0.0, "one domain"
    assert float(domain_mmd(z, torch.tensor([1] + [0] * 9))) == 0.0, "a domain of one code"
    three = domain_mmd(z, torch.arange(10) % 3)
    three.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("n_domains", [2, 3])
def test_two_domains_are_one_comparison(n_domains):
    g = torch.Generator().manual_seed(2)
    z = torch.randn(60, 4, generator=g)
    d = torch.arange(60) % n_domains
    zs = z / z.std(0, keepdim=True)
    pairs = [mmd2(zs[d == k], zs[d != k]) for k in range(n_domains)]
    want = pairs[0] if n_domains == 2 else sum(pairs)
    assert torch.allclose(domain_mmd(z, d), want)
