"""The kinematic detector: can a simple classifier tell human from generated movements?

Each trajectory becomes its nine kinematic features (:func:`kinematic_features`); the two
classes are balanced by subsampling the larger one, and a stratified k-fold
cross-validation trains two models per fold:

* an L2-regularised logistic regression (Newton's method, exact and deterministic), on
  features standardised with training-fold statistics (heavy-tailed positive features are
  log-scaled first: speeds and jerks span orders of magnitude);
* gradient-boosted depth-2 trees on features cut into 32 training-fold quantile bins
  (Friedman 2001, with Newton leaf values). Chosen over an MLP because trees are immune to
  the features' scales and tails, need no random initialisation (so they are deterministic
  without seeding), train in well under a second on CPU, and capture thresholds and
  pairwise interactions that a linear model misses; they are the standard strong learner
  for small tabular feature sets.

A fold's accuracy is the better of the two models' test accuracies (an optimistic
detector: the generator must fool both). The score is its mean over folds: 0.5 means
indistinguishable, 1.0 means every movement is told apart.
"""

from __future__ import annotations

import numpy as np

from .base import MetricInfo, register
from .kinematics import FEATURES, kinematic_features

# Positive, heavy-tailed features: log1p(x / training median) before standardising.
LOG_FEATURES = ("distance", "movement_time", "peak_speed", "mean_curvature", "mean_abs_jerk")
N_BINS = 32  # quantile bins per feature for the trees
ROUNDS, LEARNING_RATE, L2_LEAF, MIN_CHILD_HESS = 100, 0.1, 1.0, 1.0
L2_LOGISTIC = 1e-3

register(MetricInfo(
    "kinematic_detector_acc", "lower", 0.5,
    "cross-validated accuracy of the better of logistic regression and boosted trees telling real "
    "from generated movements by their kinematic features (0.5: indistinguishable)",
    bands=(0.55, 0.65, 0.75),
))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow for large |z|


# --------------------------------------------------------------------------- preprocessing


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-scale the heavy-tailed columns by their training medians, then z-score by the training fold."""
    train, test = train.copy(), test.copy()
    for j in (FEATURES.index(name) for name in LOG_FEATURES):
        pos = train[:, j][train[:, j] > 0]
        scale = float(np.median(pos)) if len(pos) else 1.0
        train[:, j], test[:, j] = np.log1p(train[:, j] / scale), np.log1p(np.maximum(test[:, j], 0) / scale)
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 0, std, 1.0)  # constant columns stay constant (zero)
    return (train - mean) / std, (test - mean) / std


def _bin(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bin indices in [0, N_BINS) from training-fold quantile edges, per feature."""
    qs = np.arange(1, N_BINS) / N_BINS
    tr, te = np.empty(train.shape, np.int64), np.empty(test.shape, np.int64)
    for j in range(train.shape[1]):
        edges = np.unique(np.quantile(train[:, j], qs))
        tr[:, j] = np.searchsorted(edges, train[:, j], side="right")
        te[:, j] = np.searchsorted(edges, test[:, j], side="right")
    return tr, te


# --------------------------------------------------------------------------- logistic regression


