"""Distribution metrics: how close a generated set is to the real one as a whole.

Every function takes plain arrays and returns plain numbers; the registry entries
below say how to read them. Sequences come as X (N, T, F), zero-padded past each
length, and L (N,) lengths in [1, T]; whatever lies in the padding is ignored.

* :func:`mmd_rbf` / :func:`sequence_mmd` — squared maximum mean discrepancy with
  a multi-bandwidth Gaussian kernel (Gretton et al. 2012, unbiased estimator).
* :func:`coverage_density` — Naeem et al. 2020, "Reliable Fidelity and Diversity
  Metrics for Generative Models".
* :func:`correlational_score` — the cross-correlation score of Diffusion-TS
  (Yuan & Qiao 2024), restricted to valid steps.
* :func:`wasserstein1` / :func:`length_distance` — 1-D Wasserstein distance.
* :func:`condition_error` — how far generated end points land from the request.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import MetricInfo, check_sequences, register

# Multipliers of the median pairwise distance used as RBF bandwidths when none are given.
MEDIAN_MULTIPLIERS = (0.5, 1.0, 2.0)

register(MetricInfo(
    "mmd", "lower", 0.0,
    "Squared MMD (RBF, median-heuristic bandwidths) between real and generated sequences, each resampled "
    "to a fixed number of steps over its valid part, flattened, plus its normalised length",
    (0.01, 0.05, 0.1),
))
register(MetricInfo(
    "mmd_latent", "lower", 0.0,
    "Squared MMD (RBF, median-heuristic bandwidths) between encoder summary vectors of real and generated sequences",
    (0.01, 0.05, 0.1),
))
register(MetricInfo(
    "coverage", "higher", 1.0,
    "Share of real samples whose k-NN ball holds at least one generated sample (Naeem et al. 2020): diversity",
    (0.85, 0.7, 0.5),
))
register(MetricInfo(
    "density", "higher", 1.0,
    "Mean count of real k-NN balls holding each generated sample, divided by k (Naeem et al. 2020): fidelity. "
    "About 1 when generated samples are distributed like real ones; above 1 means crowding in dense real regions",
))
register(MetricInfo(
    "correlational", "lower", 0.0,
    "Diffusion-TS correlational score: summed |real - generated| feature-pair correlations over valid steps, / 10",
))
register(MetricInfo(
    "length_w1", "lower", 0.0, "Wasserstein-1 distance between real and generated sequence lengths, in steps",
))
register(MetricInfo(
    "length_w1_rel", "lower", 0.0, "Wasserstein-1 distance between lengths, divided by the mean real length",
))
register(MetricInfo(
    "cond_rel_err_median", "lower", 0.0,
    "Median of |generated end distance - requested distance| / requested distance",
    (0.02, 0.05, 0.10),
))
register(MetricInfo(
    "cond_rel_err_p90", "lower", 0.0,
    "90th percentile of |generated end distance - requested distance| / requested distance",
))


# --------------------------------------------------------------------------- input checks


def check_vectors(a, name: str) -> torch.Tensor:
    """(N, D) finite, non-empty array → float64 tensor, or a ValueError naming ``name``."""
    t = torch.as_tensor(np.asarray(a, dtype=np.float64))
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, D), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{name}: empty array of shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return t


def _check_same_features(real_X: np.ndarray, fake_X: np.ndarray) -> None:
    if real_X.shape[2] != fake_X.shape[2]:
        raise ValueError(f"real has {real_X.shape[2]} features per step, generated has {fake_X.shape[2]}")


def _subsample(t: torch.Tensor, max_n: int, gen: torch.Generator) -> torch.Tensor:
    """At most ``max_n`` rows, drawn without replacement."""
    if len(t) <= max_n:
        return t
    return t[torch.randperm(len(t), generator=gen)[:max_n]]


# --------------------------------------------------------------------------- MMD


def median_bandwidth(d_aa: torch.Tensor, d_bb: torch.Tensor, d_ab: torch.Tensor) -> float:
    """Median of all pairwise distances of the pooled set (each unordered pair once)."""
    iu_a = torch.triu_indices(len(d_aa), len(d_aa), offset=1)
    iu_b = torch.triu_indices(len(d_bb), len(d_bb), offset=1)
    pooled = torch.cat([d_aa[iu_a[0], iu_a[1]], d_bb[iu_b[0], iu_b[1]], d_ab.reshape(-1)])
    med = float(pooled.median())
    return med if med > 0 else 1.0  # all points identical: any bandwidth gives the same (zero) MMD


def mmd_rbf(a, b, bandwidths=None, seed: int = 0, max_n: int = 2000) -> float:
    """Unbiased squared MMD between sample sets ``a`` (N, D) and ``b`` (M, D) with an RBF kernel.

    k(x, y) = mean over bandwidths σ of exp(-|x - y|² / (2σ²)). With ``bandwidths=None`` the
    σ are the median pooled pairwise distance (median heuristic) times 0.5, 1 and 2, so the
    score reacts to both fine and coarse differences without tuning. The unbiased estimator
    leaves out the i = j terms, so it can be slightly negative when the sets match; each set
    is subsampled to ``max_n`` rows (seeded) to bound the O(n²) cost.
    """
    a, b = check_vectors(a, "a"), check_vectors(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has {a.shape[1]} dimensions, b has {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"MMD needs at least 2 samples per set, got {len(a)} and {len(b)}")
    gen = torch.Generator().manual_seed(seed)
    a, b = _subsample(a, max_n, gen), _subsample(b, max_n, gen)
    d_aa, d_bb, d_ab = torch.cdist(a, a), torch.cdist(b, b), torch.cdist(a, b)  # (N, N), (M, M), (N, M)
    if bandwidths is None:
        med = median_bandwidth(d_aa, d_bb, d_ab)
        bandwidths = [m * med for m in MEDIAN_MULTIPLIERS]
    sig = torch.as_tensor(np.asarray(bandwidths, dtype=np.float64)).reshape(-1)
    if len(sig) == 0 or not bool((sig > 0).all()):
        raise ValueError(f"bandwidths must be positive, got {bandwidths}")

    def kernel(d: torch.Tensor) -> torch.Tensor:
        d2 = d**2
        return sum(torch.exp(-d2 / (2 * s**2)) for s in sig) / len(sig)  # (n, m) averaged over σ

    n, m = len(a), len(b)
    k_aa = (kernel(d_aa).sum() - n) / (n * (n - 1))  # the diagonal is exp(0) = 1 for every σ
    k_bb = (kernel(d_bb).sum() - m) / (m * (m - 1))
    k_ab = kernel(d_ab).mean()
    return float(k_aa + k_bb - 2 * k_ab)


def resample_sequences(X: np.ndarray, L: np.ndarray, n_steps: int) -> np.ndarray:
    """Each sequence's valid part linearly interpolated to ``n_steps`` evenly spaced points.

    Step k of the output lies at position k / (n_steps - 1) · (L - 1) of the input, so the
    first and last valid steps are kept exactly. A length-1 sequence repeats its only step.
    """
    Xt, Lt = torch.as_tensor(X), torch.as_tensor(L)
    pos = torch.linspace(0, 1, n_steps, dtype=torch.float64)[None, :] * (Lt[:, None] - 1)  # (N, S)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, Lt[:, None] - 1)
    w = (pos - lo).to(Xt.dtype)[..., None]  # (N, S, 1)
    F = Xt.shape[2]
    x_lo = torch.gather(Xt, 1, lo[..., None].expand(-1, -1, F))  # (N, S, F)
    x_hi = torch.gather(Xt, 1, hi[..., None].expand(-1, -1, F))  # (N, S, F)
    return (x_lo * (1 - w) + x_hi * w).numpy()


def sequence_vectors(X: np.ndarray, L: np.ndarray, n_steps: int, max_len: int) -> np.ndarray:
    """Fixed-size, length-aware vector per sequence: (N, n_steps · F + 1).

    The resampled shape (see :func:`resample_sequences`) flattened, plus the length as
    L / max_len scaled by √n_steps: one feature's whole resampled trace has that weight in a
    squared distance, so a length difference counts as much as a shift of one feature.
    """
    shape = resample_sequences(X, L, n_steps).reshape(len(X), -1)  # (N, S·F)
    length = (L / max_len * np.sqrt(n_steps)).astype(np.float32)[:, None]  # (N, 1)
    return np.concatenate([shape, length], axis=1)


def sequence_mmd(
    real_X, real_L, fake_X, fake_L, n_steps: int = 32, max_len: int | None = None,
    bandwidths=None, seed: int = 0, max_n: int = 2000,
) -> float:
    """Squared MMD (see :func:`mmd_rbf`) between real and generated sequences.

    Each sequence becomes :func:`sequence_vectors`: its valid part resampled to ``n_steps``
    steps, flattened, plus its normalised length (``max_len`` defaults to the real set's padded
    length, so every model scored against one real set gets the same scale). Resampling
    compares shapes regardless of length, and the length entry keeps the length distribution
    in the score.
    """
    real_X, real_L = check_sequences(real_X, real_L, "real")
    fake_X, fake_L = check_sequences(fake_X, fake_L, "generated")
    _check_same_features(real_X, fake_X)
    if n_steps < 2:
        raise ValueError(f"n_steps must be at least 2, got {n_steps}")
    max_len = max_len or real_X.shape[1]
    a = sequence_vectors(real_X, real_L, n_steps, max_len)
    b = sequence_vectors(fake_X, fake_L, n_steps, max_len)
    return mmd_rbf(a, b, bandwidths=bandwidths, seed=seed, max_n=max_n)


# --------------------------------------------------------------------------- coverage / density


# Ball membership compares distances from two cdist calls; the matrix-product shortcut rounds
# differently with the matrix shape, so a point exactly on a ball's edge could fall either side.
_EXACT = "donot_use_mm_for_euclid_dist"


def _kth_neighbour_radius(real: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """(N,) distance of each real point to its k-th nearest other real point."""
    radii = []
    for s in range(0, len(real), chunk):
        d = torch.cdist(real[s : s + chunk], real, compute_mode=_EXACT)  # (c, N)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the point itself is the 1st, at distance 0
    return torch.cat(radii)


def coverage_density(real, fake, k: int = 5, seed: int = 0, max_n: int = 10000, chunk: int = 1024) -> dict:
    """Coverage and density of ``fake`` (M, D) against ``real`` (N, D) (Naeem et al. 2020).

    r_i is the distance from real_i to its k-th nearest real neighbour; B(real_i, r_i) the
    open ball (strict <, as in the paper's reference definition).
    density = 1/(kM) Σ_j Σ_i 1[fake_j ∈ B(real_i, r_i)]; coverage = 1/N Σ_i 1[∃ j: fake_j ∈ B(real_i, r_i)].
    A set scored against itself gets coverage 1 and density 1 (each ball holds its centre and
    k - 1 neighbours, ties aside). Sets are subsampled to ``max_n`` rows (seeded).
    """
    real, fake = check_vectors(real, "real"), check_vectors(fake, "fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real has {real.shape[1]} dimensions, fake has {fake.shape[1]}")
    if not 1 <= k < len(real):
        raise ValueError(f"k must lie in [1, {len(real) - 1}] for {len(real)} real samples, got {k}")
    gen = torch.Generator().manual_seed(seed)
    real, fake = _subsample(real, max_n, gen), _subsample(fake, max_n, gen)
    radii = _kth_neighbour_radius(real, k, chunk)  # (N,)
    hits = torch.zeros(len(real), dtype=torch.float64)  # generated samples inside each real ball
    for s in range(0, len(fake), chunk):
        inside = torch.cdist(fake[s : s + chunk], real, compute_mode=_EXACT) < radii[None, :]  # (c, N)
        hits += inside.sum(0)
    return {
        "coverage": float((hits > 0).double().mean()),
        "density": float(hits.sum() / (k * len(fake))),
    }


# --------------------------------------------------------------------------- correlations


def feature_correlation(X: np.ndarray, L: np.ndarray) -> np.ndarray:
    """(F, F) Pearson correlation of the features over all valid steps of all sequences.

    A constant feature gets correlation 0 with every other (instead of NaN).
    """
    valid = np.arange(X.shape[1])[None, :] < L[:, None]  # (N, T)
    steps = X[valid].astype(np.float64)  # (S, F) every valid step
    z = steps - steps.mean(0)
    std = z.std(0)
    z = z / np.where(std > 0, std, 1.0)
    return z.T @ z / len(z)


def correlational_score(real_X, real_L, fake_X, fake_L) -> float:
    """Diffusion-TS correlational score over valid steps: Σ_{f<g} |ρ_real(f, g) - ρ_fake(f, g)| / 10.

    Diffusion-TS standardises each set per feature over samples and time, averages the
    products of feature pairs over time and samples (lag 0, pairs of the lower triangle),
    sums the absolute differences between real and generated and divides by 10. That is the
    Pearson correlation of the pooled steps; here only valid steps are pooled. Diagonal pairs
    are 1 on both sides and add nothing.
    """
    real_X, real_L = check_sequences(real_X, real_L, "real")
    fake_X, fake_L = check_sequences(fake_X, fake_L, "generated")
    _check_same_features(real_X, fake_X)
    diff = np.abs(feature_correlation(real_X, real_L) - feature_correlation(fake_X, fake_L))  # (F, F)
    return float(np.tril(diff, k=-1).sum() / 10.0)


# --------------------------------------------------------------------------- lengths and conditions


def _check_1d(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or len(a) == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


def wasserstein1(a, b) -> float:
    """Exact Wasserstein-1 distance between the empirical distributions of 1-D samples a and b.

    W1 = ∫₀¹ |Qa(u) - Qb(u)| du with Q the quantile functions. Both are step functions
    (Qa(u) = a_(i) for u in ((i-1)/n, i/n]), so the integral is a sum over the merged
    breakpoints i/n and j/m.
    """
    a, b = np.sort(_check_1d(a, "a")), np.sort(_check_1d(b, "b"))
    n, m = len(a), len(b)
    u = np.union1d(np.arange(1, n + 1) / n, np.arange(1, m + 1) / m)  # right ends of the intervals
    du = np.diff(u, prepend=0.0)
    mid = u - du / 2  # inside each interval both quantile functions are constant
    qa = a[np.minimum((mid * n).astype(np.int64), n - 1)]
    qb = b[np.minimum((mid * m).astype(np.int64), m - 1)]
    return float(np.sum(np.abs(qa - qb) * du))


def length_distance(real_L, fake_L) -> dict:
    """Wasserstein-1 distance between length distributions: in steps and relative to the mean real length."""
    real_L, fake_L = _check_1d(real_L, "real_L"), _check_1d(fake_L, "fake_L")
    if (real_L < 1).any() or (fake_L < 1).any():
        raise ValueError("lengths must be at least 1")
    w = wasserstein1(real_L, fake_L)
    return {"length_w1": w, "length_w1_rel": w / float(real_L.mean())}


def condition_error(requested_px, end_px) -> dict:
    """Relative error of the generated end distance: median and 90th percentile.

    ``requested_px`` (N,) distances asked for; ``end_px`` either (N,) generated end distances
    or (N, 2) end points relative to each start. Error = |d_end - d_req| / d_req.
    """
    req = _check_1d(requested_px, "requested_px")
    end = np.asarray(end_px, dtype=np.float64)
    if end.ndim == 2 and end.shape[1] == 2:
        end = np.hypot(end[:, 0], end[:, 1])
    end = _check_1d(end, "end_px")
    if len(end) != len(req):
        raise ValueError(f"{len(req)} requested distances but {len(end)} end points")
    if (req <= 0).any():
        raise ValueError("requested distances must be positive")
    rel = np.abs(end - req) / req
    return {"cond_rel_err_median": float(np.median(rel)), "cond_rel_err_p90": float(np.quantile(rel, 0.9))}
