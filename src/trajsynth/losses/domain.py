"""A differentiable two-sample penalty between the latent codes of different domains in a batch.

MMD² (Gretton et al., JMLR 2012) with a sum of Gaussian kernels at several widths, on codes
standardised per dimension by the batch's own spread (detached): a dimension that carries the
domain at a tiny scale counts as much as a wide one, as it does for a classifier that standardises
its inputs. Used by the TCN-VAE to pull each domain's posterior means onto the others'.
"""

from __future__ import annotations

import torch

WIDTHS = (0.5, 1.0, 2.0, 4.0)  # kernel widths, in units of the per-dimension standard deviation × √dims


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a (n, Z), b (m, Z) → (n, m): Σ_w exp(−‖a − b‖² / (2 w² Z))."""
    d2 = torch.cdist(a, b).pow(2) / a.size(1)
    return sum(torch.exp(-d2 / (2.0 * w * w)) for w in WIDTHS)


def mmd2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² of two samples a (n, Z), b (m, Z), n, m ≥ 2."""
    n, m = len(a), len(b)
    kaa, kbb = _kernel(a, a), _kernel(b, b)
    same = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1)) + (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return same - 2.0 * _kernel(a, b).mean()


def domain_mmd(z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """z (B, Z), domain (B,) int64 → Σ over domains d of MMD²(z of d, z of the others); 0 with one domain.

    Domains with fewer than two codes in the batch (or whose complement has fewer) are skipped.
    """
    scale = z.detach().std(0, keepdim=True).clamp_min(1e-6)  # (1, Z)
    zs = z / scale
    total = z.new_zeros(())
    labels = torch.unique(domain)
    for d in labels if len(labels) > 2 else labels[:1]:  # two domains: one comparison covers both
        pick = domain == d
        if 2 <= int(pick.sum()) <= len(domain) - 2:
            total = total + mmd2(zs[pick], zs[~pick])
    return total