def _fit_logistic(x: np.ndarray, y: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Weights (F+1,) of min mean log-loss + λ/2·|w|² (bias unpenalised), by Newton steps."""
    a = np.column_stack([x, np.ones(len(x))])  # (n, F+1)
    penalty = np.full(a.shape[1], L2_LOGISTIC)
    penalty[-1] = 1e-9  # the bias is free; the tiny term keeps the system solvable
    w = np.zeros(a.shape[1])
    for _ in range(iterations):
        p = _sigmoid(a @ w)
        grad = a.T @ (p - y) / len(y) + penalty * w
        hess = (a * (p * (1 - p))[:, None]).T @ a / len(y) + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def _predict_logistic(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return (x @ w[:-1] + w[-1] > 0).astype(np.float64)


# --------------------------------------------------------------------------- boosted trees


def _best_split(xb: np.ndarray, g: np.ndarray, h: np.ndarray) -> tuple[int, int, float]:
    """(feature, bin threshold, gain) of the best split x <= threshold; gain <= 0 when none helps."""
    n, f = xb.shape
    if n == 0:
        return 0, N_BINS, 0.0
    flat = (xb + np.arange(f) * N_BINS).ravel()  # (n·F,) one histogram per feature
    gl = np.bincount(flat, np.repeat(g, f), f * N_BINS).reshape(f, N_BINS).cumsum(1)  # (F, bins)
    hl = np.bincount(flat, np.repeat(h, f), f * N_BINS).reshape(f, N_BINS).cumsum(1)
    gt, ht = g.sum(), h.sum()
    gain = gl**2 / (hl + L2_LEAF) + (gt - gl) ** 2 / (ht - hl + L2_LEAF) - gt**2 / (ht + L2_LEAF)
    gain[(hl < MIN_CHILD_HESS) | (ht - hl < MIN_CHILD_HESS)] = -np.inf
    j, b = np.unravel_index(np.argmax(gain), gain.shape)
    return (int(j), int(b), float(gain[j, b])) if gain[j, b] > 0 else (0, N_BINS, 0.0)


def _leaf_index(tree: dict, xb: np.ndarray) -> np.ndarray:
    """Leaf 0..3 of a depth-2 tree: root decides the side, that side's node the leaf."""
    rows = np.arange(len(xb))
    right = (xb[:, tree["feat"][0]] > tree["thr"][0]).astype(np.int64)  # (n,)
    node = 1 + right
    return 2 * right + (xb[rows, tree["feat"][node]] > tree["thr"][node])


def _fit_tree(xb: np.ndarray, g: np.ndarray, h: np.ndarray) -> dict:
    """A depth-2 regression tree on gradients g and hessians h with Newton leaf values."""
    tree = {"feat": np.zeros(3, np.int64), "thr": np.full(3, N_BINS, np.int64), "leaf": np.zeros(4)}
    f0, t0, _ = _best_split(xb, g, h)
    tree["feat"][0], tree["thr"][0] = f0, t0
    right = xb[:, f0] > t0
    for side in (0, 1):
        rows = right == bool(side)
        tree["feat"][1 + side], tree["thr"][1 + side], _ = _best_split(xb[rows], g[rows], h[rows])
    leaf = _leaf_index(tree, xb)
    gs, hs = np.bincount(leaf, g, 4), np.bincount(leaf, h, 4)
    tree["leaf"] = -gs / (hs + L2_LEAF)
    return tree


def _fit_boosted(xb: np.ndarray, y: np.ndarray) -> list[dict]:
    """Gradient boosting of depth-2 trees on the logistic loss (balanced classes: start at 0)."""
    raw, trees = np.zeros(len(y)), []
    for _ in range(ROUNDS):
        p = _sigmoid(raw)
        tree = _fit_tree(xb, p - y, p * (1 - p))
        tree["leaf"] *= LEARNING_RATE
        raw += tree["leaf"][_leaf_index(tree, xb)]
        trees.append(tree)
    return trees


def _predict_boosted(trees: list[dict], xb: np.ndarray) -> np.ndarray:
    raw = sum(t["leaf"][_leaf_index(t, xb)] for t in trees)
    return (raw > 0).astype(np.float64)


# --------------------------------------------------------------------------- cross-validation


def _balanced_folds(n_real: int, n_fake: int, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a balanced subsample of each class and a stratified fold id for every kept row."""
    rng = np.random.default_rng(seed)
    n = min(n_real, n_fake)
    real = np.sort(rng.permutation(n_real)[:n])
    fake = np.sort(rng.permutation(n_fake)[:n])
    fold = np.concatenate([rng.permutation(n) % folds, rng.permutation(n) % folds])
    return real, fake, fold


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
    keep_r, keep_f, fold = _balanced_folds(len(real), len(fake), folds, seed)
    x = np.concatenate([real[keep_r], fake[keep_f]])  # (2n, F)
    y = np.concatenate([np.ones(len(keep_r)), np.zeros(len(keep_f))])
    acc = {"logistic": [], "boosted": [], "best": []}
    for k in range(folds):
        tr, te = fold != k, fold == k
        zs_tr, zs_te = _standardise(x[tr], x[te])
        acc["logistic"].append(float((_predict_logistic(_fit_logistic(zs_tr, y[tr]), zs_te) == y[te]).mean()))
        xb_tr, xb_te = _bin(x[tr], x[te])
        acc["boosted"].append(float((_predict_boosted(_fit_boosted(xb_tr, y[tr]), xb_te) == y[te]).mean()))
        acc["best"].append(max(acc["logistic"][-1], acc["boosted"][-1]))
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
