"""Discriminative score: how well a post-hoc GRU classifier tells real from generated sequences.

The classes are balanced (the bigger one is subsampled), each class is split 80 / 20 into a
training and a held-out test part, a fresh GRU classifier is trained on the training parts, and
the score is ``|accuracy − 0.5|`` on the test parts: 0 when the classifier cannot do better than
chance, 0.5 when it separates the two perfectly.

Variable lengths: the classifier reads each sequence up to its last valid step. The GRU runs over
the whole padded batch in one fused call and the output at step ``L − 1`` is gathered; a causal
GRU's output there depends on steps ``0 … L − 1`` only, so the padding never reaches the decision.

Two protocols:

* ``timegan`` — the TimeGAN (NeurIPS 2019) reference code: one GRU layer with ``max(1, F // 2)``
  units, a linear read-out of the last state, 2000 Adam iterations (lr 1e-3) of 128 real + 128
  generated sequences, no validation. It is weak on purpose (a few hidden units, fixed budget),
  which is what published tables report; it can miss differences a capable model sees.
* ``strong`` — two GRU layers of 64 units, Adam lr 2e-3, up to 3000 iterations of 64 real + 64
  generated sequences of similar lengths; 20 % of the training part is held out for validation,
  the validation loss is checked every 100 iterations, training stops after 4 checks without
  improvement and the best weights are restored.

Cost, 2000 real vs 2000 generated mouse movements (length ≤ 100, 8 features) on one CPU thread:
about 35 s for ``timegan``; ``strong`` ran 600–1500 iterations (early stopping), 100–240 s.
Both read SapiMouse real vs real at 0.03–0.04, real vs time-shuffled at 0.48 / 0.50 and real vs
uniform noise at 0.50: at its full budget even the weak protocol separates shuffled movements.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import MetricInfo, Repeated, check_sequences, register

log = logging.getLogger(__name__)

# |accuracy − 0.5| edges of the design table's accuracy bands 0.50–0.55 / 0.55–0.65 / 0.65–0.75.
DISC_BANDS = (0.05, 0.15, 0.25)

for _name, _what in (("timegan", "TimeGAN reference protocol: 1-layer GRU, F//2 units, 2000 iterations"),
                     ("strong", "2-layer GRU, 64 units, early stopping on a validation part")):
    register(MetricInfo(
        name=f"disc_{_name}", direction="lower", ideal=0.0, bands=DISC_BANDS,
        description=f"|accuracy − 0.5| of a post-hoc real-vs-generated classifier on held-out data ({_what})",
    ))


@dataclass(frozen=True)
class DiscriminativeProtocol:
    """How the post-hoc classifier is built and trained."""

    name: str
    layers: int
    hidden: int | None  # None: max(1, F // 2) as in the TimeGAN code
    iterations: int  # exact count, or the maximum when early stopping
    batch_size: int = 128  # per class
    lr: float = 1e-3
    val_frac: float = 0.0  # > 0: early stopping on this fraction of the training part
    eval_every: int = 100
    patience: int = 5
    # Batches of similar lengths (a window of the length-sorted training part, at the same
    # length quantile for both classes): a GRU step costs the batch's longest sequence, so this
    # cuts the work by the padding that random batches of mouse movements carry (more than half).
    bucketed: bool = False

    def hidden_size(self, n_features: int) -> int:
        return self.hidden if self.hidden is not None else max(1, n_features // 2)


PROTOCOLS = {
    "timegan": DiscriminativeProtocol("timegan", layers=1, hidden=None, iterations=2000),
    "strong": DiscriminativeProtocol("strong", layers=2, hidden=64, iterations=3000, batch_size=64, lr=2e-3,
                                     val_frac=0.2, patience=4, bucketed=True),
}
TEST_FRAC = 0.2
MIN_PER_CLASS = 10


# --------------------------------------------------------------------------- shared helpers


def check_positive_int(value, name: str) -> int:
    """``value`` as an int, or a ValueError when it is not a whole number ≥ 1."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def pad_to(X: np.ndarray, T: int) -> np.ndarray:
    """Zero-pad (N, t, F) to (N, T, F)."""
    return X if X.shape[1] == T else np.pad(X, ((0, 0), (0, T - X.shape[1]), (0, 0)))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads (None: as set), restoring the count after.

    The post-hoc networks are tiny (a few units, 256 sequences): extra threads only add
    synchronisation per time step, and on a busy 2-core machine two threads made a GRU step 5 to 50
    times slower than one.
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(check_positive_int(n, "num_threads"))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator inside the block, leaving the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class GRUReadout(nn.Module):
    """A GRU stack with a linear read-out, per step or at each sequence's last valid step."""

    def __init__(self, n_in: int, hidden: int, layers: int = 1, n_out: int = 1):
        super().__init__()
        self.gru = nn.GRU(n_in, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, n_out)

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) → (B, T, n_out)."""
        out, _ = self.gru(x)  # (B, T, H)
        return self.head(out)

    def last(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) → (B, n_out), read at step ``length − 1`` of each sequence."""
        out, _ = self.gru(x)  # (B, T, H)
        last = out[torch.arange(len(x), device=x.device), lengths - 1]  # (B, H)
        return self.head(last)


