"""Context-FID: Fréchet distance between learned embeddings of real and generated sequences.

As Diffusion-TS (Yuan & Qiao 2024) reports it, after Jeha et al. 2022: a TS2Vec encoder
(Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series") is trained on
the real data only; each sequence is embedded by max-pooling the encoder's per-step
representation over the whole series; Gaussians are fitted to the real and the generated
embeddings and compared with the Fréchet distance

    FD = |μ_r - μ_g|² + tr(Σ_r + Σ_g - 2 (Σ_r Σ_g)^½).

The encoder here is a small TS2Vec: a linear input projection, timestamp masking during
training, a stack of residual blocks of dilated 1-D convolutions, and the hierarchical
contrastive loss (instance-wise and temporal contrast, repeated over max-pooled time scales)
between two overlapping random crops. It is variable-length aware: hidden states are zeroed
past each length before every convolution, so padding (its content and its amount) never
reaches a valid step, and the embedding pools valid steps only.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import MetricInfo, register
from .distribution import _check_same_features, check_sequences, check_vectors

register(MetricInfo(
    "context_fid", "lower", 0.0,
    "Fréchet distance between Gaussians fitted to TS2Vec-style embeddings (encoder trained on real data only) "
    "of real and generated sequences",
))


# --------------------------------------------------------------------------- network


class _DilatedBlock(nn.Module):
    """Residual block: GELU → dilated conv → GELU → dilated conv, + (projected) input."""

    def __init__(self, c_in: int, c_out: int, dilation: int, kernel_size: int = 3):
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2  # "same" length for odd kernels
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad, dilation=dilation)
        self.project = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """h (B, C, T), keep (B, 1, T) 1 on valid steps; padded steps stay exactly 0."""
        residual = h if self.project is None else self.project(h)
        h = self.conv1(F.gelu(h)) * keep  # (B, C_out, T)
        h = self.conv2(F.gelu(h)) * keep
        return (h + residual) * keep


class _TS2VecNet(nn.Module):
    """Input projection + dilated residual blocks (dilations 1, 2, 4, …) → (B, T, out_dims)."""

    def __init__(self, input_dims: int, hidden_dims: int, output_dims: int, depth: int):
        super().__init__()
        self.input_fc = nn.Linear(input_dims, hidden_dims)
        chans = [hidden_dims] * (depth + 1) + [output_dims]  # depth hidden blocks, then one to output_dims
        self.blocks = nn.ModuleList(
            _DilatedBlock(chans[i], chans[i + 1], dilation=2**i) for i in range(depth + 1)
        )
        self.repr_dropout = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, step_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, F), valid (B, T) bool; step_mask (B, T) bool: steps whose input is hidden (training)."""
        keep = valid if step_mask is None else valid & ~step_mask  # (B, T)
        h = self.input_fc(torch.where(valid[..., None], x, 0.0))  # (B, T, H); padding content never enters
        h = (h * keep[..., None]).transpose(1, 2)  # (B, H, T)
        valid_f = valid[:, None, :].to(h.dtype)  # (B, 1, T)
        for block in self.blocks:
            h = block(h, valid_f)
        return self.repr_dropout(h.transpose(1, 2))  # (B, T, D)


# --------------------------------------------------------------------------- contrastive loss


def _contrast(z: torch.Tensor, n: int) -> torch.Tensor:
    """z (G, 2n, D): row i's positive is row i ± n, every other row a negative; mean cross-entropy."""
    sim = z @ z.transpose(1, 2)  # (G, 2n, 2n)
    eye = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))  # a row is never its own candidate
    target = (torch.arange(2 * n, device=z.device) + n) % (2 * n)  # (2n,)
    return F.cross_entropy(sim.reshape(-1, 2 * n), target.repeat(len(z)))


def instance_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """At each step, the same series' other view against the other series of the batch. z (B, T, D)."""
    if z1.shape[0] == 1:
        return z1.new_zeros(())
    return _contrast(torch.cat([z1, z2], 0).transpose(0, 1), z1.shape[0])  # (T, 2B, D)


