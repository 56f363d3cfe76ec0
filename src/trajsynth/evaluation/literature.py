"""The standard time-series generation benchmarks (Sines, Stocks, Energy) for our models.

Protocol of the TimeGAN paper (Yoon et al., NeurIPS 2019), followed by RTSGAN and
Diffusion-TS: every column min–max scaled over the whole series, stride-1 windows of
length 24, shuffled; as many synthetic windows as real ones; the discriminative score
with the paper's post-hoc GRU (``timegan`` protocol) and the predictive score (train on
synthetic, test on real). We add Context-FID and the correlational score, as
Diffusion-TS reports them, and run the predictive "Original" row ourselves.

The flagship model is unconditional here: every window gets the same condition
(0) and the same length (24), and the data are mapped from [0, 1] to the model's
[-1, 1] range and back.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..data.loading import TrajectoryDataset
from ..data.timeseries import BENCHMARKS, load_benchmark
from ..data.train_data import TrainData
from ..metrics.base import Repeated
from ..metrics.context_fid import SeriesEncoder, context_fid
from ..metrics.discriminative import discriminative_score
from ..metrics.distribution import correlational_score
from ..metrics.predictive import predictive_score
from ..models.base import has_reconstruction
from ..models.registry import family_names, get_family, run_config
from ..serving.export import check_samples_path
from ..training.loop import Trainer
from ..utils.atomic import save_npz
from ..utils.parallel import process_map
from ..utils.threads import free_cores
from .suite import FULL, Budget

DATASETS = BENCHMARKS
COLUMNS = ("disc", "pred", "context_fid", "correlational")
CEILING = "disc_ceiling"  # --ceiling: the discriminative score of the autoencoder's copies of the real windows


def run_columns(ceiling: bool) -> tuple[str, ...]:
    """The scores of each run: :data:`COLUMNS`, then :data:`CEILING` when the ceiling is scored."""
    return COLUMNS + ((CEILING,) if ceiling else ())

# Published figures (lower is better everywhere). None: not reported by that paper.
PUBLISHED: dict[str, dict[str, tuple[float | None, ...]]] = {
    # row: {dataset: (disc, pred, context_fid)}
    "TimeGAN (NeurIPS 2019)": {"sines": (0.011, 0.093, None), "stocks": (0.102, 0.038, None),
                               "energy": (0.236, 0.273, None)},
    "RTSGAN (ICDM 2021)": {"stocks": (0.024, None, None), "energy": (0.228, None, None)},
    "Diffusion-TS (ICLR 2024)": {"sines": (0.006, None, 0.006), "stocks": (0.067, None, 0.147),
                                 "energy": (0.122, None, 0.089)},
    "Original data (TimeGAN paper)": {"sines": (None, 0.094, None), "stocks": (None, 0.036, None),
                                      "energy": (None, 0.250, None)},
}


@dataclass
class BenchmarkResult:
    dataset: str
    model: str
    runs: dict[str, Repeated] = field(default_factory=dict)  # column → values over runs
    original_pred: Repeated | None = None
    seconds: float = 0.0
    n_windows: int = 0
    features: int = 0
    samples: list[Path] = field(default_factory=list)  # --save-samples: the real windows' file, then each run's
    reconstructions: list[Path] = field(default_factory=list)  # --save-samples with --ceiling: each run's copies
    run_seconds: list[float] = field(default_factory=list)  # each run's wall time: training, sampling, scoring


def train_unconditional(family: str, X: np.ndarray, preset: str, overrides: dict, seed: int, run_dir: str,
                        progress: bool = False, threads: int | None = None, line_prefix: str = "") -> Trainer:
    """Every phase of a family on windows X (N, T, F) in [0, 1] (one constant condition); checkpoints to run_dir;
    ``line_prefix`` starts each console line (runs in parallel print between each other's lines)."""
    N, T, F = X.shape
    run = run_config(family, preset, feature_dim=F, max_seq_len=T, seed=seed, **overrides)
    x = torch.as_tensor(2 * X - 1, dtype=torch.float32)  # [0, 1] → the model's [-1, 1]
    ds = TrajectoryDataset(x, np.zeros(N, np.float32), np.full(N, T, np.int64))
    data = TrainData(train=ds, val=None, normalization={}, data_dir="<benchmark windows>")
    trainer = Trainer(run, data, run_dir, tensorboard=False, progress=progress, threads=threads,
                      line_prefix=line_prefix)
    trainer.train()
    return trainer


@torch.no_grad()
def sample_windows(trainer: Trainer, n: int, seed: int, chunk: int = 4096) -> np.ndarray:
    """n synthetic windows (n, T, F) in [0, 1], every one of the windows' length."""
    model, T = trainer.model.eval(), trainer.data.train.max_len
    gen = torch.Generator().manual_seed(seed)
    parts = []
    for s in range(0, n, chunk):
        b = min(chunk, n - s)
        x, _ = model.generate(b, torch.zeros(b, 1), rng=gen, seq_len=T)  # (b, T, F) in [-1, 1]
        parts.append(((x + 1) / 2).clamp(0, 1).numpy())
    return np.concatenate(parts).astype(np.float32)


@torch.no_grad()
def reconstruct_windows(model: torch.nn.Module, X: np.ndarray, path: str | None = None, chunk: int = 4096
                        ) -> np.ndarray:
    """The autoencoder's copies (N, T, F) in [0, 1] of the real windows X (N, T, F) in [0, 1], through
    ``path`` (default: the family's first reconstruction path, the one every generated window takes)."""
    model.eval()
    path = path or next(iter(model.reconstruction_paths))
    parts = []
    for s in range(0, len(X), chunk):
        x = torch.as_tensor(2 * X[s : s + chunk] - 1, dtype=torch.float32)  # [0, 1] → the model's [-1, 1]
        L = torch.full((len(x),), x.shape[1], dtype=torch.int64)
        x_hat, _ = model.reconstruct(x, L, torch.zeros(len(x), 1), path=path)
        parts.append(((x_hat + 1) / 2).clamp(0, 1).numpy())
    return np.concatenate(parts).astype(np.float32)


# The authors' code scores each model with the mean of 10 post-hoc classifiers (and 10 predictors):
# ``metric_iteration`` 10 in their main_timegan.py. One classifier's score of the same windows moves by up
# to ±0.1 with its seed (README, TimeGAN), more than the differences between models being compared.
METRIC_REPEATS = 10


def window_disc(real: np.ndarray, fake: np.ndarray, seed: int, iterations: int | None = None,
                repeats: int = 1) -> float:
    """The benchmark's discriminative score (TimeGAN protocol) of windows fake against real, (N, T, F) each:
    the mean of ``repeats`` classifiers (seeds seed, seed + 1, ...)."""
    L_r, L_f = np.full(len(real), real.shape[1]), np.full(len(fake), fake.shape[1])
    return float(discriminative_score(real, L_r, fake, L_f, protocol="timegan", seed=seed,
                                      iterations=iterations, repeats=repeats).mean)


def score_windows(real: np.ndarray, fake: np.ndarray, seed: int, budget: Budget = FULL,
                  repeats: int = METRIC_REPEATS) -> dict[str, float]:
    """The benchmark's columns for one synthetic set against the real windows; the discriminative and
    predictive scores are means over ``repeats`` classifiers and predictors, as the authors' code."""
    L_r, L_f = np.full(len(real), real.shape[1]), np.full(len(fake), fake.shape[1])
    encoder = SeriesEncoder(input_dims=real.shape[2])
    encoder.fit(real, L_r, seed=seed, iterations=budget.encoder)
    return {
        "disc": window_disc(real, fake, seed, budget.disc, repeats),
        "pred": predictive_score(fake, L_f, real, L_r, seed=seed, iterations=budget.pred, repeats=repeats).mean,
        "context_fid": float(context_fid(real, L_r, fake, L_f, encoder=encoder, seed=seed)),
        "correlational": float(correlational_score(real, L_r, fake, L_f)),
    }


def _one_run(family: str, X: np.ndarray, preset: str, overrides: dict, budget: Budget, repeats: int,
             threads: int | None, ceiling: bool, item: tuple[int, Path | None, Path | None]) -> dict[str, float]:
    """Train one model (seed, samples file, reconstructions file) and score it; runs in a worker process
    when runs go in parallel. ``ceiling``: also score the autoencoder's copies of the real windows."""
    seed, samples, recon_file = item
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="trajsynth-bench-") as run_dir:  # checkpoints are not kept
        trainer = train_unconditional(family, X, preset, overrides, seed, run_dir, threads=threads,
                                      line_prefix=f"[seed {seed}] ")
        fake = sample_windows(trainer, len(X), seed)
        recon = reconstruct_windows(trainer.model, X) if ceiling else None
    if samples is not None:
        save_npz(samples, X=fake)
    if recon_file is not None:
        save_npz(recon_file, X=recon)
    out = score_windows(X, fake, seed, budget, repeats)
    if recon is not None:  # the same classifiers' protocol, on copies that pair window for window with the real
        out[CEILING] = window_disc(X, recon, seed, budget.disc, repeats)
    return {**out, "seconds": time.perf_counter() - t0}


