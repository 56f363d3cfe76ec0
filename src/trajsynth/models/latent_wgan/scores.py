"""What a search trial of each phase is scored on, on the validation split with the trial's best weights.

Stage 1 (both minimised):
  * ``recon_mse`` — reconstruction MSE through the summary (encoder → pooler → expander → decoder):
    the path every generated trajectory takes, so it bounds how good stage 2 can be.
  * ``latent_rel_err`` — latent quality: MSE between the expander's latent sequence and the
    encoder's, divided by the variance of the encoder's latents. Dividing by the variance makes it
    independent of latent_dim and of the latents' scale, so an encoder cannot score well by
    shrinking its latents; 0 means the summary keeps everything the decoder reads, 1 means it
    keeps no more than the mean.

Stage 2 (both minimised; coverage guards against collapse):
  * ``mmd`` — RBF MMD² between real and generated summaries (the evaluation suite's ``mmd_rbf``).
  * ``disc`` — the discriminative score (TimeGAN protocol, |accuracy − 0.5|) of decoded generated
    sequences against validation sequences.
  * ``coverage`` — coverage of the real summaries by generated ones (Naeem et al. 2020).
"""

from __future__ import annotations

import torch

from ...blocks.masks import length_mask
from ...data.loading import TrajectoryDataset
from ...metrics.discriminative import discriminative_score
from .model import LatentWGAN


@torch.no_grad()
def stage1_scores(model: LatentWGAN, ds: TrajectoryDataset, chunk: int = 512) -> dict[str, float]:
    """recon_mse, direct_mse and latent_rel_err over every sequence of ``ds`` (valid steps only)."""
    model.eval()
    order = torch.argsort(ds.L, stable=True)  # length-sorted chunks: little padding
    sums = dict(recon=0.0, direct=0.0, latent=0.0, n_x=0.0, n_h=0.0)
    h_sum = h_sq = None
    for s in range(0, len(ds), chunk):
        x, _, L = ds.batch(order[s : s + chunk])  # (b, T', F)
        mask = length_mask(L, x.size(1)).unsqueeze(-1).to(x.dtype)  # (b, T', 1)
        h = model.encoder(x)  # (b, T', latent)
        h_rec = model.expander(model.pooler(h, L), x.size(1), L)  # (b, T', latent)
        x_rec, x_dir = model.decoder(torch.cat([h_rec, h])).chunk(2)
        sums["recon"] += float(((x_rec - x) ** 2 * mask).sum())
        sums["direct"] += float(((x_dir - x) ** 2 * mask).sum())
        sums["latent"] += float(((h_rec - h) ** 2 * mask).sum())
        sums["n_x"] += float(mask.sum()) * x.size(-1)
        sums["n_h"] += float(mask.sum())
        hs, hq = (h * mask).sum((0, 1)), (h**2 * mask).sum((0, 1))  # (latent,)
        h_sum, h_sq = (hs, hq) if h_sum is None else (h_sum + hs, h_sq + hq)
    n = max(sums["n_h"], 1.0)
    var = float((h_sq / n - (h_sum / n) ** 2).clamp_min(0).mean())  # mean per-dimension variance
    latent_mse = sums["latent"] / (n * h_sum.numel())
    return {"recon_mse": sums["recon"] / max(sums["n_x"], 1.0), "direct_mse": sums["direct"] / max(sums["n_x"], 1.0),
            "latent_mse": latent_mse, "latent_rel_err": latent_mse / max(var, 1e-12)}


def stage2_disc(model: LatentWGAN, ds: TrajectoryDataset, n: int, iterations: int, seed: int) -> float:
    """Discriminative score of ``n`` generated sequences (conditioned like ``ds``'s first n) vs those n."""
    n = min(n, len(ds))
    model.eval()
    x_real, c, L_real = ds.batch(torch.arange(n))
    with torch.no_grad():  # (the classifier below trains with gradients)
        x_fake, L_fake = model.generate(n, c, rng=torch.Generator().manual_seed(seed))
    score = discriminative_score(x_real.numpy(), L_real.numpy(), x_fake.numpy(), L_fake.numpy(),
                                 protocol="timegan", iterations=iterations, seed=seed)
    return float(score.mean)
