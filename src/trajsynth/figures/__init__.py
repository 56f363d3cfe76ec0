"""Figures comparing real and generated trajectories, written as timestamped PNG files.

Six figures and :func:`visualize_all`, which writes all of them:

1. ``trajectory_comparison`` (:mod:`.paths`): real paths next to generated paths of similar
   distance, and speed profiles over normalised time;
2. ``feature_kde`` (:mod:`.features`): a Gaussian KDE (Scott's bandwidth) of each of the 8 features;
3. ``feature_stats`` (:mod:`.features`): mean and std per feature, real vs synthetic, as a table (+ a CSV);
4. ``feature_correlation`` (:mod:`.features`): feature × feature correlations, real vs generated;
5. ``embedding_pca_tsne`` (:mod:`.embedding`): PCA and t-SNE of per-sequence representations;
6. ``trajectories_3d`` (:mod:`.paths`): paths in (x, y, t).

:mod:`.quicklook` draws a smaller paths-and-speeds figure for TensorBoard and the quickstart.
The numbers behind the figures are in :mod:`trajsynth.metrics.features_stats`; this package
only draws and writes (see :mod:`.output`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..data.sets import TrajectorySet
from ..metrics.features_stats import feature_stats
from .embedding import embedding_figure
from .features import feature_correlation_figure, feature_kde_figure, feature_stats_figure, stats_csv
from .output import check_timestamp, figure_set, save_figure, write_new
from .paths import trajectories_3d_figure, trajectory_comparison_figure

__all__ = ["visualize_all"]


def visualize_all(real: TrajectorySet, fake: TrajectorySet, out_dir: str | Path, seed: int = 0,
                  timestamp: str | None = None, show: bool = False, max_tsne_per_set: int = 1000) -> list[Path]:
    """Write every figure as ``out_dir/<name>_<timestamp>.png`` plus ``feature_stats_<timestamp>.csv``.

    Both sets need the 8 features and pixel paths; an unnamed set is called "real" or
    "generated". A name that exists already gets a ``_2``, ``_3`` … suffix: nothing is
    overwritten. Returns the paths written, in order: trajectory_comparison, feature_kde,
    feature_stats (png, csv), feature_correlation, embedding_pca_tsne, trajectories_3d.
    """
    real, fake = figure_set(real, "real"), figure_set(fake, "generated")
    ts = check_timestamp(timestamp)
    rows = feature_stats(real.X, real.L, fake.X, fake.L)
    jobs = [
        ("trajectory_comparison", lambda: trajectory_comparison_figure(real, fake, seed=seed, show=show)),
        ("feature_kde", lambda: feature_kde_figure(real, fake, seed=seed, show=show)),
        ("feature_stats", lambda: feature_stats_figure(rows, real.name, fake.name, show=show)),
        ("feature_correlation", lambda: feature_correlation_figure(real, fake, seed=seed, show=show)),
        ("embedding_pca_tsne", lambda: embedding_figure(real, fake, max_tsne_per_set, seed=seed, show=show)),
        ("trajectories_3d", lambda: trajectories_3d_figure(real, fake, seed=seed, show=show)),
    ]
    written = []
    for name, make in jobs:
        written.append(save_figure(make(), out_dir, name, ts))
        if name == "feature_stats":
            written.append(write_new(out_dir, f"feature_stats_{ts}", ".csv", stats_csv(rows).encode()))
    if show:
        plt.show()  # only pyplot figures (made because show=True) appear
    return written
