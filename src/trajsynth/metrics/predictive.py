"""Predictive score, train on synthetic, test on real (TSTR), as in the TimeGAN reference code.

A one-layer GRU with ``max(1, F // 2)`` units reads features ``0 … F−2`` at steps ``0 … L−2`` and
predicts the last feature at steps ``1 … L−1`` (one step ahead). It is trained for 5000 Adam
iterations (lr 1e-3) of 128 sequences with an L1 loss on the training set (generated data for
``pred_tstr``, real training data for the ``pred_original`` reference row), then scored by the
mean absolute error on the real test set: the error of each sequence averaged over its valid
steps, then averaged over sequences (the reference code's formula; with equal lengths this is the
plain MAE). Lower is better: a generator whose data teach the real dynamics scores near the
"original" row.

Output squashing. The reference code puts a sigmoid on the prediction because its benchmarks are
scaled to [0, 1]. With ``output="auto"`` (default) the sigmoid is used when every target lies in
[0, 1], tanh when they lie in [-1, 1] (the trajectory features of this package), and no squashing
otherwise; ``"sigmoid"``, ``"tanh"`` or ``"linear"`` force one.

Sequences shorter than 2 steps have no (input, next target) pair and are left out.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import MetricInfo, Repeated, check_sequences, register
from .discriminative import (
    GRUReadout,
    check_positive_int,
    draw_batch,
    draw_bucket,
    pad_to,
    seeded_torch,
    torch_threads,
)

register(MetricInfo(
    name="pred_tstr", direction="lower", ideal=0.0, bands=(0.1, 0.5, 1.0),
    description="one-step-ahead MAE on real test data of a GRU trained on generated data (TimeGAN protocol)",
))
register(MetricInfo(
    name="pred_original", direction="lower", ideal=0.0, bands=None,
    description="the same predictive MAE with the GRU trained on real training data (reference row)",
))

OUTPUTS = ("auto", "sigmoid", "tanh", "linear")
_SQUASH = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "linear": lambda v: v}


def _pairs(X: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs (n, T−1, F−1), targets (n, T−1), steps (n,)) of the sequences with L ≥ 2."""
    keep = L >= 2
    X, L = X[keep], L[keep]
    return X[:, :-1, :-1], X[:, 1:, -1], L - 1


def _choose_output(output: str, *targets: tuple[np.ndarray, np.ndarray]) -> str:
    """Resolve ``auto`` from the range of the valid targets."""
    if output != "auto":
        return output
    lo = min(float(y[np.arange(y.shape[1])[None, :] < n[:, None]].min()) for y, n in targets)
    hi = max(float(y[np.arange(y.shape[1])[None, :] < n[:, None]].max()) for y, n in targets)
    if lo >= 0.0 and hi <= 1.0:
        return "sigmoid"
    return "tanh" if lo >= -1.0 and hi <= 1.0 else "linear"


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """Mean |pred − target| over the valid steps of each sequence: (B,)."""
    mask = (torch.arange(pred.shape[1], device=pred.device)[None, :] < steps[:, None]).float()  # (B, T)
    return ((pred - target).abs() * mask).sum(1) / steps.float()  # (B,)


def _one_run(train, test, seed: int, iterations: int, batch_size: int, squash, device, bucketed: bool) -> float:
    """Train one predictor on ``train`` pairs, return its MAE on ``test`` pairs."""
    rng = np.random.default_rng(seed)
    Xtr, Ytr, Ntr = (torch.as_tensor(a, device=device) for a in train)
    n_in = Xtr.shape[2]
    with seeded_torch(seed):
        model = GRUReadout(n_in, max(1, (n_in + 1) // 2), 1).to(device)
    opt = torch.optim.Adam(model.parameters())
    bucketed = bucketed and int(train[2].min()) != int(train[2].max())  # fixed length: plain random batches
    pool = np.argsort(train[2], kind="stable") if bucketed else np.arange(len(Ntr))
    for _ in range(iterations):
        batch = draw_bucket(rng, pool, batch_size, rng.random()) if bucketed else draw_batch(rng, pool, batch_size)
        idx = torch.as_tensor(batch, device=device)
        steps = Ntr[idx]  # (B,)
        T_b = int(steps.max())
        pred = squash(model.steps(Xtr[idx, :T_b]).squeeze(-1))  # (B, T_b)
        loss = _masked_l1(pred, Ytr[idx, :T_b], steps).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    Xte, Yte, Nte = (torch.as_tensor(a, device=device) for a in test)
    with torch.no_grad():
        pred = squash(model.steps(Xte).squeeze(-1))  # (N, T−1)
        return float(_masked_l1(pred, Yte, Nte).mean())


def predictive_score(
    train_X, train_L, test_X, test_L, repeats: int = 1, seed: int = 0, iterations: int = 5000,
    batch_size: int = 128, output: str = "auto", device: str | torch.device = "cpu", num_threads: int | None = 1,
    bucketed: bool = True,
) -> Repeated:
    """One-step-ahead MAE on (test_X, test_L) of GRUs trained on (train_X, train_L), over ``repeats`` seeds.

    Repeat r uses seed ``seed + r`` for the weights and the batches. Pass generated data as the
    training set for ``pred_tstr`` and real training data for ``pred_original``. ``num_threads``: torch
    CPU threads while it runs (1 by default: the network is tiny; None leaves the setting alone).
    ``bucketed``: with variable lengths, draw each batch among sequences of similar length (a GRU
    step costs the batch's longest sequence); fixed-length data always get plain random batches.
    """
    repeats, batch_size = check_positive_int(repeats, "repeats"), check_positive_int(batch_size, "batch_size")
    iterations = check_positive_int(iterations, "iterations")
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    (Xa, La), (Xb, Lb) = check_sequences(train_X, train_L, "train"), check_sequences(test_X, test_L, "test")
    if Xa.shape[2] != Xb.shape[2]:
        raise ValueError(f"train has {Xa.shape[2]} features, test {Xb.shape[2]}")
    if Xa.shape[2] < 2:
        raise ValueError("the predictive score needs at least 2 features (inputs and a target)")
    T = max(Xa.shape[1], Xb.shape[1])
    train, test = _pairs(pad_to(Xa, T), La), _pairs(pad_to(Xb, T), Lb)
    for name, part in (("train", train), ("test", test)):
        if len(part[2]) == 0:
            raise ValueError(f"{name}: no sequence has 2 or more steps, nothing to predict")
    squash = _SQUASH[_choose_output(output, train[1:], test[1:])]
    with torch_threads(num_threads):
        runs = [_one_run(train, test, seed + r, iterations, batch_size, squash, device, bucketed)
                for r in range(repeats)]
    return Repeated(runs)