def temporal_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Within each series, the same step's other view against the other steps. z (B, T, D)."""
    if z1.shape[1] == 1:
        return z1.new_zeros(())
    return _contrast(torch.cat([z1, z2], 1), z1.shape[1])  # (B, 2T, D)


def hierarchical_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """TS2Vec's loss: both contrasts at every time scale, halving the scale by max-pooling until one step."""
    loss, scales = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        loss = loss + alpha * instance_contrastive_loss(z1, z2) + (1 - alpha) * temporal_contrastive_loss(z1, z2)
        scales += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)  # (B, T // 2, D)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    loss = loss + alpha * instance_contrastive_loss(z1, z2)
    return loss / (scales + 1)


# --------------------------------------------------------------------------- batches and crops


def _take_rows(X: torch.Tensor, start: torch.Tensor, length: int) -> torch.Tensor:
    """X (B, T, F), start (B,) → (B, length, F): each row's window starting at its own offset."""
    idx = start[:, None] + torch.arange(length)[None, :]  # (B, length)
    return torch.gather(X, 1, idx[..., None].expand(-1, -1, X.shape[2]))


def _length_batch(L: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of sequences of similar length: a random run of a jittered length ordering.

    Similar lengths keep the shared window long; the ±10 % jitter varies which series meet
    as negatives from one batch to the next.
    """
    order = np.argsort(L * np.exp(rng.normal(0.0, 0.1, len(L))), kind="stable")
    start = rng.integers(0, len(L) - batch_size + 1)
    return order[start : start + batch_size]


def _two_views(x: torch.Tensor, lengths: np.ndarray, rng: np.random.Generator):
    """TS2Vec's two overlapping crops, inside each series' valid part. Returns (view1, view2, overlap)."""
    W = int(lengths.min())  # a window every series in the batch can fill
    B = len(lengths)
    base = rng.integers(0, lengths - W + 1)  # (B,) where each series' window starts
    crop_l = int(rng.integers(2, W + 1))  # overlap length
    left = int(rng.integers(0, W - crop_l + 1))
    right = left + crop_l
    ext_left = int(rng.integers(0, left + 1))
    ext_right = int(rng.integers(right, W + 1))
    shift = rng.integers(-ext_left, W - ext_right + 1, size=B)  # (B,) both views move together
    v1 = _take_rows(x, torch.as_tensor(base + shift + ext_left), right - ext_left)  # (B, ·, F)
    v2 = _take_rows(x, torch.as_tensor(base + shift + left), ext_right - left)  # (B, ·, F)
    return v1, v2, crop_l


# --------------------------------------------------------------------------- encoder

_BUCKET = 16  # views and encoding chunks are padded to a multiple of this many steps


class SeriesEncoder:
    """A small TS2Vec encoder for variable-length series: ``fit`` on real data, then ``encode``.

    ``encode`` returns one vector per sequence, the max over its valid steps of the per-step
    representation. Weights used for encoding are the running average of all training
    iterates (as TS2Vec does), which makes the embedding steadier than the last iterate.
    """

    def __init__(self, input_dims: int, hidden_dims: int = 64, output_dims: int = 128, depth: int = 6,
                 lr: float = 1e-3, mask_prob: float = 0.5, num_threads: int | None = 1):
        if min(input_dims, hidden_dims, output_dims) < 1 or depth < 0:
            raise ValueError("input_dims, hidden_dims, output_dims must be ≥ 1 and depth ≥ 0")
        if not 0.0 <= mask_prob < 1.0:
            raise ValueError(f"mask_prob must lie in [0, 1), got {mask_prob}")
        self.config = dict(input_dims=int(input_dims), hidden_dims=int(hidden_dims),
                           output_dims=int(output_dims), depth=int(depth), lr=float(lr), mask_prob=float(mask_prob))
        self.net = self._build()
        self.fitted = False
        self.train_seconds = 0.0
        # Intra-op threads for fit / encode (None: leave torch's setting). The convolutions are
        # small, so threads gain little; on a busy 2-core machine, 300 iterations took 14 s on
        # one thread and 315 s on two (threads waiting on each other for a core).
        self.num_threads = num_threads

    def _build(self) -> _TS2VecNet:
        c = self.config
        return _TS2VecNet(c["input_dims"], c["hidden_dims"], c["output_dims"], c["depth"])

    @property
    def output_dims(self) -> int:
        return self.config["output_dims"]

    def _check(self, X, L, name: str) -> tuple[np.ndarray, np.ndarray]:
        X, L = check_sequences(X, L, name)
        if X.shape[2] != self.config["input_dims"]:
            raise ValueError(f"{name}: {X.shape[2]} features per step, the encoder expects {self.config['input_dims']}")
        return X, L

    @contextmanager
    def _threads(self):
        """torch's intra-op thread count set to ``num_threads`` for a block, then restored."""
        before = torch.get_num_threads()
        torch.set_num_threads(self.num_threads or before)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def fit(self, X, L, seed: int = 0, iterations: int = 300, batch_size: int = 16) -> list[float]:
        """Train on (X, L) from a fresh initialisation given ``seed``; returns the loss of each iteration.

        Series of length 1 cannot be cropped in two and are left out of training. The global
        torch RNG state is restored afterwards.
        """
        X, L = self._check(X, L, "fit")
        keep = np.flatnonzero(L >= 2)
        if len(keep) < 2:
            raise ValueError(f"fit needs at least 2 sequences of length ≥ 2, got {len(keep)}")
        if iterations < 1 or batch_size < 2:
            raise ValueError(f"iterations must be ≥ 1 and batch_size ≥ 2, got {iterations}, {batch_size}")
        Xt, L = torch.as_tensor(X[keep]), L[keep]
        batch_size = min(batch_size, len(L))
        t0 = time.perf_counter()
        with self._threads(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            losses = self._train(Xt, L, np.random.default_rng(seed), iterations, batch_size)
        self.train_seconds = time.perf_counter() - t0
        self.fitted = True
        return losses

    def _train(self, Xt: torch.Tensor, L: np.ndarray, rng: np.random.Generator,
               iterations: int, batch_size: int) -> list[float]:
        net = self._build()
        avg = [p.detach().clone() for p in net.parameters()]  # running mean of the iterates
        opt = torch.optim.AdamW(net.parameters(), lr=self.config["lr"])
        net.train()
        losses = []
        for it in range(iterations):
            idx = _length_batch(L, batch_size, rng)
            v1, v2, crop_l = _two_views(Xt[idx], L[idx], rng)
            z1 = self._forward_masked(net, v1)[:, -crop_l:]  # (B, crop_l, D) the overlap, end of view 1
            z2 = self._forward_masked(net, v2)[:, :crop_l]  # (B, crop_l, D) the overlap, start of view 2
            loss = hierarchical_contrastive_loss(z1, z2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                for a, p in zip(avg, net.parameters(), strict=True):
                    a += (p - a) / (it + 1)  # equal-weight mean of every iterate after a step
            losses.append(float(loss.detach()))
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(f"encoder loss became {losses[-1]} at iteration {it}")
        with torch.no_grad():
            for a, p in zip(avg, net.parameters(), strict=True):
                p.copy_(a)
        self.net = net.eval()
        return losses

    def _forward_masked(self, net: _TS2VecNet, v: torch.Tensor) -> torch.Tensor:
        """Encode a fully valid view, hiding each step's input with probability ``mask_prob`` (timestamp masking).

        The view is padded to a multiple of ``_BUCKET`` steps (masked as padding, so the
        result is unchanged): CPU convolution kernels are prepared per input shape, and a few
        shapes avoid preparing new ones for every crop length.
        """
        B, T, _ = v.shape
        Tp = -(-T // _BUCKET) * _BUCKET
        v = F.pad(v, (0, 0, 0, Tp - T))  # (B, Tp, F)
        valid = (torch.arange(Tp) < T)[None, :].expand(B, -1)  # (B, Tp)
        step_mask = torch.rand(B, Tp) < self.config["mask_prob"]  # (B, Tp)
        return net(v, valid, step_mask)[:, :T]  # (B, T, D)

    @torch.no_grad()
    def encode(self, X, L, batch_size: int = 256) -> np.ndarray:
        """(N, output_dims) float32: each sequence's representation max-pooled over its valid steps."""
        if not self.fitted:
            raise RuntimeError("SeriesEncoder.encode called before fit (or load_state_dict)")
        X, L = self._check(X, L, "encode")
        with self._threads():
            return self._encode(X, L, batch_size)

    def _encode(self, X: np.ndarray, L: np.ndarray, batch_size: int) -> np.ndarray:
        self.net.eval()  # no timestamp masking, no dropout
        order = np.argsort(L, kind="stable")  # similar lengths together: little padding per chunk
        out = np.empty((len(L), self.output_dims), np.float32)
        for s in range(0, len(L), batch_size):
            idx = order[s : s + batch_size]
            T = -(-int(L[idx].max()) // _BUCKET) * _BUCKET  # the chunk's longest, rounded up: few shapes
            x = F.pad(torch.as_tensor(X[idx, :T]), (0, 0, 0, max(0, T - X.shape[1])))  # (b, T, F)
            valid = torch.arange(T)[None, :] < torch.as_tensor(L[idx])[:, None]  # (b, T)
            h = self.net(x, valid).masked_fill(~valid[..., None], float("-inf"))  # (b, T, D)
            out[idx] = h.max(dim=1).values.numpy()
        return out

    def state_dict(self) -> dict:
        """Config, weights and training time; loads with ``torch.load(..., weights_only=True)``."""
        return {"config": dict(self.config), "weights": self.net.state_dict(),
                "fitted": self.fitted, "train_seconds": self.train_seconds}

    def load_state_dict(self, state: dict) -> None:
        if state.get("config") != self.config:
            raise ValueError(f"encoder config mismatch: saved {state.get('config')}, this encoder {self.config}")
        self.net.load_state_dict(state["weights"])
        self.net.eval()
        self.fitted = bool(state.get("fitted", True))
        self.train_seconds = float(state.get("train_seconds", 0.0))

    @classmethod
    def from_state_dict(cls, state: dict) -> SeriesEncoder:
        enc = cls(**state["config"])
        enc.load_state_dict(state)
        return enc


# --------------------------------------------------------------------------- Fréchet distance


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to ``a`` (N, D) and ``b`` (M, D).

    tr((Σa Σb)^½) is computed as tr((Σa^½ Σb Σa^½)^½): the same eigenvalues, but of a
    symmetric PSD matrix, so the eigendecomposition is real and stable.
    """
    a, b = check_vectors(a, "a").numpy(), check_vectors(b, "b").numpy()
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has {a.shape[1]} dimensions, b has {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"covariances need at least 2 samples per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)  # (D, D)
    root_a = _sqrt_psd(cov_a)
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    fd = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean
    return float(max(fd, 0.0))


def context_fid(real_X, real_L, fake_X, fake_L, encoder: SeriesEncoder | None = None, seed: int = 0,
                iterations: int = 300) -> float:
    """Context-FID of generated (fake_X, fake_L) against (real_X, real_L).

    Without ``encoder``, a :class:`SeriesEncoder` is trained on the real sequences with
    ``seed`` for ``iterations`` steps; pass a fitted one to reuse it across models.
    """
    real_X, real_L = check_sequences(real_X, real_L, "real")
    fake_X, fake_L = check_sequences(fake_X, fake_L, "generated")
    _check_same_features(real_X, fake_X)
    if encoder is None:
        encoder = SeriesEncoder(real_X.shape[2])
        encoder.fit(real_X, real_L, seed=seed, iterations=iterations)
    return frechet_distance(encoder.encode(real_X, real_L), encoder.encode(fake_X, fake_L))
