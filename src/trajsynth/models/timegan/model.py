"""TimeGAN's five recurrent networks, their losses, and generation.

embedder (features → embeddings H) and recovery (H → features) form an autoencoder; the
generator turns per-step noise and the condition into embeddings E, the supervisor predicts each
next embedding from the ones so far (H_t → H_{t+1}), and the discriminator gives per-step logits
of (embedding, condition) sequences. A generated sequence is recovery(supervisor(generator(Z, c))),
for a length drawn from the length table of its condition.

The model takes and returns the project's [-1, 1] features; inside, each feature is min-max scaled
over the training data, as the original's code does, onto the range of ``cfg.output`` (``sigmoid``:
[0, 1], the scale the original's loss weights were set on; ``tanh``: [-1, 1]). All losses are
masked to each sequence's valid steps; the recurrent stacks run forwards, so right padding never
reaches a valid step.
"""

from __future__ import annotations

import torch
from torch import nn

from ...blocks.length_table import LengthTable
from ...blocks.masks import length_mask
from ...blocks.rnn import StackedRecurrent
from ...blocks.scaling import MinMaxScaler
from ...losses.adversarial import masked_bce_logits
from ...losses.reconstruction import masked_moment_gap, masked_mse
from .config import TimeGANArch, TimeGANTrain

AUTOENCODER = ("embedder", "recovery", "scaler")  # the scaling the autoencoder learned on goes with it
GENERATOR = ("generator", "supervisor")
DISCRIMINATOR = ("discriminator",)


