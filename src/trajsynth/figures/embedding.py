"""Whole sequences of two sets in two dimensions: PCA and t-SNE of per-sequence vectors, with the
leave-one-out 1-nearest-neighbour accuracy of the sets in each (0.5: mixed, 1.0: apart)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

from ..data.sets import TrajectorySet
from ..metrics.features_stats import loo_1nn_accuracy, sequence_vectors
from .output import FAKE_COLOR, REAL_COLOR, new_figure


@dataclass
class SetEmbedding:
    """Two sets embedded together; row k belongs to set ``labels[k]`` (0: real, 1: generated)."""

    pca: np.ndarray  # (n, 2) scores on the first two principal components
    pca_ratio: np.ndarray  # (2,) explained-variance ratios
    tsne: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,) int 0 / 1
    perplexity: float
    tsne_seconds: float

    def nn_accuracy(self) -> dict[str, float]:
        """Leave-one-out 1-NN accuracy of the labels in each embedding."""
        return {"pca": loo_1nn_accuracy(self.pca, self.labels), "tsne": loo_1nn_accuracy(self.tsne, self.labels)}


def _subsample(n: int, max_n: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, max_n, replace=False)) if n > max_n else np.arange(n)


def tsne_2d(Z: np.ndarray, perplexity: float = 30.0, n_iter: int = 500, seed: int = 0,
            num_threads: int | None = 1) -> tuple[np.ndarray, float]:
    """Barnes-Hut t-SNE of Z (n, d) → ((n, 2), the perplexity used: capped at (n − 1) / 3 for small sets).

    PCA initialisation and a seeded optimisation make it deterministic (the same result on any
    number of threads); at least 250 iterations. ``num_threads`` caps the OpenMP / BLAS threads
    for the call (None: the library default). One is the default: on a busy 2-core machine
    spinning threads cost more than they save (2,000 points: about 5 s on one thread, 13-25 s on two).
    """
    if len(Z) < 5:
        raise ValueError(f"t-SNE needs at least 5 rows, got {len(Z)}")
    if n_iter < 250:
        raise ValueError(f"t-SNE needs at least 250 iterations, got {n_iter}")
    perplexity = min(float(perplexity), (len(Z) - 1) / 3)
    tsne = TSNE(2, perplexity=perplexity, max_iter=n_iter, init="pca", learning_rate="auto",
                random_state=seed)
    with threadpool_limits(num_threads):
        return tsne.fit_transform(np.asarray(Z, np.float64)), perplexity


def embed_sets(real: TrajectorySet, fake: TrajectorySet, max_per_set: int = 1000, n_steps: int = 16,
               seed: int = 0, tsne_iter: int = 500) -> SetEmbedding:
    """PCA and t-SNE of :func:`sequence_vectors` of up to ``max_per_set`` sequences of each set."""
    ir, jf = _subsample(len(real), max_per_set, seed), _subsample(len(fake), max_per_set, seed + 1)
    Z = np.concatenate([sequence_vectors(real.X[ir], real.L[ir], n_steps),
                        sequence_vectors(fake.X[jf], fake.L[jf], n_steps)])  # (n, n_steps·F)
    labels = np.r_[np.zeros(len(ir), int), np.ones(len(jf), int)]
    pca = PCA(2, svd_solver="full").fit(Z)
    t0 = time.perf_counter()
    E_tsne, perplexity = tsne_2d(Z, n_iter=tsne_iter, seed=seed)
    return SetEmbedding(pca.transform(Z), pca.explained_variance_ratio_, E_tsne, labels, perplexity,
                        time.perf_counter() - t0)


def embedding_figure(real: TrajectorySet, fake: TrajectorySet, max_per_set: int = 1000, n_steps: int = 16,
                     seed: int = 0, tsne_iter: int = 500, show: bool = False) -> Figure:
    """PCA and t-SNE of per-sequence vectors (up to ``max_per_set`` of each set), coloured by set."""
    emb = embed_sets(real, fake, max_per_set, n_steps, seed, tsne_iter)
    acc = emb.nn_accuracy()
    fig = new_figure((14, 6.5), show)
    axes = fig.subplots(1, 2)
    for ax, E in zip(axes, (emb.pca, emb.tsne), strict=True):
        for k, (s, color) in enumerate(((real, REAL_COLOR), (fake, FAKE_COLOR))):
            mine = emb.labels == k
            ax.scatter(*E[mine].T, s=7, alpha=0.5, color=color, label=f"{s.name} (n={int(mine.sum())})",
                       linewidths=0)
        ax.legend(fontsize=9, markerscale=2)
    r = emb.pca_ratio
    axes[0].set(xlabel=f"PC1 ({100 * r[0]:.1f} % of variance)", ylabel=f"PC2 ({100 * r[1]:.1f} %)",
                title=f"PCA (1-NN {real.name}/{fake.name} accuracy {acc['pca']:.2f}; 0.5 = mixed)")
    axes[1].set(xlabel="t-SNE 1 (arbitrary units)", ylabel="t-SNE 2 (arbitrary units)",
                title=f"t-SNE, perplexity {emb.perplexity:.0f}, {tsne_iter} it., {emb.tsne_seconds:.1f} s "
                      f"(1-NN accuracy {acc['tsne']:.2f})")
    fig.suptitle(f"Sequences resampled to {n_steps} steps × {real.X.shape[2]} features, flattened")
    fig.tight_layout()
    return fig