def trimmed(X: torch.Tensor, L: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx`` of X and L, with padding cut at the longest of them (saves GRU steps)."""
    lengths = L[idx]  # (B,)
    return X[idx, : int(lengths.max())], lengths  # (B, T_b, F)


def draw_batch(rng: np.random.Generator, pool: np.ndarray, size: int) -> np.ndarray:
    """``size`` distinct members of ``pool`` (all of it when smaller), as the TimeGAN batches."""
    return pool[rng.permutation(len(pool))[:size]]


def draw_bucket(rng: np.random.Generator, sorted_pool: np.ndarray, size: int, q: float) -> np.ndarray:
    """``size`` members drawn from a window of 2·size around quantile ``q`` of a length-sorted pool."""
    n = len(sorted_pool)
    width = min(n, 2 * size)
    start = int(round(q * (n - width)))
    return draw_batch(rng, sorted_pool[start : start + width], size)


# --------------------------------------------------------------------------- the score


def _split_class(rng: np.random.Generator, idx: np.ndarray, val_frac: float) -> tuple[np.ndarray, ...]:
    """Shuffle one class's indices into (train, val, test); val is empty when val_frac is 0."""
    idx = idx[rng.permutation(len(idx))]
    n_test = max(1, int(round(TEST_FRAC * len(idx))))
    test, rest = idx[:n_test], idx[n_test:]
    n_val = int(round(val_frac * len(rest))) if val_frac > 0 else 0
    return rest[n_val:], rest[:n_val], test


def readout_logits(model: GRUReadout, X: torch.Tensor, L: torch.Tensor, idx: np.ndarray, chunk: int = 1024
                   ) -> torch.Tensor:
    """Classifier logits (len(idx),) of rows ``idx`` of X (N, T, F), L (N,), without gradients, in chunks of
    similar lengths."""
    order = np.argsort(L[idx].cpu().numpy(), kind="stable")
    out = torch.empty(len(idx), device=X.device)
    with torch.no_grad():
        for s in range(0, len(idx), chunk):
            pos = torch.as_tensor(order[s : s + chunk], device=X.device)
            x, lengths = trimmed(X, L, torch.as_tensor(idx, device=X.device)[pos])
            out[pos] = model.last(x, lengths).squeeze(-1)  # (b,)
    return out


def _train(model: GRUReadout, X, L, y, parts, proto: DiscriminativeProtocol, iterations: int, rng) -> None:
    """Adam on balanced real + generated batches; early stopping when there is a validation part."""
    (tr_real, va_real, _), (tr_fake, va_fake, _) = parts
    val = np.concatenate([va_real, va_fake])
    opt = torch.optim.Adam(model.parameters(), lr=proto.lr)
    best, best_state, bad = np.inf, None, 0
    if proto.bucketed:
        L_np = L.cpu().numpy()
        tr_real, tr_fake = (p[np.argsort(L_np[p], kind="stable")] for p in (tr_real, tr_fake))
    for it in range(1, iterations + 1):
        if proto.bucketed:
            q = rng.random()
            pair = (draw_bucket(rng, tr_real, proto.batch_size, q), draw_bucket(rng, tr_fake, proto.batch_size, q))
        else:
            pair = (draw_batch(rng, tr_real, proto.batch_size), draw_batch(rng, tr_fake, proto.batch_size))
        idx = np.concatenate(pair)
        idx_t = torch.as_tensor(idx, device=X.device)
        x, lengths = trimmed(X, L, idx_t)  # (B, T_b, F)
        loss = F.binary_cross_entropy_with_logits(model.last(x, lengths).squeeze(-1), y[idx_t])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if len(val) and it % proto.eval_every == 0:
            y_val = y[torch.as_tensor(val, device=X.device)]
            v = float(F.binary_cross_entropy_with_logits(readout_logits(model, X, L, val), y_val))
            if v < best - 1e-4:
                best, bad = v, 0
                best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
            elif (bad := bad + 1) >= proto.patience:
                break
    log.debug("%s classifier: %d iterations, best validation loss %.4f", proto.name, it, best)
    if best_state is not None:
        model.load_state_dict(best_state)


def _one_run(real, fake, proto: DiscriminativeProtocol, seed: int, iterations: int, device) -> float:
    """One balanced split, one fresh classifier, one held-out |accuracy − 0.5|."""
    rng = np.random.default_rng(seed)
    n = min(len(real[0]), len(fake[0]))
    keep_r = np.sort(rng.permutation(len(real[0]))[:n])
    keep_f = np.sort(rng.permutation(len(fake[0]))[:n])
    T = max(real[0].shape[1], fake[0].shape[1])
    X = torch.as_tensor(np.concatenate([pad_to(real[0][keep_r], T), pad_to(fake[0][keep_f], T)]), device=device)
    L = torch.as_tensor(np.concatenate([real[1][keep_r], fake[1][keep_f]]), device=device)  # (2n,)
    y = torch.cat([torch.ones(n), torch.zeros(n)]).to(device)  # (2n,) 1 = real
    parts = (_split_class(rng, np.arange(n), proto.val_frac), _split_class(rng, np.arange(n, 2 * n), proto.val_frac))
    with seeded_torch(seed):
        model = GRUReadout(X.shape[2], proto.hidden_size(X.shape[2]), proto.layers).to(device)
    _train(model, X, L, y, parts, proto, iterations, rng)
    test = np.concatenate([parts[0][2], parts[1][2]])
    pred = (readout_logits(model, X, L, test) > 0).float()
    acc = float((pred == y[torch.as_tensor(test, device=device)]).float().mean())
    return abs(acc - 0.5)


def discriminative_score(
    real_X, real_L, fake_X, fake_L, protocol: str = "timegan", repeats: int = 1, seed: int = 0,
    iterations: int | None = None, device: str | torch.device = "cpu", num_threads: int | None = 1,
) -> Repeated:
    """|held-out accuracy − 0.5| of a GRU classifier, real vs generated, over ``repeats`` seeds.

    Repeat r uses seed ``seed + r`` for the class balancing, the 80 / 20 split, the weights and the
    batches. ``iterations`` overrides the protocol's count (the maximum for ``strong``).
    ``num_threads``: torch CPU threads while it runs (see :func:`torch_threads`; None leaves them).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    repeats = check_positive_int(repeats, "repeats")
    if iterations is not None:
        iterations = check_positive_int(iterations, "iterations")
    real, fake = check_sequences(real_X, real_L, "real"), check_sequences(fake_X, fake_L, "fake")
    if real[0].shape[2] != fake[0].shape[2]:
        raise ValueError(f"real has {real[0].shape[2]} features, fake {fake[0].shape[2]}")
    if min(len(real[0]), len(fake[0])) < MIN_PER_CLASS:
        raise ValueError(f"need at least {MIN_PER_CLASS} sequences per class, got {len(real[0])} real "
                         f"and {len(fake[0])} fake")
    proto = PROTOCOLS[protocol]
    n_iter = iterations if iterations is not None else proto.iterations
    with torch_threads(num_threads):
        return Repeated([_one_run(real, fake, proto, seed + r, n_iter, device) for r in range(repeats)])