class TimeGAN(nn.Module):
    integer_paths = False  # continuous values: the sampler renders them onto the data's event clock
    directed = False  # conditioned on the distance only

    def __init__(self, cfg: TimeGANArch):
        super().__init__()
        self.cfg = cfg
        H, F, C, n = cfg.width, cfg.feature_dim, cfg.condition_dim, cfg.num_layers
        net = lambda i, layers, o, act: StackedRecurrent(i, H, layers, o, cfg.module, act, cfg.weight_init)  # noqa: E731
        self.embedder = net(F, n, H, "sigmoid")
        self.recovery = net(H, n, F, "none")  # the output range is applied by decode(): see cfg.output
        self.generator = net(cfg.z_dim + C, n, H, "sigmoid")
        self.supervisor = net(H, max(1, n - 1), H, "sigmoid")
        self.discriminator = net(H + C, n, 1, "none")  # per-step logits
        self.lengths = LengthTable(cfg.length_bins, cfg.length_quantiles, cfg.max_seq_len)
        self.scaler = MinMaxScaler(F)

    # ----- data range ---------------------------------------------------------
    @property
    def unit_range(self) -> bool:
        """Whether the networks work on [0, 1] (``sigmoid``; also an ``auto`` not yet resolved)."""
        return self.cfg.output != "tanh"

    def resolve_output(self, series: bool) -> None:
        """Settle ``output: auto`` for the training data: sigmoid for min-max scaled series windows (the
        original's setting), tanh for mouse features (already in [-1, 1], dx, dy symmetric about 0)."""
        if self.cfg.output == "auto":
            self.cfg.output = "sigmoid" if series else "tanh"

    def fit_data(self, x: torch.Tensor, c: torch.Tensor, lengths: torch.Tensor, series: bool) -> None:
        """What the model takes from its training data (N, T, F), conditions (N, C) and lengths (N,): the
        output range (if ``auto``), each feature's range and the length table."""
        self.resolve_output(series)
        self.scaler.fit(x, lengths)
        self.lengths.fit(c[:, 0], lengths)

    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Features (…, F) → the networks' range."""
        return self.scaler.to_unit(x, symmetric=not self.unit_range)

    def to_features(self, u: torch.Tensor) -> torch.Tensor:
        return self.scaler.from_unit(u, symmetric=not self.unit_range)

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, T, H) → the recovery's sequence in model range (B, T, F)."""
        y = self.recovery(h)
        return torch.sigmoid(y) if self.unit_range else torch.tanh(y)

    # ----- the networks' paths ------------------------------------------------
    @staticmethod
    def _with_condition(seq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, T, D) and conditions (B, C) → (B, T, D + C): the condition at every step."""
        return torch.cat([seq, c[:, None, :].expand(-1, seq.size(1), -1)], dim=-1)

    def generate_latent(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise (B, T, Z) and conditions (B, C) → (E_hat, H_hat) (B, T, H): raw and supervised embeddings."""
        e_hat = self.generator(self._with_condition(z, c))
        return e_hat, self.supervisor(e_hat)

    def discriminate(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self._with_condition(h, c))  # (B, T, 1) logits

    # ----- losses (u: a batch in model range, mask (B, T) its valid steps) --------
    def reconstruction_mse(self, u: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked MSE of recovery(embedder(u)) against u, the embeddings H)."""
        h = self.embedder(u)
        return masked_mse(self.decode(h), u, mask), h

    def supervised_mse(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Next-step prediction in the embedding space: supervisor(H)_t against H_{t+1}, for valid t + 1."""
        return masked_mse(self.supervisor(h)[:, :-1], h[:, 1:], mask[:, 1:])

    def generator_losses(self, u: torch.Tensor, c: torch.Tensor, z: torch.Tensor, mask: torch.Tensor,
                         w: TimeGANTrain) -> dict[str, torch.Tensor]:
        """The generator's (and supervisor's) loss: adversarial on both paths, √supervised, two moments.

        Calls on different sequences share one network call where they can (the supervisor on generated
        and real embeddings, the discriminator on both generated paths): the rows of a recurrent stack
        are independent, and on a CPU a small one costs per step, hardly per row.
        """
        with torch.no_grad():  # the real embeddings: this step trains generator and supervisor only
            h = self.embedder(u)
        e_hat = self.generator(self._with_condition(z, c))
        h_hat, s_real = self.supervisor(torch.cat([e_hat, h])).chunk(2)  # (B, T, H) each
        x_hat = self.decode(h_hat)  # (B, T, F)
        std_gap, mean_gap = masked_moment_gap(x_hat, u, mask)
        y_fake, y_fake_e = self.discriminate(torch.cat([h_hat, e_hat]), torch.cat([c, c])).chunk(2)
        out = {"adv": masked_bce_logits(y_fake, 1.0, mask), "adv_e": masked_bce_logits(y_fake_e, 1.0, mask),
               "supervised": masked_mse(s_real[:, :-1], h[:, 1:], mask[:, 1:]), "moments": std_gap + mean_gap}
        out["total"] = (out["adv"] + w.gamma * out["adv_e"] + w.eta * out["supervised"].sqrt()
                        + w.moment_weight * out["moments"])
        if w.diff_moment_weight > 0:  # the same gap on step-to-step differences, for steps t - 1 and t both valid
            out["diff_moments"] = sum(masked_moment_gap(x_hat.diff(dim=1), u.diff(dim=1), mask[:, 1:] & mask[:, :-1]))
            out["total"] = out["total"] + w.diff_moment_weight * out["diff_moments"]
        return out

    def embedder_losses(self, u: torch.Tensor, mask: torch.Tensor, w: TimeGANTrain) -> dict[str, torch.Tensor]:
        """The joint phase's autoencoder loss: recon_weight·√MSE plus the supervised loss through H."""
        mse, h = self.reconstruction_mse(u, mask)
        supervised = self.supervised_mse(h, mask)
        return {"recon": mse, "total": w.recon_weight * mse.sqrt() + w.embed_supervised_weight * supervised}

    def discriminator_losses(self, u: torch.Tensor, c: torch.Tensor, z: torch.Tensor, mask: torch.Tensor,
                             w: TimeGANTrain) -> dict[str, torch.Tensor]:
        """Real embeddings against both generated paths (the raw one weighted γ), in one discriminator call."""
        with torch.no_grad():  # this step trains the discriminator only
            h = self.embedder(u)
            e_hat, h_hat = self.generate_latent(z, c)
        y_real, y_fake, y_fake_e = self.discriminate(torch.cat([h, h_hat, e_hat]), torch.cat([c, c, c])).chunk(3)
        real = masked_bce_logits(y_real, 1.0, mask)
        fake = masked_bce_logits(y_fake, 0.0, mask)
        fake_e = masked_bce_logits(y_fake_e, 0.0, mask)
        return {"real": real, "fake": fake, "fake_e": fake_e, "total": real + fake + w.gamma * fake_e}

    # ----- generation -----------------------------------------------------------
    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 seq_len: int | None = None, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """conditions (n, C) → X (n, max_seq_len, F) features zero past each length, L (n,) int64.

        Lengths come from the length table of each condition unless ``seq_len`` fixes them. Chunks
        of similar length run only as far as their longest member.
        """
        cfg = self.cfg
        c = torch.as_tensor(conditions, dtype=torch.float32).reshape(n, -1)  # (n, C)
        if seq_len is None:
            lengths = self.lengths.sample(c[:, 0], rng).clamp(1, cfg.max_seq_len)
        else:
            lengths = torch.full((n,), int(seq_len), dtype=torch.int64)
        out = torch.zeros(n, cfg.max_seq_len, cfg.feature_dim)
        order = torch.argsort(lengths, stable=True)
        for s in range(0, n, chunk):
            idx = order[s : s + chunk]
            T = int(lengths[idx].max())
            z = torch.rand(len(idx), T, cfg.z_dim, generator=rng)  # U[0, 1) per step, as the original
            _, h_hat = self.generate_latent(z, c[idx])
            x = self.to_features(self.decode(h_hat))  # (b, T, F)
            out[idx, :T] = x * length_mask(lengths[idx], T).unsqueeze(-1)
        return out, lengths

    # ----- reconstruction (the evaluation's ceiling probe) ----------------------
    reconstruction_paths = {"autoencoder": "embedder → recovery: the decoder every generated sequence goes through"}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, lengths: torch.Tensor, condition: torch.Tensor | None = None,
                    path: str = "autoencoder") -> tuple[torch.Tensor, torch.Tensor]:
        """The autoencoder's copy of real sequences x (N, T, F) → (x_hat (N, T, F) zero-padded, lengths (N,))."""
        if path not in self.reconstruction_paths:
            raise ValueError(f"unknown reconstruction path {path!r}; choose one of "
                             f"{', '.join(self.reconstruction_paths)}")
        x_hat = self.to_features(self.decode(self.embedder(self.to_model(x))))
        return x_hat * length_mask(lengths, x.size(1)).unsqueeze(-1), lengths
