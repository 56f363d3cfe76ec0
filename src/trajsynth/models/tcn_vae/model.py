"""The TCN-VAE: TCN encoder → (μ, log σ²) → z → TCN decoder, with activity and domain classifiers on z.

The encoder pools its causal TCN's outputs over each sequence's valid steps into μ and log σ². The
decoder sees z, the domain label (embedded, so z need not carry it), the condition and a few
position features at every step, and ends in tanh (the project's features lie in [-1, 1]). The
activity classifier reads z; the domain classifier reads z through a gradient-reversal layer,
so the encoder learns to hide the domain.

Generation draws z from the fitted latent distribution of the requested activity (a diagonal
Gaussian of the training posteriors of that class, fitted after training) and decodes it with the
requested domain; lengths come from a table of the training lengths per condition.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...blocks.length_table import LengthTable
from ...blocks.masks import length_mask
from ...blocks.tcn import TCN, reverse_gradient
from ...config import ConfigError
from ...losses.domain import domain_mmd
from ...losses.reconstruction import masked_mse
from .config import TCNVAEArch

POSITION_FREQS = 4  # sin / cos position features of the decoder, periods T, T/2, T/4, T/8
MOUSE_FEATURES = 8  # the shape a model has before the data resolves feature_dim = 0


def _head(d_in: int, hidden: int, classes: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))


class TCNVAE(nn.Module):
    integer_paths = False  # continuous values: the sampler renders them onto the data's event clock
    directed = False

    def __init__(self, cfg: TCNVAEArch):
        super().__init__()
        self.cfg = cfg
        self.lengths = LengthTable(cfg.length_bins, cfg.length_quantiles, cfg.max_seq_len)
        self._build(cfg.feature_dim or MOUSE_FEATURES, cfg.num_activities or 1, cfg.num_domains or 1)

    def _build(self, n_features: int, n_activities: int, n_domains: int) -> None:
        c, Z = self.cfg, self.cfg.latent_dim
        self.encoder = TCN(n_features, c.channels, c.kernel_size, c.dropout)
        self.to_latent = nn.Linear(c.channels[-1], 2 * Z)  # μ and log σ²
        self.domain_embed = nn.Embedding(n_domains, c.domain_embedding)
        self.decoder = TCN(Z + c.domain_embedding + c.condition_dim + 2 * POSITION_FREQS, c.channels,
                           c.kernel_size, c.dropout)
        self.to_features = nn.Linear(c.channels[-1], n_features)
        self.activity_head = _head(Z, c.head_hidden, n_activities)
        self.domain_head = _head(Z, c.head_hidden, n_domains)
        # The latent distribution of each activity (diagonal Gaussian), and how often each (activity, domain)
        # pair occurred in training: what generation draws from. Before fitting: the prior, all pairs alike.
        self.register_buffer("class_mu", torch.zeros(n_activities, Z))
        self.register_buffer("class_std", torch.ones(n_activities, Z))
        self.register_buffer("pair_count", torch.ones(n_activities, n_domains))

    def resolve(self, n_features: int, n_activities: int, n_domains: int) -> None:
        """Settle the sizes left at 0 from the training data; a size set in the config must match it."""
        c = self.cfg
        for name, value in (("feature_dim", n_features), ("num_activities", n_activities),
                            ("num_domains", n_domains)):
            given = getattr(c, name)
            if given and given != value and not (name != "feature_dim" and value <= given):
                raise ConfigError(f"{name}={given} does not match the training data ({value})")
            setattr(c, name, given or value)
        self._build(c.feature_dim, c.num_activities, c.num_domains)

    # ----- encoder ----------------------------------------------------------------
    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, F), lengths (B,) → μ, log σ² (B, Z): the TCN's outputs averaged over the valid steps."""
        h = self.encoder(x)  # (B, T, H)
        m = length_mask(lengths, x.size(1)).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, H)
        mu, logvar = self.to_latent(pooled).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    @torch.no_grad()
    def posterior(self, X: torch.Tensor, L: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """X (N, T, F), L (N,) → μ, log σ² (N, Z), in eval mode, ``chunk`` sequences at a time (each chunk cut
        to its longest sequence)."""
        self.eval()
        X, L = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(L, dtype=torch.int64)
        parts = [self.encode(X[s : s + chunk, : int(L[s : s + chunk].max())], L[s : s + chunk])
                 for s in range(0, len(L), chunk)]
        if not parts:
            return torch.zeros(0, self.cfg.latent_dim), torch.zeros(0, self.cfg.latent_dim)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def embed(self, X: torch.Tensor, L: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """X (N, T, F), L (N,) → μ (N, Z), in eval mode."""
        return self.posterior(X, L, chunk)[0]

    # ----- decoder ----------------------------------------------------------------
    def decode(self, z: torch.Tensor, domain: torch.Tensor, c: torch.Tensor, T: int) -> torch.Tensor:
        """z (B, Z), domain (B,) int64, c (B, C) → features (B, T, F) in [-1, 1]."""
        B = len(z)
        t = torch.arange(T, dtype=z.dtype) / self.cfg.max_seq_len  # (T,) position in the longest sequence
        freqs = math.pi * 2.0 ** torch.arange(POSITION_FREQS, dtype=z.dtype)  # (P,)
        pos = torch.cat([torch.sin(t[:, None] * freqs), torch.cos(t[:, None] * freqs)], -1)  # (T, 2P)
        per_seq = torch.cat([z, self.domain_embed(domain), c.reshape(B, -1)], -1)  # (B, Z + E + C)
        inp = torch.cat([per_seq[:, None].expand(B, T, -1), pos[None].expand(B, T, -1)], -1)
        return torch.tanh(self.to_features(self.decoder(inp)))

    # ----- losses -------------------------------------------------------------------
    def losses(self, x: torch.Tensor, x_in: torch.Tensor, c: torch.Tensor, lengths: torch.Tensor,
               activity: torch.Tensor, domain: torch.Tensor, alpha: float, beta: float, w) -> dict[str, torch.Tensor]:
        """The design's loss on a batch: vae (MSE + β·KL) + λ_act·activity + λ_dom·domain (+ λ_mmd·MMD²).

        x (B, T, F) the target, x_in the (augmented) input. The ELBO's scale: the squared error summed
        over each sequence's valid steps and channels, the KL summed over latent dimensions, both
        averaged over the batch (a per-element mean against a summed KL collapses the posterior);
        ``mse`` is the per-element mean, for the logs. The domain classifier's gradient reaches the
        encoder reversed × alpha.
        """
        mu, logvar = self.encode(x_in, lengths)  # (B, Z) each
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        mask = length_mask(lengths, x.size(1))  # (B, T)
        mse = masked_mse(self.decode(z, domain, c, x.size(1)), x, mask)
        recon = mse * mask.sum() * x.size(-1) / len(x)  # summed per sequence, mean over the batch
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
        act_logits = self.activity_head(mu)  # (B, A): the heads read z's mean, not a noisy draw of it
        dom_logits = self.domain_head(reverse_gradient(mu, alpha))  # (B, D)
        act = F.cross_entropy(act_logits, activity, label_smoothing=w.label_smoothing)
        dom = F.cross_entropy(dom_logits, domain)
        # the domains' posterior means pulled together as distributions (0 unless lambda_mmd > 0)
        mmd = domain_mmd(mu, domain) if w.lambda_mmd > 0 else mu.new_zeros(())
        vae = recon + beta * kl
        total = vae + w.lambda_act * act + w.lambda_dom * dom + w.lambda_mmd * mmd
        return {"total": total, "vae": vae, "recon": recon, "mse": mse, "kl": kl, "activity": act, "domain": dom,
                "mmd": mmd,
                "act_acc": (act_logits.argmax(-1) == activity).float().mean(),
                "dom_acc": (dom_logits.argmax(-1) == domain).float().mean()}

    # ----- the latent distribution per activity ------------------------------------------
    @torch.no_grad()
    def fit_classes(self, mu: torch.Tensor, logvar: torch.Tensor, activity: torch.Tensor, domain: torch.Tensor
                    ) -> None:
        """Each activity's aggregate posterior as a diagonal Gaussian: mean of μ, variance var(μ) + mean(σ²).

        mu, logvar (N, Z) of the training sequences, activity, domain (N,) int64; an activity absent
        from training keeps the pooled distribution of all sequences.
        """
        def gaussian(m: torch.Tensor, lv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return m.mean(0), (m.var(0, correction=0) + lv.exp().mean(0)).sqrt()

        pooled = gaussian(mu, logvar)
        for a in range(len(self.class_mu)):
            pick = activity == a
            self.class_mu[a], self.class_std[a] = gaussian(mu[pick], logvar[pick]) if pick.any() else pooled
        self.pair_count.zero_().index_put_((activity, domain), torch.ones(len(activity)), accumulate=True)

    # ----- generation -------------------------------------------------------------------
    def draw_labels(self, n: int, activity, domain, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(activity, domain) (n,) int64 each: the requested ones, the rest drawn as often as in training."""
        A, D = self.pair_count.shape
        act = None if activity is None else torch.as_tensor(activity, dtype=torch.int64).expand(n)
        dom = None if domain is None else torch.as_tensor(domain, dtype=torch.int64).expand(n)
        for name, labels, k in (("activity", act, A), ("domain", dom, D)):
            if labels is not None and (labels.min() < 0 or labels.max() >= k):
                raise ValueError(f"{name} must lie in [0, {k}), got {labels.tolist()[:5]}")
        w = self.pair_count.clone()  # (A, D)
        if act is not None or dom is not None:  # one draw per sequence from its allowed pairs
            w = w[None].expand(n, A, D).clone()
            if act is not None:
                w = w * F.one_hot(act, A).to(w.dtype)[:, :, None]
            if dom is not None:
                w = w * F.one_hot(dom, D).to(w.dtype)[:, None, :]
            w = torch.where(w.sum((1, 2), keepdim=True) > 0, w, torch.ones_like(w))
            flat = torch.multinomial(w.reshape(n, -1), 1, generator=rng)[:, 0]
        else:
            flat = torch.multinomial(w.reshape(-1), n, replacement=True, generator=rng)
        a, d = flat // D, flat % D
        return (a if act is None else act), (d if dom is None else dom)

    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 activity=None, domain=None) -> tuple[torch.Tensor, torch.Tensor]:
        """conditions (n, C) → X (n, max_seq_len, F) zero past each length, L (n,) int64.

        ``activity`` / ``domain``: one label or n labels (None: drawn as often as in training).
        """
        self.eval()
        cfg = self.cfg
        c = torch.as_tensor(conditions, dtype=torch.float32).reshape(n, -1)  # (n, C)
        a, d = self.draw_labels(n, activity, domain, rng)
        lengths = self.lengths.sample(c[:, 0], rng).clamp(1, cfg.max_seq_len)  # (n,)
        z = self.class_mu[a] + self.class_std[a] * torch.randn(n, cfg.latent_dim, generator=rng)  # (n, Z)
        out = torch.zeros(n, cfg.max_seq_len, cfg.feature_dim)
        T = int(lengths.max()) if n else 0
        if n:
            out[:, :T] = self.decode(z, d, c, T) * length_mask(lengths, T).unsqueeze(-1)
        return out, lengths

    @torch.no_grad()
    def classify(self, X: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        """Predicted activity (N,) int64 from z = μ."""
        return self.activity_head(self.embed(X, L)).argmax(-1)