def sample_files(folder: str | Path, dataset: str, family: str, runs: int, ceiling: bool = False) -> list[Path]:
    """``folder/{dataset}_real.npz``, then ``folder/{dataset}_{family}_run{k}.npz`` for k = 1 … runs, then with
    ``ceiling`` ``folder/{dataset}_{family}_run{k}_reconstructed.npz``; each must be new (checked before any
    training)."""
    folder = Path(folder)
    names = [f"{dataset}_real.npz"] + [f"{dataset}_{family}_run{k}.npz" for k in range(1, runs + 1)]
    if ceiling:
        names += [f"{dataset}_{family}_run{k}_reconstructed.npz" for k in range(1, runs + 1)]
    return [check_samples_path(folder / name) for name in names]


def run_benchmark(dataset: str, model: str = "latent_wgan", runs: int = 3, preset: str = "fast",
                  overrides: dict | None = None, data_path: str | None = None, seed: int = 0,
                  budget: Budget = FULL, max_windows: int | None = None, jobs: int = 1,
                  log=print, save_samples: str | Path | None = None,
                  metric_repeats: int = METRIC_REPEATS, ceiling: bool = False) -> BenchmarkResult:
    """Train ``runs`` models with seeds seed, seed+1, …, score each, and the Original row.

    ``jobs`` > 1 trains the runs in that many processes, sharing the CPU cores
    between them. ``budget`` and ``max_windows`` shrink the protocol for smoke tests only.
    ``save_samples``: a folder that receives the real windows the runs are scored against and each
    run's generated windows (:func:`sample_files`; key ``X``, (N, T, F) in [0, 1]), to rescore elsewhere.
    ``metric_repeats``: classifiers (and predictors) averaged per run, 10 in the authors' code.
    ``ceiling``: also score each run's autoencoder copies of the real windows (column ``disc_ceiling``): no
    generator decoding through that autoencoder is expected to score below it; with ``save_samples`` the
    copies are saved too. Only for a family with an autoencoder.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if model not in family_names():
        raise ValueError(f"model must be one of the families {family_names()}, got {model!r}")
    if runs < 1 or jobs < 1 or metric_repeats < 1:
        raise ValueError(f"runs, jobs and metric_repeats must be >= 1, got {runs}, {jobs} and {metric_repeats}")
    if ceiling and not has_reconstruction(get_family(model).model_cls):
        raise ValueError(f"family {model!r} has no autoencoder to copy the real windows through: the ceiling "
                         "needs one (latent_wgan, timegan, latent_diffusion)")
    files = sample_files(save_samples, dataset, model, runs, ceiling) if save_samples is not None else []
    t0 = time.perf_counter()
    X, _ = load_benchmark(dataset, path=data_path, seed=seed)
    X = X[:max_windows] if max_windows else X  # windows are already shuffled
    generated, copies = files[1 : runs + 1], files[runs + 1 :]
    res = BenchmarkResult(dataset, model, n_windows=len(X), features=X.shape[2], samples=files[: runs + 1],
                          reconstructions=copies)
    if files:
        save_npz(files[0], X=X)
    items = list(zip([seed + r for r in range(runs)], generated or [None] * runs, copies or [None] * runs,
                     strict=True))
    results = _runs(model, X, preset, overrides or {}, items, budget, metric_repeats, jobs, dataset, log, ceiling)
    res.runs = {c: Repeated([r[c] for r in results]) for c in run_columns(ceiling)}
    res.run_seconds = [r["seconds"] for r in results]
    L = np.full(len(X), X.shape[1])
    cut = int(0.8 * len(X))  # Original row: train on 80 % of the real windows, test on the rest
    res.original_pred = predictive_score(X[:cut], L[:cut], X[cut:], L[cut:], repeats=runs, seed=seed,
                                         iterations=budget.pred)
    res.seconds = time.perf_counter() - t0
    return res


def _runs(family, X, preset, overrides, items, budget, repeats, jobs, dataset, log, ceiling
          ) -> list[dict[str, float]]:
    def report(i: int, r: dict) -> None:
        log(f"[{dataset}] run {i + 1}/{len(items)} (seed {items[i][0]}): "
            + " | ".join(f"{k} {r[k]:.4f}" for k in run_columns(ceiling))
            + f" | {r['seconds']:.0f} s")

    if jobs == 1:  # in-process, reporting each run as it ends
        out = []
        for i, item in enumerate(items):
            out.append(_one_run(family, X, preset, overrides, budget, repeats, None, ceiling, item))
            report(i, out[-1])
        return out
    threads = max(1, free_cores() // jobs)
    out = process_map(partial(_one_run, family, X, preset, overrides, budget, repeats, threads, ceiling), items, jobs)
    for i, r in enumerate(out):
        report(i, r)
    return out


def _cell(v: float | None, std: float | None = None) -> str:
    if v is None:
        return "–"
    return f"{v:.3f} ± {std:.3f}" if std is not None else f"{v:.3f}"


def results_table(res: BenchmarkResult) -> str:
    """Markdown table: our mean ± std over runs next to the published rows."""
    ceiling = CEILING in res.runs  # its own last column: only our runs have one
    head = ["model", "discriminative ↓", "predictive ↓", "Context-FID ↓", "correlational ↓"]
    head += ["discriminative of the autoencoder's copies (ceiling) ↓"] if ceiling else []
    n = len(next(iter(res.runs.values())).values) if res.runs else 0
    ours = [f"trajsynth {res.model} (ours, {n} runs)"]
    ours += [_cell(res.runs[c].mean, res.runs[c].std) for c in run_columns(ceiling)]
    rows = [ours]
    if res.original_pred is not None:
        rows.append(["Original data (ours)", "–", _cell(res.original_pred.mean, res.original_pred.std), "–", "–"])
    for name, by_ds in PUBLISHED.items():
        if res.dataset in by_ds:
            disc, pred, cfid = by_ds[res.dataset]
            rows.append([name, _cell(disc), _cell(pred), _cell(cfid), "–"])
    rows = [r + ["–"] * (len(head) - len(r)) for r in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def results_json(res: BenchmarkResult) -> dict:
    out = {"dataset": res.dataset, "model": res.model, "windows": res.n_windows, "features": res.features,
           "seconds": round(res.seconds, 1)}
    for c, rep in res.runs.items():
        out[c], out[f"{c}_std"], out[f"{c}_runs"] = rep.mean, rep.std, rep.values
    out["seconds_runs"] = [round(t, 1) for t in res.run_seconds]
    if res.original_pred is not None:
        out["pred_original"], out["pred_original_std"] = res.original_pred.mean, res.original_pred.std
    out["published"] = {name: dict(zip(("disc", "pred", "context_fid"), by_ds[res.dataset], strict=True))
                        for name, by_ds in PUBLISHED.items() if res.dataset in by_ds}
    return out
