"""Throughput of the two-stage latent WGAN-GP against the design's literal configuration.

Measures, in one run and on the same data (the processed SapiMouse train split,
batch 64, CPU):

* ``stage1_it_s``  autoencoder iterations per second
* ``stage2_it_s``  WGAN-GP iterations per second (one generator step + n_critic critic steps)
* ``generate_traj_s``  generated trajectories per second (features, lengths included)

for the default configuration and, under ``reference``, for the design's literal
one: autoregressive LSTM expander, every batch padded to max_len, the frozen
encoder run on real sequences at every critic step (and for feature matching),
generation always at max_len. Ratios are printed under ``speedup``.

    python benchmarks/bench_v6.py --json
    python benchmarks/bench_v6.py --data-dir data/sapimouse --iters 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from trajsynth.data.train_data import load_train_data
from trajsynth.models.latent_wgan.training import LatentWGANTraining
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "sapimouse"


def prepare_data(data_dir: str | None) -> Path:
    if data_dir:
        return Path(data_dir)
    if not SHARED.is_dir():
        sys.exit(f"no --data-dir given and {SHARED} is absent")
    from trajsynth.data.preprocess import preprocess

    out = Path(tempfile.mkdtemp(prefix="bench-v6-")) / "sapimouse"
    preprocess(SHARED, out, progress=False)
    return out


def timed(fn, iters: int, warmup: int) -> float:
    """Calls per second of ``fn`` over ``iters`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return iters / (time.perf_counter() - t0)


def stage1_rate(tr: LatentWGANTraining, reference: bool, iters: int, warmup: int) -> float:
    ds = tr.data.train
    if reference:  # random batches, padded to max_len
        gen = torch.Generator().manual_seed(0)
        step = lambda: _ref_stage1_step(tr, torch.randint(len(ds), (64,), generator=gen))
    else:  # the trainer's own step: length-aware batches
        step = tr.stage1_step
    return timed(step, iters, warmup)


def _ref_stage1_step(tr: LatentWGANTraining, idx) -> None:
    x, c, L = tr.data.train.batch(idx, trim=False)
    _, losses = tr.model.forward_autoencoder(x, L, c, tr.cfg)
    tr.opt_ae.zero_grad()
    losses["total"].backward()
    tr.opt_ae.step()


def stage2_rate(tr: LatentWGANTraining, reference: bool, iters: int, warmup: int) -> tuple[float, float]:
    tr.model.freeze_autoencoder()
    t0 = time.perf_counter()
    if not reference:
        tr.real_summaries()  # the one-time cache of real summaries
    cache_s = time.perf_counter() - t0
    step = (lambda: _ref_stage2_step(tr)) if reference else tr.stage2_step
    return timed(step, iters, warmup), cache_s


def _ref_stage2_step(tr: LatentWGANTraining) -> None:
    """The design's loop: every critic step encodes a fresh real batch padded to max_len."""
    m, ds, cfg = tr.model, tr.data.train, tr.cfg
    for _ in range(cfg.n_critic):
        x, c, L = ds.batch(torch.randint(len(ds), (cfg.batch_size,), generator=tr.rng), trim=False)
        d = m.forward_discriminator(x, c, lengths=L, rng=tr.rng, w=cfg)
        tr.opt_d.zero_grad()
        d["total"].backward()
        tr.opt_d.step()
    with torch.no_grad():
        z_real = m.encode(x, L)
    g = m.forward_generator(c, z_real, rng=tr.rng, w=cfg)
    tr.opt_g.zero_grad()
    g["total"].backward()
    tr.opt_g.step()


def generate_rate(tr: LatentWGANTraining, reference: bool, n: int) -> float:
    m = tr.model.eval()
    c = tr.data.train.C[:n]
    gen = torch.Generator().manual_seed(0)
    seq_len = m.cfg.max_seq_len if reference else None
    m.generate(min(n, 64), c[:64], seq_len=seq_len, rng=gen)  # warm-up
    t0 = time.perf_counter()
    m.generate(n, c, seq_len=seq_len, rng=gen)
    return n / (time.perf_counter() - t0)


def measure(data, reference: bool, iters: int, warmup: int, n_gen: int) -> dict:
    # The design's literal expander: autoregressive LSTM, 128 hidden, 2 layers.
    overrides = dict(expand_type="lstm", expander_hidden_dim=128, expander_num_layers=2) if reference else {}
    cfg = run_config("latent_wgan", "default", max_seq_len=data.train.max_len, batch_size=64, **overrides)
    with tempfile.TemporaryDirectory() as run:
        tr = Trainer(cfg, data, run, tensorboard=False, progress=False).training
        s1 = stage1_rate(tr, reference, iters, warmup)
        s2, cache_s = stage2_rate(tr, reference, iters, warmup)
        gen = generate_rate(tr, reference, n_gen)
    out = {"stage1_it_s": round(s1, 3), "stage2_it_s": round(s2, 3), "generate_traj_s": round(gen, 1),
           "expand_type": cfg.arch.expand_type}
    if not reference:
        out["stage2_summary_cache_s"] = round(cache_s, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", help="processed SapiMouse data dir (default: preprocess ../shared into a temp dir)")
    ap.add_argument("--iters", type=int, default=15, help="timed iterations per stage")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--n-generate", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    data = load_train_data(prepare_data(a.data_dir), validate=False)
    ours = measure(data, False, a.iters, a.warmup, a.n_generate)
    ref = measure(data, True, a.iters, a.warmup, a.n_generate)
    keys = ("stage1_it_s", "stage2_it_s", "generate_traj_s")
    result = {**ours, "reference": ref, "speedup": {k: round(ours[k] / ref[k], 2) for k in keys},
              "device": "cpu", "threads": torch.get_num_threads(), "batch_size": 64,
              "train_sequences": len(data.train)}
    print(json.dumps(result) if a.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
