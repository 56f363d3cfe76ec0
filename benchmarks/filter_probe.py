"""How much of what the classifiers catch a critic trained on the *training* users already sees.

A GRU critic (the ``strong`` protocol's network and training) learns to tell the training users'
movements from the model's own movements for their end points. Then, for each real test movement,
``--candidates`` movements are generated to its end point and one is kept, drawn with probability
proportional to the critic's density-ratio estimate exp(logit) (sampling-importance resampling,
as in discriminator rejection sampling). The kept set goes to the test users' evaluation like any
samples file:

    python benchmarks/filter_probe.py CKPT DATA_DIR --out kept.npz [--candidates 4] [--seed 0]
    trajsynth evaluate --samples kept.npz DATA_DIR --n 2000 --seed 0

If the kept movements score much lower than the plain ones, what gives the model away is learnable
from the training users (a training-time critic could take it out); if they do not, it is not.
The test users are never read before the evaluation except for their end points.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from trajsynth.data.sets import TrajectorySet
from trajsynth.evaluation.sources import checkpoint_set, real_set
from trajsynth.metrics.discriminative import (
    PROTOCOLS,
    GRUReadout,
    _split_class,
    _train,
    pad_to,
    readout_logits,
)
from trajsynth.serving.export import check_samples_path, write_samples
from trajsynth.serving.sampler import TrajectorySampler


def stacked(sets: list[TrajectorySet]) -> tuple[torch.Tensor, torch.Tensor]:
    """Features of several sets padded to one length: X (N, T, F) float32, L (N,) int64."""
    T = max(s.X.shape[1] for s in sets)
    X = np.concatenate([pad_to(s.X, T) for s in sets]).astype(np.float32)
    return torch.as_tensor(X), torch.as_tensor(np.concatenate([s.L for s in sets]))


def train_critic(real: TrajectorySet, fake: TrajectorySet, seed: int, iterations: int) -> GRUReadout:
    """The strong protocol's classifier (real = 1), trained with early stopping on a held-out fifth."""
    proto = PROTOCOLS["strong"]
    rng = np.random.default_rng(seed)
    X, L = stacked([real, fake])
    n_r = len(real)
    y = torch.cat([torch.ones(n_r), torch.zeros(len(fake))])
    parts = tuple(_split_class(rng, idx, proto.val_frac) for idx in (np.arange(n_r), np.arange(n_r, len(y))))
    torch.manual_seed(seed)
    critic = GRUReadout(X.shape[2], proto.hidden_size(X.shape[2]), proto.layers)
    _train(critic, X, L, y, parts, proto, iterations, rng)
    test = np.concatenate([parts[0][2], parts[1][2]])
    acc = float(((readout_logits(critic, X, L, test) > 0).float() == y[test]).float().mean())
    print(f"critic: held-out accuracy {acc:.3f} (training users vs generated, {n_r} + {len(fake)})", flush=True)
    return critic.eval()


def resample(candidates: list[TrajectorySet], critic: GRUReadout, seed: int) -> tuple[TrajectorySet, dict]:
    """One candidate per row, drawn with probability ∝ exp(critic logit) among the row's candidates."""
    X, L = stacked(candidates)
    logits = readout_logits(critic, X, L, np.arange(len(L))).reshape(len(candidates), -1).T.double()  # (n, K)
    rng = torch.Generator().manual_seed(seed)
    pick = torch.multinomial(torch.softmax(logits, -1), 1, generator=rng).squeeze(-1).numpy()  # (n,)
    rows = np.arange(len(pick))
    T = max(c.X.shape[1] for c in candidates)
    kept = TrajectorySet(
        np.stack([pad_to(candidates[k].X[i : i + 1], T)[0] for i, k in zip(rows, pick, strict=True)]),
        np.array([candidates[k].L[i] for i, k in zip(rows, pick, strict=True)]),
        candidates[0].C, [candidates[k].paths[i] for i, k in zip(rows, pick, strict=True)],
        candidates[0].distance_px)
    chosen = logits[torch.as_tensor(rows), torch.as_tensor(pick)]
    stats = {"mean_logit_all": float(logits.mean()), "mean_logit_kept": float(chosen.mean()),
             "share_first_candidate": float((pick == 0).mean())}
    return kept, stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("data_dir")
    ap.add_argument("--out", required=True, help="the kept movements (.npz, export-samples format; must be new)")
    ap.add_argument("--candidates", type=int, default=4, help="movements generated per test end point (K)")
    ap.add_argument("--n-train", type=int, default=8000, help="training users' movements the critic learns from")
    ap.add_argument("--n", type=int, default=2000, help="test movements (as evaluate's --n)")
    ap.add_argument("--seed", type=int, default=0, help="as evaluate's --seed: the same test movements")
    ap.add_argument("--critic-iterations", type=int, default=PROTOCOLS["strong"].iterations,
                    help="most training iterations of the critic (early stopping ends it sooner)")
    a = ap.parse_args()
    if min(a.candidates, a.n, a.critic_iterations) < 1 or a.n_train < 10:
        raise SystemExit("error: --candidates, --n and --critic-iterations must be >= 1, --n-train >= 10")
    try:
        out = check_samples_path(a.out)
    except (FileExistsError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sampler = TrajectorySampler.from_checkpoint(a.checkpoint)
    train_real = real_set(a.data_dir, "train", a.n_train, a.seed)
    critic = train_critic(train_real, checkpoint_set(sampler, train_real, seed=a.seed + 7919), a.seed,
                          a.critic_iterations)
    test_real = real_set(a.data_dir, "test", a.n, a.seed)  # evaluate's draw: only its end points are used here
    candidates = [checkpoint_set(sampler, test_real, seed=a.seed + k) for k in range(a.candidates)]
    kept, stats = resample(candidates, critic, a.seed)
    write_samples(out, kept)
    print(json.dumps({**stats, "candidates": a.candidates, "seconds": round(time.perf_counter() - t0, 1)}))
    print(f"wrote {out}: score it with `trajsynth evaluate --samples {out} {a.data_dir} --n {a.n} --seed {a.seed}`")


if __name__ == "__main__":
    main()
