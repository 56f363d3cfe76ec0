"""The kinematic detector: can a simple classifier tell human from generated movements?

Each trajectory becomes its nine kinematic features (:func:`kinematic_features`); the two
classes are balanced by subsampling the larger one, and a stratified k-fold
cross-validation (scikit-learn) trains two models per fold:

* an L2-regularised logistic regression on features standardised with training-fold
  statistics (heavy-tailed positive features are log-scaled first, by their training-fold
  medians: speeds and jerks span orders of magnitude);
* histogram gradient-boosted depth-2 trees on 32 training-fold quantile bins per feature.
  Chosen over an MLP because trees are immune to the features' scales and tails, are
  deterministic without random initialisation, train in well under a second on CPU, and
  capture thresholds and pairwise interactions that a linear model misses; they are the
  standard strong learner for small tabular feature sets.

A fold's accuracy is the better of the two models' test accuracies (an optimistic
detector: the generator must fool both). The score is its mean over folds: 0.5 means
indistinguishable, 1.0 means every movement is told apart.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from .base import MetricInfo, register
from .kinematics import FEATURES, kinematic_features

# Positive, heavy-tailed features: log1p(x / training median) before standardising.
LOG_FEATURES = ("distance", "movement_time", "peak_speed", "mean_curvature", "mean_abs_jerk")
N_BINS = 32  # quantile bins per feature for the trees
ROUNDS, LEARNING_RATE, L2_LEAF = 100, 0.1, 1.0
L2_LOGISTIC = 1e-3  # λ of mean log-loss + λ/2·|w|²

register(MetricInfo(
    "kinematic_detector_acc", "lower", 0.5,
    "cross-validated accuracy of the better of logistic regression and boosted trees telling real "
    "from generated movements by their kinematic features (0.5: indistinguishable)",
    bands=(0.55, 0.65, 0.75),
))


class MedianLogScaler(TransformerMixin, BaseEstimator):
    """log1p(max(x, 0) / m) on the columns ``cols``, m = the column's median positive value in the
    training data (1 when none is positive); the other columns pass through unchanged."""

    def __init__(self, cols: tuple[int, ...] = ()):
        self.cols = cols

    def fit(self, x: np.ndarray, y=None) -> MedianLogScaler:
        x = np.asarray(x, np.float64)
        self.scale_ = np.array([np.median(c[c > 0]) if (c > 0).any() else 1.0 for c in x[:, list(self.cols)].T])
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, np.float64)  # (n, F) copy
        cols = list(self.cols)
        out[:, cols] = np.log1p(np.maximum(out[:, cols], 0) / self.scale_)
        return out


def _models(n_train: int, seed: int) -> dict[str, Pipeline | HistGradientBoostingClassifier]:
    """The two detectors, unfitted; C matches λ = L2_LOGISTIC for ``n_train`` training rows."""
    logistic = make_pipeline(MedianLogScaler(tuple(FEATURES.index(f) for f in LOG_FEATURES)), StandardScaler(),
                             LogisticRegression(C=1.0 / (L2_LOGISTIC * n_train), max_iter=1000))
    boosted = HistGradientBoostingClassifier(learning_rate=LEARNING_RATE, max_iter=ROUNDS, max_depth=2,
                                             max_bins=N_BINS, l2_regularization=L2_LEAF, early_stopping=False,
                                             random_state=seed)
    return {"logistic": logistic, "boosted": boosted}


def _balanced(n_real: int, n_fake: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of a seeded subsample of each class, both of the smaller class's size."""
    rng = np.random.default_rng(seed)
    n = min(n_real, n_fake)
    return np.sort(rng.permutation(n_real)[:n]), np.sort(rng.permutation(n_fake)[:n])


def _check_features(f: np.ndarray, name: str) -> np.ndarray:
    f = np.asarray(f, np.float64)
    if f.ndim != 2 or f.shape[1] != len(FEATURES):
        raise ValueError(f"{name} must be (N, {len(FEATURES)}) kinematic features, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name} contains NaN or Inf")
    return f


def detector_from_features(
    real: np.ndarray, fake: np.ndarray, folds: int = 5, seed: int = 0,
) -> dict[str, float]:
    """Cross-validated real-vs-generated accuracy on feature matrices (N, len(FEATURES))."""
    real, fake = _check_features(real, "real"), _check_features(fake, "fake")
    if folds < 2:
        raise ValueError(f"folds must be >= 2, got {folds}")
    if min(len(real), len(fake)) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} trajectories per class for {folds} folds, "
                         f"got {len(real)} real and {len(fake)} generated")
    keep_r, keep_f = _balanced(len(real), len(fake), seed)
    x = np.concatenate([real[keep_r], fake[keep_f]])  # (2n, F)
    y = np.concatenate([np.ones(len(keep_r)), np.zeros(len(keep_f))])  # (2n,) 1 = real
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)  # same folds for both models
    n_train = len(y) - len(y) // folds
    with threadpool_limits(1):  # a small table: on a busy 2-core machine 0.2 s on one thread, 15+ s on two
        acc = {name: cross_val_score(model, x, y, cv=cv) for name, model in _models(n_train, seed).items()}
    acc["best"] = np.maximum(acc["logistic"], acc["boosted"])  # (folds,)
    out = {"accuracy_mean": float(np.mean(acc["best"])), "accuracy_std": float(np.std(acc["best"]))}
    for model in ("logistic", "boosted"):
        out[f"{model}_accuracy_mean"] = float(np.mean(acc[model]))
        out[f"{model}_accuracy_std"] = float(np.std(acc[model]))
    out["kinematic_detector_acc"] = out["accuracy_mean"]
    out["n_per_class"] = float(len(keep_r))
    return out


def feature_matrix(paths: list[np.ndarray]) -> np.ndarray:
    """(N, len(FEATURES)) kinematic features, columns in :data:`FEATURES` order."""
    feats = kinematic_features(paths)
    return np.column_stack([feats[name] for name in FEATURES])


def kinematic_detector(
    real_paths: list[np.ndarray], fake_paths: list[np.ndarray], folds: int = 5, seed: int = 0,
) -> dict[str, float]:
    """Accuracy of the kinematic detector, human vs generated paths (lower is better, ideal 0.5).

    Returns ``accuracy_mean`` (also as ``kinematic_detector_acc``) and ``accuracy_std`` over
    folds of the per-fold better model, each model's own mean and std, and ``n_per_class``.
    """
    return detector_from_features(feature_matrix(real_paths), feature_matrix(fake_paths), folds, seed)
