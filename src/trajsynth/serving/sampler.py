"""Pixel-space generation from a trained checkpoint: ``trajsynth.load(path).sample(...)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.clock import EventClock
from ..data.features import (
    NormalizationParams,
    condition_to_distance,
    distance_to_condition,
    features_to_paths,
    paths_to_features,
)
from ..data.sets import TrajectorySet
from ..models.base import has_reconstruction
from ..models.checkpoint import CheckpointError, build_model, is_complete, load_checkpoint
from ..utils.checks import check_count, check_numbers, check_point, check_seed
from ..utils.threads import inference_threads, using_threads


class TrajectorySampler:
    """Any family's model with the data scaling it was trained on: generation in pixels.

    With an event clock (recorded in checkpoints trained since it was added, see data/clock.py) and
    ``render`` on, the paths of a family that decodes continuous values are rendered as the logger
    would record them (whole px and ms, on its clock) and ``X`` is recomputed from them, so both
    describe the same movement. Families that draw whole pixels and milliseconds themselves
    (``integer_paths``: ar_mdn, procedural) are left as drawn.
    """

    def __init__(self, model: nn.Module, params: NormalizationParams, condition_quantiles, batch: int = 4096,
                 family: str = "?", threads: int | None = None, clock: EventClock | None = None,
                 render: bool = True):
        self.model, self.params, self.batch, self.family = model.eval(), params, batch, family
        self.threads = threads  # None: the policy of utils/threads, per call (see threads_for)
        self.condition_quantiles = np.asarray(condition_quantiles, np.float64)
        self.clock, self.render = clock, render

    def threads_for(self, rows: int) -> int:
        """Torch threads for a call on ``rows`` movements: the sampler's own count if it was given one, else the
        policy (one thread for small batches, the free cores for large ones: utils/threads)."""
        return self.threads or inference_threads(rows)

    @classmethod
    def from_checkpoint(cls, path: str | Path, render: bool = True, candidates: int | None = None,
                        threads: int | None = None) -> TrajectorySampler:
        """The sampler of a finished checkpoint; ``candidates`` (an ``ar_mdn`` trained with ``critic=true``)
        replaces the number of movements drawn per kept one (1: the critic is not used); ``threads`` fixes
        the thread count of every call (None: the policy, see :meth:`threads_for`)."""
        return cls.from_loaded(load_checkpoint(path), path, render, candidates, threads)

    @classmethod
    def from_loaded(cls, ckpt: dict, path: str | Path, render: bool = True, candidates: int | None = None,
                    threads: int | None = None) -> TrajectorySampler:
        """:meth:`from_checkpoint` of a checkpoint already read (``ckpt``, from the file ``path``)."""
        cls.check_finished(ckpt, path)
        data = ckpt["data"]
        if not data.get("normalization"):
            raise CheckpointError(f"{path} was trained on sensor series ({data.get('data_dir')}), not mouse movements: "
                                  "the sampler (generate, export-samples, serve, trajsynth.load) draws movements in "
                                  "pixels; score its sequences with `trajsynth evaluate CKPT DATA_DIR`")
        clock = _clock_of(data, path)
        model = build_model(ckpt, path)
        if candidates is not None:
            set_candidates(model, candidates, path)
        return cls(model, NormalizationParams.from_dict(data["normalization"]),
                   data["condition_quantiles"], family=ckpt["family"], threads=threads, clock=clock, render=render)

    @staticmethod
    def check_finished(ckpt: dict, path: str | Path, build: bool = False) -> nn.Module | None:
        """A CheckpointError unless ``ckpt`` is a finished model; with ``build``, its model."""
        if not is_complete(ckpt):
            done = ", ".join(ckpt.get("trainer_state", {}).get("done", [])) or "none"
            raise CheckpointError(f"{path} is not a finished model (phases done: {done}); use the run's final.pt, "
                                  "or resume training")
        return build_model(ckpt, path) if build else None

    @property
    def renders(self) -> bool:
        """Whether generated paths are rendered onto the event clock (see the class docstring)."""
        return self.render and self.clock is not None and not getattr(self.model, "integer_paths", False)

    @property
    def distance_range(self) -> tuple[float, float]:
        return self.params.d_min, self.params.d_max

    @property
    def warm_up_pair(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """A start and an end 100 px apart (or the nearest trained distance): a first call's allocations."""
        lo, hi = self.distance_range
        return (0.0, 0.0), (min(max(100.0, lo), hi), 0.0)

    def conditions_for(self, n: int, distance_px, rng: np.random.Generator) -> np.ndarray:
        """Normalised conditions for requested distances (None: drawn like the training data)."""
        if distance_px is None:
            q = self.condition_quantiles
            return np.interp(rng.uniform(0, 1, n), np.linspace(0, 1, len(q)), q).astype(np.float32)
        d = check_numbers("distance_px", distance_px)
        if d.ndim > 1 or d.size not in (1, n):
            raise ValueError(f"distance_px must be one distance or n = {n} distances, got shape {d.shape}")
        lo, hi = self.distance_range
        if d.min() < lo or d.max() > hi:
            raise ValueError(f"distance_px must lie in [{lo:g}, {hi:g}] px (the model's trained range), "
                             f"got {d.min() if d.min() < lo else d.max():g}")
        return distance_to_condition(np.broadcast_to(d.reshape(-1), (n,)), self.params).astype(np.float32)

    def _checked_conditions(self, n: int, conditions) -> np.ndarray:
        C = check_numbers("conditions", conditions).astype(np.float32).reshape(-1)
        if len(C) != n:
            raise ValueError(f"conditions must hold n = {n} values, got {len(C)}")
        if np.abs(C).max() > 1:
            raise ValueError(f"conditions must lie in [-1, 1] (normalised distances), got {np.abs(C).max():g}")
        return C

    @property
    def directed(self) -> bool:
        """Whether the model generates for a given end point (its direction), not only a distance."""
        return bool(getattr(self.model, "directed", False))

    def generate(self, n: int, distance_px=None, seed: int | None = None,
                 conditions: np.ndarray | None = None, targets: np.ndarray | None = None) -> TrajectorySet:
        """n trajectories; the same seed gives the same output.

        ``targets`` (n, 2) px end points relative to the start (directed models only, see
        :attr:`directed`); their lengths are then the distances. Raises TypeError for a wrong type
        (n not an integer, a distance given as text) and ValueError for a wrong value (n < 1, a
        distance outside the trained range, NaN).
        """
        n, seed = check_count("n", n), check_seed("seed", seed)
        rng = np.random.default_rng(seed)
        if targets is not None:
            targets, distance_px = self._checked_targets(n, targets)
        C = self._checked_conditions(n, conditions) if conditions is not None else \
            self.conditions_for(n, distance_px, rng)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        xs, ls, paths = [], [], []
        direct = hasattr(self.model, "generate_with_paths")  # whole-pixel paths come with their features
        with using_threads(self.threads_for(n)):
            for s in range(0, n, self.batch):
                c = torch.as_tensor(C[s : s + self.batch]).reshape(-1, 1)  # (b, condition_dim)
                kw = {} if targets is None else {"targets": torch.as_tensor(targets[s : s + self.batch])}
                if direct:
                    x, L, P = self.model.generate_with_paths(len(c), c, rng=gen, **kw)
                    paths += [p[:k] for p, k in zip(P, L.tolist(), strict=True)]
                else:
                    x, L = self.model.generate(len(c), c, rng=gen, **kw)
                xs.append(x.numpy()), ls.append(L.numpy())
        X, L = np.concatenate(xs), np.concatenate(ls)
        if direct:  # X was made from these paths: inverting it would give them back
            return TrajectorySet(X, L.astype(np.int64), C, paths, condition_to_distance(C, self.params), "generated")
        return self._in_pixels(X, L, C, "generated", rng)

    def _in_pixels(self, X: np.ndarray, L: np.ndarray, C: np.ndarray, name: str,
                   rng: np.random.Generator, render: bool | None = None) -> TrajectorySet:
        """Model features X (n, T, F) with lengths and conditions (n,) → a set with pixel paths and the
        requested distances, rebuilt exactly as from real features (and rendered: see :attr:`renders`)."""
        X, L = X.astype(np.float32), L.astype(np.int64)
        increments = getattr(self.model, "path_from", "positions") == "increments"
        paths = features_to_paths(X, C, L, self.params, from_increments=increments)
        if getattr(self.model, "integer_paths", False):  # drawn on whole px and ms: undo float32's last bits
            paths = [np.round(p) for p in paths]
        elif self.renders and render is not False:
            paths = self.clock.render(paths, X.shape[1], rng)
            X, _, L = paths_to_features(paths, X.shape[1], self.params)
        return TrajectorySet(X, L, C, paths, condition_to_distance(C, self.params), name=name)

    def _autoencoder(self) -> nn.Module:
        if not has_reconstruction(self.model):
            raise ValueError(f"family {self.family!r} has no autoencoder: its model cannot reconstruct movements, "
                             "so there is no reconstruction to score")
        return self.model

    @property
    def reconstruction_paths(self) -> dict[str, str]:
        """The model's reconstruction paths (name → what it runs through); ValueError without an autoencoder."""
        return dict(self._autoencoder().reconstruction_paths)

    def reconstruct(self, real: TrajectorySet, path: str, render: bool | None = None) -> TrajectorySet:
        """The model's copies of real movements through ``path``, with their conditions, in pixels.

        Rendered onto the event clock like generations (``render``: None follows the sampler) their
        lengths may differ from the real ones; not rendered, they keep the real lengths.
        """
        model = self._autoencoder()
        if real.C is None:
            raise ValueError("reconstructions keep the real conditions: the real set has none")
        C = np.asarray(real.C, np.float32).reshape(len(real))  # (n,) one condition per movement
        with using_threads(self.threads_for(len(real))):
            X, L = model.reconstruct(torch.as_tensor(real.X), torch.as_tensor(real.L),
                                     torch.as_tensor(C).reshape(-1, 1), path=path)
        rng = np.random.default_rng(0)  # the rendering's clock draws: the same copies every time
        return self._in_pixels(X.numpy(), L.numpy(), C, f"reconstructed ({path})", rng, render)

    def _checked_targets(self, n: int, targets) -> tuple[np.ndarray, np.ndarray]:
        """Validated end points (n, 2) float64 and their distances (n,)."""
        if not self.directed:
            raise ValueError(f"targets need a model that generates for a direction; the {self.family} family "
                             "conditions on the distance only (use distance_px)")
        t = check_numbers("targets", targets).astype(np.float64)
        if t.shape != (n, 2):
            raise ValueError(f"targets must have shape (n, 2) = ({n}, 2), got {t.shape}")
        return t, np.hypot(t[:, 0], t[:, 1])

    def sample(self, n: int, distance_px=None, seed: int | None = None) -> list[np.ndarray]:
        """n pixel paths, each (L_i, 3) = (t_ms, x_px, y_px) starting at (0, 0, 0)."""
        return self.generate(n, distance_px, seed).paths

    def path(self, start, end, seed: int | None = None) -> np.ndarray:
        """A timestamped path from ``start`` that ends exactly at ``end``.

        A directed model (:attr:`directed`, e.g. ar_mdn) generates it for this direction and end
        point, and only the last point moves by the sub-pixel rounding of ``end − start``. Any other
        model generates for the distance |end − start| (a directed two-stage model also for its
        direction), and the path is rotated and uniformly scaled about its start so that its last point
        lands on ``end`` (the scale factor is the ratio of requested to generated end distance, close to
        1 for a faithful model; the rotation is small for a directed one). Times are kept as generated.
        """
        start, end = self.checked_pair(start, end)
        return self.paths(start[None], end[None], seed)[0]

    def checked_pair(self, start, end, where: str = "") -> tuple[np.ndarray, np.ndarray]:
        """``start`` and ``end`` as float64 (2,) arrays a path can join: finite, within the trained distance range.

        Raises what :meth:`path` raises for them (``where`` prefixes the message of a distance out of range).
        """
        start, end = check_point("start", start), check_point("end", end)
        dist = float(np.hypot(*(end - start)))
        lo, hi = self.distance_range
        if dist == 0:
            raise ValueError(f"{where}start and end coincide at ({start[0]:g}, {start[1]:g}): a path needs a "
                             f"distance in [{lo:g}, {hi:g}] px")
        if not lo <= dist <= hi:
            raise ValueError(f"{where}start and end are {dist:g} px apart, outside the model's trained range "
                             f"[{lo:g}, {hi:g}] px")
        return start, end

    def paths(self, starts, ends, seed: int | None = None) -> list[np.ndarray]:
        """:meth:`path` for n (start, end) pairs in one batched model call (what a server under load wants).

        ``starts`` and ``ends`` are (n, 2). Path i is what ``path(starts[i], ends[i])`` draws; with a
        seed, the batch is reproducible and a batch of one equals ``path(start, end, seed)``.
        """
        starts, ends = self._checked_pairs(starts, ends)
        targets = ends - starts  # (n, 2)
        n = len(starts)
        if self.steps_live:  # drawn for these directions: each ends on the pixel nearest its end − start
            P = self.generate(n, seed=seed, targets=targets).paths
            return [self.placed(p, s, e) for p, s, e in zip(P, starts, ends, strict=True)]
        dist = np.hypot(targets[:, 0], targets[:, 1])  # drawn for the distances (and directions, if directed),
        P = self.generate(n, seed=seed, targets=targets).paths if self.directed else \
            self.generate(n, dist, seed).paths  # then brought onto the ends exactly
        P = [p if np.hypot(*p[-1, 1:]) > 0 else
             self._orientable(d, seed if seed is None else seed + i, t if self.directed else None)
             for i, (p, d, t) in enumerate(zip(P, dist, targets, strict=True))]
        xys = [self._oriented(p, t) for p, t in zip(P, targets, strict=True)]
        if self.renders:  # back onto whole pixels after the rotation
            xys = [np.round(xy) for xy in xys]
        return [self.placed(np.column_stack([p[:, 0], xy]), s, e)
                for p, xy, s, e in zip(P, xys, starts, ends, strict=True)]

    @property
    def steps_live(self) -> bool:
        """Whether the model draws whole-pixel movements toward given end points step by step (ar_mdn): then
        :meth:`paths` keeps its steps as drawn, and a server can run it with continuous batching
        (:meth:`join`)."""
        return self.directed and getattr(self.model, "integer_paths", False) and hasattr(self.model, "rollout")

    @property
    def continuous(self) -> bool:
        """Whether a server can run the model with continuous batching: it draws step by step, and does not
        choose among whole candidate movements (an ar_mdn with a critic and candidates > 1 does)."""
        return self.steps_live and not getattr(self.model, "chooses", False)

    def join(self, run, starts: np.ndarray, ends: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """Add movements from checked ``starts`` to ``ends`` (n, 2) to a running roll-out (``model.rollout``)
        as :meth:`paths` would draw them; their ids (n,). Call it under ``torch.inference_mode()``."""
        targets = ends - starts  # (n, 2)
        C = self.conditions_for(len(targets), np.hypot(targets[:, 0], targets[:, 1]), np.random.default_rng(0))
        target, c, plan = self.model.prepare(len(C), torch.as_tensor(C).reshape(-1, 1), gen, torch.as_tensor(targets))
        return run.add(target, c, plan)

    @staticmethod
    def placed(p: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """A path (L, 3) from (0, 0) moved to ``start``; its last point is exactly ``end`` (no sub-pixel rounding)."""
        out = p.astype(np.float64, copy=True)
        out[:, 1:] += start
        out[-1, 1:] = end
        return out

    def _checked_pairs(self, starts, ends) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) float64 starts and ends, every pair checked like :meth:`checked_pair`."""
        S, E = check_numbers("starts", starts), check_numbers("ends", ends)
        if S.ndim != 2 or S.shape[1:] != (2,) or E.shape != S.shape or len(S) == 0:
            raise ValueError(f"starts and ends must both have shape (n, 2) with n >= 1, got {S.shape} and {E.shape}")
        for i, (s, e) in enumerate(zip(S, E, strict=True)):
            self.checked_pair(s, e, where="" if len(S) == 1 else f"pair {i}: ")
        return S, E

    @staticmethod
    def _oriented(p: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Points (L, 2) of path p rotated and uniformly scaled about its start so that it ends on target."""
        g = p[-1, 1:]
        rot = np.arctan2(target[1], target[0]) - np.arctan2(g[1], g[0])
        scale = float(np.hypot(*target)) / float(np.hypot(*g))
        R = scale * np.array([[np.cos(rot), -np.sin(rot)], [np.sin(rot), np.cos(rot)]])
        return p[:, 1:] @ R.T

    def _orientable(self, dist: float, seed: int | None, target: np.ndarray | None = None, tries: int = 8
                    ) -> np.ndarray:
        """A path for ``dist`` whose end differs from its start (else it has no direction to rotate).

        A faithful model almost never returns one that ends where it started; a poorly trained one
        may, and then the next seeds are tried.
        """
        for k in range(tries):
            s = seed if seed is None or k == 0 else seed + 7919 * k
            if target is None:
                p = self.sample(1, dist, s)[0]
            else:  # a directed model: drawn toward the end point, so the rotation only corrects its error
                p = self.generate(1, seed=s, targets=target[None]).paths[0]
            if np.hypot(*p[-1, 1:]) > 0:
                return p
        raise RuntimeError(f"all {tries} generated trajectories end at their start; the model cannot be oriented "
                           "(is it trained?)")


def _clock_of(data: dict, path: str | Path) -> EventClock | None:
    """The event clock a checkpoint recorded (None before clocks were recorded); CheckpointError if malformed."""
    if "event_clock" not in data:
        return None
    try:
        return EventClock.from_dict(data["event_clock"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{path}: its recorded event clock is malformed ({type(e).__name__}: {e})") from None


def set_candidates(model: nn.Module, k: int, path: str | Path) -> None:
    """Make ``model`` draw ``k`` movements per kept one; more than one needs a trained critic (ar_mdn)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"candidates must be a whole number >= 1, got {k!r}")
    if k > 1 and not bool(getattr(model, "critic_trained", False)):
        raise ValueError(f"{path} has no trained critic to choose among candidates (an ar_mdn model trained with "
                         "--set critic=true has one)")
    if hasattr(model, "critic_trained"):
        model.cfg.candidates = int(k)


def load(path: str | Path, render: bool = True, candidates: int | None = None) -> TrajectorySampler:
    """Load a finished checkpoint for sampling (``trajsynth.load``); ``render``: see :class:`TrajectorySampler`;
    ``candidates``: see :meth:`TrajectorySampler.from_checkpoint`."""
    return TrajectorySampler.from_checkpoint(path, render, candidates)
