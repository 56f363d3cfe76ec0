"""The evaluation suite: every metric of a generated set against real trajectories.

One call, :func:`evaluate`, computes the sequence metrics (discriminative,
predictive, MMD, Context-FID, correlational), the latent ones (MMD, coverage,
density on summary vectors), condition fidelity and lengths, and the mouse
kinematics with the kinematic detector; for a paired set (an autoencoder's
reconstructions of the real trajectories) also the paired errors. Where it is
cheap and meaningful, the same metric is also computed for real vs real
(held-out real trajectories of the training users against the evaluated real
set): the value a perfect generator would reach on this data, reported as
``ref_<key>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..data.sets import TrajectorySet
from ..metrics.base import Repeated
from ..metrics.context_fid import SeriesEncoder, context_fid
from ..metrics.detector import kinematic_detector
from ..metrics.discriminative import discriminative_score
from ..metrics.distribution import (
    condition_error,
    correlational_score,
    coverage_density,
    length_distance,
    mmd_rbf,
    sequence_mmd,
)
from ..metrics.kinematics import kinematics_report
from ..metrics.predictive import predictive_score
from ..metrics.reconstruction import path_error_px, reconstruction_mse
from ..utils.parallel import process_map
from ..utils.threads import free_cores

Embed = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (X (N, T, F), L (N,)) → (N, D)


@dataclass
class SuiteResult:
    values: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)  # real vs real
    seconds: dict[str, float] = field(default_factory=dict)

    def put(self, key: str, value) -> None:
        if isinstance(value, Repeated):
            self.values[key], self.std[key] = value.mean, value.std
        else:
            self.values[key] = float(value)

    def flat(self) -> dict[str, float]:
        """report.json: metric keys → numbers; ``<key>_std`` and ``ref_<key>`` beside them."""
        out = dict(self.values)
        out.update({f"{k}_std": v for k, v in self.std.items()})
        out.update({f"ref_{k}": v for k, v in self.reference.items()})
        return {k: float(v) for k, v in out.items()}


class _Timer:
    def __init__(self, res: SuiteResult, log):
        self.res, self.log = res, log

    def __call__(self, name: str, fn: Callable[[], None]) -> None:
        t0 = time.perf_counter()
        fn()
        self.res.seconds[name] = round(time.perf_counter() - t0, 2)
        self.log(f"  {name:<14} {self.res.seconds[name]:6.1f} s")


@dataclass(frozen=True)
class Budget:
    """Training iterations of the learned metrics (None: each metric's protocol default)."""

    disc: int | None = None
    pred: int = 5000
    encoder: int = 300


FULL = Budget()
QUICK = Budget(disc=300, pred=500, encoder=60)  # smoke tests only: not comparable with full reports


def evaluate(real: TrajectorySet, fake: TrajectorySet, reference: TrajectorySet | None = None,
             embed: Embed | None = None,
             seed: int = 0, repeats: int = 3, budget: Budget = FULL, workers: int | None = None,
             log=lambda s: None, paired: TrajectorySet | None = None) -> SuiteResult:
    """Every metric of ``fake`` against ``real``.

    reference: other real trajectories (e.g. the training users'): trains the
        predictive "Original" row and the evaluator's own encoder, and gives the
        real-vs-real values. embed: summary vectors for the latent metrics (a
        checkpoint's frozen encoder); without it, the Context-FID encoder's.
    workers: processes for the post-hoc classifiers and predictors (default: one per CPU
        core, at most 4); each runs one thread, as these small networks run best.
    paired: one copy of each real trajectory, in order, with its length (an autoencoder's
        reconstructions; ``fake`` may hold them rendered): the paired errors ``recon_mse`` and
        ``recon_px_median``.
    """
    workers = workers or min(4, free_cores())
    res = SuiteResult()
    timed = _Timer(res, log)
    encoder = SeriesEncoder(input_dims=real.X.shape[2])
    fit_on = reference or real
    timed("encoder_fit", lambda: encoder.fit(fit_on.X, fit_on.L, seed=seed, iterations=budget.encoder))
    embed = embed or encoder.encode
    tasks = _learned_tasks(real, fake, reference, seed, repeats, budget)
    timed("classifiers", lambda: _run_learned(res, tasks, workers))
    timed("distribution", lambda: _distribution(res, real, fake, reference, encoder, seed))
    timed("latent", lambda: _latent(res, real, fake, reference, embed, seed))
    if fake.distance_px is not None and fake.paths is not None:
        timed("condition", lambda: _condition(res, fake))
    if real.paths is not None and fake.paths is not None:
        timed("kinematics", lambda: _kinematics(res, real, fake, reference, seed))
    if paired is not None:
        timed("paired", lambda: _paired(res, real, paired))
    return res


def _learned_tasks(real, fake, ref, seed, repeats, budget: Budget) -> list[tuple[str, Callable, dict]]:
    """Each repeat of each classifier / predictor as its own task: (key, function, kwargs).

    Repeat r of a score runs with seed + r, exactly as the function's own ``repeats`` loop
    would, so running the tasks in parallel changes no number.
    """
    tasks = []
    for protocol in ("timegan", "strong"):
        kw = dict(real_X=real.X, real_L=real.L, fake_X=fake.X, fake_L=fake.L, protocol=protocol,
                  iterations=budget.disc)
        tasks += [(f"disc_{protocol}", discriminative_score, {**kw, "seed": seed + r}) for r in range(repeats)]
    tasks += [("pred_tstr", predictive_score, dict(train_X=fake.X, train_L=fake.L, test_X=real.X, test_L=real.L,
                                                   seed=seed + r, iterations=budget.pred)) for r in range(repeats)]
    if ref is not None:  # reference rows: one repeat each
        tasks += [(f"ref:disc_{protocol}", discriminative_score, dict(real_X=real.X, real_L=real.L, fake_X=ref.X,
                   fake_L=ref.L, protocol=protocol, seed=seed, iterations=budget.disc))
                  for protocol in ("timegan", "strong")]
        tasks.append(("pred_original", predictive_score, dict(train_X=ref.X, train_L=ref.L, test_X=real.X,
                      test_L=real.L, seed=seed, iterations=budget.pred)))
    return tasks


def _call(task: tuple[str, Callable, dict]) -> float:
    _, fn, kw = task
    return fn(**kw).mean


def _run_learned(res: SuiteResult, tasks, workers: int) -> None:
    """Run the tasks (in ``workers`` processes of one thread each when > 1) and file their results."""
    values = process_map(_call, tasks, workers)
    by_key: dict[str, list[float]] = {}
    for (key, _, _), v in zip(tasks, values, strict=True):
        by_key.setdefault(key, []).append(v)
    for key, vs in by_key.items():
        if key.startswith("ref:"):
            res.reference[key[4:]] = float(np.mean(vs))
        else:
            res.put(key, Repeated(vs))


def _distribution(res, real, fake, ref, encoder, seed) -> None:
    res.put("mmd", sequence_mmd(real.X, real.L, fake.X, fake.L, seed=seed))
    res.put("context_fid", context_fid(real.X, real.L, fake.X, fake.L, encoder=encoder, seed=seed))
    res.put("correlational", correlational_score(real.X, real.L, fake.X, fake.L))
    res.put("length_w1", _length_w1(real.L, fake.L))
    if ref is not None:
        res.reference["mmd"] = sequence_mmd(real.X, real.L, ref.X, ref.L, seed=seed)
        res.reference["context_fid"] = float(context_fid(real.X, real.L, ref.X, ref.L, encoder=encoder, seed=seed))
        res.reference["correlational"] = float(correlational_score(real.X, real.L, ref.X, ref.L))
        res.reference["length_w1"] = _length_w1(real.L, ref.L)


def _length_w1(a: np.ndarray, b: np.ndarray) -> float:
    return float(length_distance(a, b)["length_w1"])


def _latent(res, real, fake, ref, embed: Embed, seed) -> None:
    z_real, z_fake = embed(real.X, real.L), embed(fake.X, fake.L)  # (N, D), (M, D)
    res.put("mmd_latent", mmd_rbf(z_real, z_fake, seed=seed))
    cd = coverage_density(z_real, z_fake)
    res.put("coverage", cd["coverage"]), res.put("density", cd["density"])
    if ref is not None:
        z_ref = embed(ref.X, ref.L)
        res.reference["mmd_latent"] = float(mmd_rbf(z_real, z_ref, seed=seed))
        cd = coverage_density(z_real, z_ref)
        res.reference["coverage"], res.reference["density"] = float(cd["coverage"]), float(cd["density"])


def _condition(res, fake: TrajectorySet) -> None:
    end = np.array([np.hypot(*p[-1, 1:]) for p in fake.paths])  # (N,) generated end distance
    for k, v in condition_error(fake.distance_px, end).items():
        res.put(k, v)


def _kinematics(res, real, fake, ref, seed) -> None:
    for k, v in kinematics_report(real.paths, fake.paths).items():
        res.put(k, v)
    det = kinematic_detector(real.paths, fake.paths, seed=seed)
    res.values["kinematic_detector_acc"] = float(det["accuracy_mean"])
    res.std["kinematic_detector_acc"] = float(det["accuracy_std"])
    if ref is not None and ref.paths is not None:
        res.reference["kinematic_detector_acc"] = float(
            kinematic_detector(real.paths, ref.paths, seed=seed)["accuracy_mean"])
        # what a generator as good as other real users would score: W1s and Fitts differences
        res.reference.update({k: v for k, v in kinematics_report(real.paths, ref.paths).items()
                              if k.startswith("w1_") or k.endswith("_diff")})


def _paired(res, real, copy) -> None:
    res.put("recon_mse", reconstruction_mse(real.X, real.L, copy.X, copy.L))
    if real.paths is not None and copy.paths is not None:
        res.put("recon_px_median", path_error_px(real.paths, copy.paths))
