"""The autoregressive mixture-density step model: a movement drawn one logged event at a time.

A movement is a sequence of steps (dt ms, dx px, dy px) from the release at (0, 0) to the press on
the target, on the logger's own clock (integer ms) and grid (integer px). Before each step a GRU
reads where the cursor stands: the remaining displacement to the target, the previous step, its
interval class, the elapsed time, the step index and the distance, all in the **target frame**
(the target along +x), so movements in every direction share one model. Each step is drawn in
three parts, each conditioned on the ones before:

1. **event**: move, *arrive* (the last motion event: the step lands on the target, "the snap",
   and the press follows without moving) or *press* (the press itself lands on the target); the
   target is where the hand stops, so a real movement's last motion event is on it by definition,
   and the network decides when the cursor is within reach instead of having to hit a pixel;
2. **interval**: a categorical over integer milliseconds (one class per ms below ``dt_exact_ms``,
   log-spaced buckets up to ``dt_max_ms``, uniform within a bucket), given the event: the event
   clock is learned, not assumed, and the wait before the press is its own;
3. **displacement** of a move: a bivariate Gaussian mixture (correlated components, as in
   handwriting synthesis) of the step in the target frame divided by a scale (the remaining
   distance with a floor, or the movement's distance), so 2-px corrections and 200-px strides share
   one model. A logger reports no motion event without motion, so a move that rounds to no pixel
   change after the first step is drawn again (up to ``MOVE_TRIES`` times).

A movement's **plan** is what a recurrent state cannot discover step by step: its total duration
and its reach (the farthest point from the start, relative to the distance; > 1 for overshoots and
for excursions that leave and come back). Both are measured on each training movement and given to
the network at every step (with the time left); for generation a plan is drawn whole from the
training movements of the same distance bin (``plan_records``), so duration and reach keep their
joint distribution given the distance. Without it, a per-step model cannot start the excursions of
short movements: their first steps look like any jitter.
With ``plan_shape`` the plan also holds the movement's
lateral excursion and the share of its duration before it covers 90 % of the distance
(``training.plan_shape``).

Positions are rounded to integer pixels after each step, so the network always reads the integer
positions the data has. The target's distance comes from the condition and its direction, with
``direction_source="plan"``, from the same training movement as the plan (``plan_angles``): on a
screen, long movements are mostly horizontal, and a direction drawn apart from the distance was the
strongest single tell of a classifier (heading features alone: 0.14 of disc_timegan's 0.21); with
``"histogram"`` it comes from the histogram of all training directions (``angle_hist``). The target
is the pixel nearest that point; ``generate(..., targets=...)`` takes it instead.
Sampling is vectorised over the movements (a Python loop over steps only); every draw comes from
the given ``torch.Generator``. ``temperature`` sharpens (< 1) or flattens (> 1) the step's class and
mixture-weight distributions, ``dt_temperature`` the interval classes, and ``sigma_temperature``
scales each Gaussian's variance. They are separate because they act differently: narrower Gaussians
(0.3) take out the heading jitter that gave generated movements away while the classes keep their
variety; sharper classes or intervals lose the variety a strong classifier sees.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from torch import nn

from ...data.features import NormalizationParams, padded_to_features
from ...metrics.discriminative import GRUReadout, readout_logits
from ..angles import draw_angles
from .config import ARMDNConfig

NORM_FIELDS = tuple(f.name for f in dataclasses.fields(NormalizationParams))
N_NUMERIC = 18  # numeric inputs per step (see step_inputs), before the direction, the plan and the interval embedding
PLAN_DIM = 2  # log duration (ms), log reach (farthest distance from the start / distance)
PLAN_SHAPE_DIM = 2  # with plan_shape: lateral excursion / distance (signed), time share before 90 % of the distance
ASINH_PX = 4.0  # pixel scale of the asinh-compressed inputs: about linear below 4 px, logarithmic above
RHO_MAX = 0.99  # |correlation| bound of a mixture component: keeps its covariance invertible
MOVE, ARRIVE, PRESS = 0, 1, 2  # the events of a step
MOMENTUM_GAP = 0.5  # the momentum step keeps the previous step when the interval is at least this share of its one
MOVE_TRIES = 8  # draws of a move that stays on its pixel before it is kept anyway


def dt_edges(cfg: ARMDNConfig) -> torch.Tensor:
    """Interval class boundaries (n_dt + 1,) in ms: class c holds the integers in [edges[c], edges[c + 1])."""
    exact = np.arange(cfg.dt_exact_ms + 1)
    ratio = cfg.dt_max_ms / cfg.dt_exact_ms
    geom = np.round(cfg.dt_exact_ms * ratio ** (np.arange(1, cfg.dt_log_buckets + 1) / cfg.dt_log_buckets))
    edges = np.concatenate([exact, geom]).astype(np.int64)
    for i in range(cfg.dt_exact_ms + 1, len(edges)):  # at least one ms per bucket (validated to fit)
        edges[i] = max(edges[i], edges[i - 1] + 1)
    return torch.as_tensor(edges)


def to_frame(v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Screen vectors (..., 2) → target frame (target along +x); cos, sin broadcast to v[..., 0]."""
    return torch.stack([v[..., 0] * cos + v[..., 1] * sin, -v[..., 0] * sin + v[..., 1] * cos], dim=-1)


def from_frame(v: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return torch.stack([v[..., 0] * cos - v[..., 1] * sin, v[..., 0] * sin + v[..., 1] * cos], dim=-1)


def mixture_nll(params: tuple[torch.Tensor, ...], y: torch.Tensor) -> torch.Tensor:
    """−log p(y) (...,) of points y (..., 2) under bivariate Gaussian mixtures.

    params: mixture-weight logits (..., K), means and log σ (..., K, 2), correlations ρ (..., K).
    """
    logit, mu, log_sigma, rho = params
    z = (y[..., None, :] - mu) * torch.exp(-log_sigma)  # (..., K, 2) standardised
    one_m = 1 - rho * rho
    quad = (z[..., 0] ** 2 + z[..., 1] ** 2 - 2 * rho * z[..., 0] * z[..., 1]) / one_m
    log_n = -0.5 * quad - math.log(2 * math.pi) - log_sigma.sum(-1) - 0.5 * torch.log(one_m)  # (..., K)
    return -torch.logsumexp(torch.log_softmax(logit, -1) + log_n, -1)


def marginal_nll(params: tuple[torch.Tensor, ...], y: torch.Tensor, axis: int) -> torch.Tensor:
    """−log p(y) (...,) of coordinates y (...,) under the mixtures' marginals on ``axis`` (0: x, 1: y)."""
    logit, mu, log_sigma, _ = params
    ls = log_sigma[..., axis]  # (..., K)
    z = (y[..., None] - mu[..., axis]) * torch.exp(-ls)
    log_n = -0.5 * z * z - 0.5 * math.log(2 * math.pi) - ls
    return -torch.logsumexp(torch.log_softmax(logit, -1) + log_n, -1)


def rotate_components(mu: torch.Tensor, log_sigma: torch.Tensor, rho: torch.Tensor, cos: torch.Tensor,
                      sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bivariate Gaussians (means and log σ (..., K, 2), ρ (..., K)) in the target frame → the screen frame.

    cos, sin (...,) of the target direction; the covariance becomes R Σ Rᵀ. Computed in float64: for a
    thin component (σ ratio 10⁴, |ρ| near 1) a rotated variance is a difference of nearly equal terms.
    """
    sd = log_sigma.double().exp()
    r = rho.double()
    xx, yy, xy = sd[..., 0] ** 2, sd[..., 1] ** 2, r * sd[..., 0] * sd[..., 1]  # (..., K)
    c, n = cos.double()[..., None], sin.double()[..., None]
    tiny = 1e-300  # the variances are positive (Σ is); the floor only guards the logarithm
    sxx = (c * c * xx - 2 * c * n * xy + n * n * yy).clamp_min(tiny)
    syy = (n * n * xx + 2 * c * n * xy + c * c * yy).clamp_min(tiny)
    sxy = c * n * (xx - yy) + (c * c - n * n) * xy
    log_sd = 0.5 * torch.stack([sxx.log(), syy.log()], -1)
    rho_screen = (sxy * torch.exp(-log_sd.sum(-1))).clamp(-RHO_MAX, RHO_MAX)
    dtype = mu.dtype
    return from_frame(mu, c.to(dtype), n.to(dtype)), log_sd.to(dtype), rho_screen.to(dtype)


def dequantization_noise(lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """U(-½, ½) px noise (n, max(lengths) − 1, 2) float64 for the steps of movements of ``lengths`` (n,)."""
    return torch.rand(len(lengths), int(lengths.max()) - 1, 2, generator=gen, dtype=torch.float64) - 0.5


def categorical(logits: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
    """One class (n,) per row of logits (n, C), by inverse CDF of a uniform draw from ``rng``."""
    cdf = torch.softmax(logits, -1).cumsum(-1)  # (n, C)
    u = torch.rand(len(logits), 1, generator=rng, dtype=cdf.dtype)
    # the number of classes whose cumulative probability lies below u: one pass, not a compare and a sum
    return torch.searchsorted(cdf, u * cdf[:, -1:])[:, 0].clamp_max(logits.shape[-1] - 1)


class ARMDNModel(nn.Module):
    """GRU over steps with event, interval and mixture heads (see the module docstring)."""

    directed = True  # generate() takes end points (``targets``): path(start, end) is drawn for its direction
    integer_paths = True  # paths are whole pixels and milliseconds, as a logger records them

    def __init__(self, cfg: ARMDNConfig):
        super().__init__()
        self.cfg = cfg
        H, E, K = cfg.hidden_dim, cfg.dt_embed_dim, cfg.n_components
        self.register_buffer("norm", torch.zeros(len(NORM_FIELDS), dtype=torch.float64))  # NormalizationParams
        self.register_buffer("angle_hist", torch.zeros(cfg.n_angle_bins, dtype=torch.float64))  # counts over [-π, π)
        self.register_buffer("plan_edges", torch.zeros(cfg.n_plan_bins + 1, dtype=torch.float64))  # log px
        self.plan_dim = PLAN_DIM + (PLAN_SHAPE_DIM if cfg.plan_shape else 0)
        self.register_buffer("plan_records", torch.zeros(cfg.n_plan_bins, cfg.plan_records, self.plan_dim,
                                                         dtype=torch.float64))  # plans of training movements
        self.register_buffer("plan_angles", torch.zeros(cfg.n_plan_bins, cfg.plan_records,
                                                        dtype=torch.float64))  # their target directions, rad
        self.register_buffer("step_cap_px", torch.zeros((), dtype=torch.float64))  # longest training step
        self.register_buffer("dt_edges", dt_edges(cfg), persistent=False)  # fixed by the config
        self.n_dt = len(self.dt_edges) - 1
        self.register_buffer("_log_weights", torch.tensor([0.25, 0.25, 0.5, 0.5], dtype=torch.float64),
                             persistent=False)  # of log1p(|rem|), log1p(prev_dt), log1p(t / 100), log1p(left / 100)
        # component groups: target frame, previous step's frame, screen frame (see mixture)
        self.groups = (K - cfg.heading_components - cfg.screen_components, cfg.heading_components,
                       cfg.screen_components)
        self.register_buffer("component_group", torch.tensor([g for g, k in enumerate(self.groups) for _ in range(k)]),
                             persistent=False)  # (K,) the group of each component
        self.dt_embed = nn.Embedding(self.n_dt + 1, E)  # the last index: no previous step
        n_in = N_NUMERIC + (2 if cfg.use_direction else 0) + (self.plan_dim + 1 if cfg.use_plan else 0) + E
        self.inp = nn.Sequential(nn.Linear(n_in, H), nn.SiLU())
        self.rnn = nn.GRU(H, H, cfg.num_layers, batch_first=True)
        self.drop = nn.Dropout(cfg.dropout)  # training only: generation runs in eval mode
        self.event_head = nn.Linear(H, 3)  # move | arrive | press
        self.dt_head = nn.Linear(H + 3, self.n_dt)  # + the event (one-hot): the wait before the press is its own
        self.mix_head = nn.Sequential(nn.Linear(H + E + 1, cfg.head_dim), nn.SiLU())  # shared by the step outputs
        self.mix_out = nn.Linear(cfg.head_dim, 6 * K)
        R = cfg.grid_radius
        side = torch.arange(-R, R + 1, dtype=torch.float64)
        self.register_buffer("grid", torch.cartesian_prod(side, side), persistent=False)  # (n_grid, 2) px (dx, dy)
        self.n_grid = len(self.grid) if R > 0 else 0
        # + the larger steps' classes: free (n_grid), and with axis_classes on the x axis, on the y axis
        self.grid_out = nn.Linear(cfg.head_dim, self.n_grid + (3 if cfg.axis_classes else 1)) if R > 0 else None
        if cfg.critic:  # reads the trajectory features; the 0/1 buffer says whether phase critic has trained it
            self.critic = GRUReadout(cfg.feature_dim, cfg.critic_hidden, cfg.critic_layers)
            self.register_buffer("critic_trained", torch.zeros((), dtype=torch.bool))

    # ----------------------------------------------------------------- data constants
    @property
    def ready(self) -> bool:
        return bool(self.angle_hist.sum() > 0)

    @property
    def params(self) -> NormalizationParams:
        values = self.norm.tolist()
        return NormalizationParams(**{k: (int(v) if k == "format_version" else v)
                                      for k, v in zip(NORM_FIELDS, values, strict=True)})

    @torch.no_grad()
    def set_data(self, params: NormalizationParams, angles: np.ndarray, distance: np.ndarray, plan: np.ndarray,
                 step_cap_px: float, seed: int) -> None:
        """Store the data constants: scaling, directions (N,) rad, the plan table from distances (N,) px and
        plans (N, PLAN_DIM) (equal-count bins of log distance, rows drawn with a ``seed``ed generator), and
        the longest training step (px), which caps generated steps."""
        values = [float(params.to_dict()[k]) for k in NORM_FIELDS]
        self.norm.copy_(torch.as_tensor(values, dtype=torch.float64))
        hist, _ = np.histogram(np.asarray(angles), bins=self.cfg.n_angle_bins, range=(-math.pi, math.pi))
        self.angle_hist.copy_(torch.as_tensor(hist, dtype=torch.float64))
        log_d = np.log(np.asarray(distance, np.float64))
        edges = np.quantile(log_d, np.linspace(0, 1, self.cfg.n_plan_bins + 1))
        bins = np.clip(np.searchsorted(edges[1:-1], log_d, side="right"), 0, self.cfg.n_plan_bins - 1)
        rng = np.random.default_rng(seed)
        rows = [rng.choice(np.flatnonzero(bins == b) if (bins == b).any() else np.arange(len(log_d)),
                           self.cfg.plan_records) for b in range(self.cfg.n_plan_bins)]
        self.plan_edges.copy_(torch.as_tensor(edges))
        plan = np.asarray(plan, np.float64)[:, : self.plan_dim]  # (N, plan_dim): the columns this model reads
        self.plan_records.copy_(torch.as_tensor(plan[np.stack(rows)]))
        self.plan_angles.copy_(torch.as_tensor(np.asarray(angles, np.float64)[np.stack(rows)]))
        self.step_cap_px.fill_(float(step_cap_px))

    def distance(self, c: torch.Tensor) -> torch.Tensor:
        """Normalised condition (n,) → distance (n,) px, as features.condition_to_distance."""
        lo, hi = (math.log(float(self.norm[NORM_FIELDS.index(k)])) for k in ("d_min", "d_max"))
        return torch.exp(lo + (c.double() + 1) / 2 * (hi - lo))

    def dt_class(self, ms: torch.Tensor) -> torch.Tensor:
        """Interval (ms, any shape) → its class; past dt_max_ms → the last bucket."""
        ms = ms.round().long().clamp(0, self.cfg.dt_max_ms - 1)
        return torch.searchsorted(self.dt_edges, ms, right=True) - 1

    # ----------------------------------------------------------------- network pieces
    def scale(self, remaining: torch.Tensor, prev: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """Step scale (...,) px from the remaining displacement and the previous step (..., 2), see ``step_scale``."""
        if self.cfg.step_scale == "distance":
            return D.expand(remaining.shape[:-1])
        sq = (remaining**2).sum(-1) + self.cfg.scale_floor_px**2
        if self.cfg.step_scale == "motion":  # a cursor passing the target fast keeps steps of its speed's size
            sq = sq + (prev**2).sum(-1)
        return torch.sqrt(sq)

    def step_inputs(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Inputs (..., n_in) of the step about to be drawn, from the state ``s`` (float64, broadcast):
        rem, prev (..., 2) target-frame px; prev_dt, t ms, k, D px, c, dir_cos, dir_sin (...,); prev_cls (...,) long;
        plan (..., PLAN_DIM) log duration and log reach. The numeric ones, then the previous interval's embedding."""
        return torch.cat([self.numeric_inputs(s), self.dt_embed(s["prev_cls"])], -1)

    def numeric_inputs(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """The numeric part (..., n_in - dt_embed_dim) float32 of :meth:`step_inputs`.

        ``s`` may also hold ``rem_screen`` and ``prev_screen``, the two vectors in the screen frame (a
        roll-out has them; else they are rotated back), and the step's ``scale`` (:meth:`scale`). Like
        functions are computed together (one asinh, one log1p) and the columns then put in the order
        trained checkpoints expect: a step of a roll-out is a few hundred tensor calls on a few dozen
        rows, so each call saved counts.
        """
        rem, prev, D, k = s["rem"], s["prev"], s["D"], s["k"]
        screen = [s[key] if key in s else from_frame(v, s["dir_cos"], s["dir_sin"])
                  for key, v in (("prev_screen", prev), ("rem_screen", rem))]
        scale = (s["scale"] if "scale" in s else self.scale(rem, prev, D))[..., None]
        # bounded: an excursion far past the target must not saturate the network
        a = torch.asinh(torch.cat([torch.cat([rem, prev, *screen], -1) / ASINH_PX, prev / scale], -1))  # (..., 10)
        q = a[..., :8] / 4  # rem, prev, prev and rem on the screen axes, about linear below ASINH_PX px
        logs = [rem.norm(dim=-1), s["prev_dt"], s["t"] / 100]  # then log1p, / 4, / 4, / 2
        if self.cfg.use_plan:  # duration and reach, and the time left (log scales of about unit range)
            duration, reach = s["plan"][..., 0:1], s["plan"][..., 1:2]
            logs.append((duration[..., 0].exp() - s["t"]).clamp_min(0.0) / 100)  # the time left
        g = torch.log1p(torch.stack(logs, -1)) * self._log_weights[: len(logs)]  # (..., 3 or 4)
        numeric = [torch.atan(rem / D[..., None]) * (2 / math.pi), q[..., 0:2], g[..., 0:1], a[..., 8:10],
                   q[..., 2:4], g[..., 1:3], k[..., None] / 50, s["c"][..., None], (k == 0).double()[..., None],
                   q[..., 4:8]]
        if self.cfg.use_direction:
            numeric += [s["dir_cos"][..., None], s["dir_sin"][..., None]]
        if self.cfg.use_plan:
            numeric += [(duration - 6.5) / 2, reach, g[..., 3:4]]
            if self.cfg.plan_shape:  # the lateral excursion (10-90 %: ±0.27, 1-99 %: ±2.2) compressed; the time share
                numeric += [torch.asinh(s["plan"][..., 2:3] * 4), s["plan"][..., 3:4]]
        return torch.cat(numeric, -1).float()

    def step_heads(self, h: torch.Tensor, dt_cls: torch.Tensor, dt_ms: torch.Tensor, s: dict[str, torch.Tensor],
                   scale: torch.Tensor) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
        """Logits (..., n_grid + 1) of the small-step classes (None without a grid) and the screen-frame
        mixture parameters (for y = screen step / ``scale``) of larger steps, from hidden states h (..., H),
        the step's interval and the state ``s`` (:meth:`step_inputs`: dir_cos, dir_sin, prev, prev_dt).

        Steps of at most ``grid_radius`` px on each axis are classes of their own: slow motion moves one
        pixel along one axis at a time, and repeats itself, which no rounded Gaussian reproduces.

        Components come in three groups, each predicted in its own frame and rotated to the screen:
        the target frame (motion toward the target, whatever its direction), the previous step's frame
        (a hand keeps its heading, and integer steps then repeat their direction exactly) and the
        screen frame (a sensor and a hand move along the screen's axes more often than a rotated model
        can). The means are offsets from the momentum step (:meth:`momentum`).
        """
        grid_logits, (logit, mu, log_sigma, rho) = self._heads_in_frames(h, dt_cls, dt_ms)
        parts, start = [], 0
        for k, frame in zip(self.groups, self._frames(s), strict=True):
            group = (mu[..., start : start + k, :], log_sigma[..., start : start + k, :], rho[..., start : start + k])
            parts.append(group if frame is None else rotate_components(*group, *frame))
            start += k
        mu, log_sigma = (torch.cat([p[i] for p in parts], -2) for i in (0, 1))
        rho = torch.cat([p[2] for p in parts], -1)
        base = self.momentum(s["prev"], s["prev_dt"], dt_ms, scale)  # (..., 2) target frame
        mu = mu + from_frame(base, s["dir_cos"], s["dir_sin"]).float()[..., None, :]
        return grid_logits, (logit, mu, log_sigma, rho)

    def _heads_in_frames(self, h: torch.Tensor, dt_cls: torch.Tensor, dt_ms: torch.Tensor
                         ) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
        """:meth:`step_heads` before the rotation: each component's mean (without the momentum step),
        log σ and ρ in its own group's frame."""
        x = self.mix_head(torch.cat([h, self.dt_embed(dt_cls), torch.log1p(dt_ms.float())[..., None] / 4], -1))
        grid_logits = self.grid_out(x) if self.grid_out is not None else None
        return grid_logits, self._mixture(x)

    def _mixture(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The step head's hidden layer (..., head_dim) → mixture-weight logits (..., K), means and log σ
        (..., K, 2), ρ (..., K), each component in its own group's frame."""
        K = self.cfg.n_components
        logit, mu, log_sigma, rho = self.mix_out(x).split([K, 2 * K, 2 * K, K], -1)  # (..., 6K)
        mu, log_sigma = (v.unflatten(-1, (K, 2)) for v in (mu, log_sigma))
        return logit, mu, log_sigma.clamp_min(self.cfg.min_log_sigma), RHO_MAX * torch.tanh(rho)

    def grid_class(self, step: torch.Tensor) -> torch.Tensor:
        """Integer steps (..., 2) px → their small-step class, or outside the grid n_grid ("larger"), and with
        ``axis_classes`` n_grid + 1 (larger, dy = 0) or n_grid + 2 (larger, dx = 0)."""
        R = self.cfg.grid_radius
        inside = (step.abs() <= R).all(-1)
        cls = ((step[..., 0] + R) * (2 * R + 1) + step[..., 1] + R).long()  # cartesian_prod order: dx major
        larger = torch.full_like(cls, self.n_grid)
        if self.cfg.axis_classes:
            larger = torch.where(step[..., 1] == 0, self.n_grid + 1, torch.where(step[..., 0] == 0, self.n_grid + 2,
                                                                                 larger))
        return torch.where(inside, cls, larger)

    def _frames(self, s: dict[str, torch.Tensor]) -> tuple:
        """(cos, sin) (...,) of the target direction and of the previous step's heading (the target's before
        the first step), and None for the screen frame: the rotations of the component groups."""
        cos, sin = s["dir_cos"], s["dir_sin"]
        if "prev_screen" in s:  # a roll-out's state has the previous step on the screen
            prev = s["prev_screen"]
            length = prev.norm(dim=-1, keepdim=True)
            heading = torch.where(length > 0, prev / length.clamp_min(1e-12), torch.stack([cos, sin], -1))
        else:
            length = s["prev"].norm(dim=-1, keepdim=True)
            along = torch.tensor([1.0, 0.0], dtype=length.dtype)  # toward the target
            heading = from_frame(torch.where(length > 0, s["prev"] / length.clamp_min(1e-12), along), cos, sin)
        return (cos, sin), (heading[..., 0], heading[..., 1]), None

    def momentum(self, prev: torch.Tensor, prev_dt: torch.Tensor, dt: torch.Tensor, scale: torch.Tensor
                 ) -> torch.Tensor:
        """The scaled previous step (..., 2), where the mixture means start from (zero without ``momentum``).

        A hand's steps follow each other so closely that integer steps often repeat exactly; a network
        reproduces a previous step only approximately, an offset from it exactly. The clock's jitter
        (16 / 17 ms) is not extrapolated; an interval under MOMENTUM_GAP of the previous one restarts
        from zero (the previous step came after a pause).
        """
        if not self.cfg.momentum:
            return torch.zeros_like(prev)
        keep = (dt >= MOMENTUM_GAP * prev_dt).to(prev.dtype)
        return prev * (keep / scale)[..., None]

    def dt_logits(self, h: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
        return self.dt_head(torch.cat([h, nn.functional.one_hot(event, 3).float()], -1))

    # ----------------------------------------------------------------- teacher forcing
    def losses(self, b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-step negative log-likelihoods (nats), averaged over the valid steps of a batch.

        ``b``: the state keys of :meth:`step_inputs` (B, S, ...), and ``valid`` (B, S) bool, ``event``
        (B, S) long, ``dt`` (B, S) ms, ``step_px`` (B, S, 2) the integer screen step, ``y`` (B, S, 2) the
        dequantised screen step divided by ``scale`` (B, S). ``step`` includes log |Jacobian| of the scaling
        (a density in px); with a grid it is the small-step class's −log P plus, for larger steps, that density.
        """
        event_nll, dt_nll, step_nll, moving = self._nll_terms(b)
        valid = b["valid"]
        n_steps = valid.sum().clamp_min(1)
        out = {"event": (event_nll * valid).sum() / n_steps, "dt": (dt_nll * valid).sum() / n_steps,
               "step": step_nll.sum() / moving.sum().clamp_min(1)}
        out["total"] = out["event"] + out["dt"] + out["step"] * moving.sum() / n_steps
        return out

    def step_nlls(self, b: dict[str, torch.Tensor]) -> torch.Tensor:
        """The negative log-likelihood (B, S) of each step of a batch (:meth:`losses`), 0 past each end."""
        event_nll, dt_nll, step_nll, moving = self._nll_terms(b)
        return (event_nll + dt_nll) * b["valid"] + torch.zeros_like(event_nll).masked_scatter(moving, step_nll)

    def _nll_terms(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Event and interval NLLs (B, S) at every step, the step NLLs (N,) of the N moving steps, and where
        those are (B, S) bool."""
        h, _ = self.rnn(self.inp(self.step_inputs(b)))  # (B, S, H)
        h = self.drop(h)
        valid, event = b["valid"], b["event"]
        moving = valid & (event == MOVE)  # arrivals and presses land on the target: not drawn
        event_nll = nn.functional.cross_entropy(self.event_head(h).transpose(1, 2), event, reduction="none")
        dt_cls = self.dt_class(b["dt"])
        dt_nll = nn.functional.cross_entropy(self.dt_logits(h, event).transpose(1, 2), dt_cls, reduction="none")
        # The step heads at the moving steps only (N of them): past a movement's end the inputs are nothing the
        # net was trained on, and its mixture there can overflow (σ = inf); masked by multiplication, inf · 0
        # would still make the loss NaN.
        m = {k: v[moving] for k, v in b.items() if v.shape[:2] == moving.shape}  # (N, ...) each
        return event_nll, dt_nll, self._step_nll(h[moving], dt_cls[moving], m), moving

    def _step_nll(self, h: torch.Tensor, dt_cls: torch.Tensor, m: dict[str, torch.Tensor]) -> torch.Tensor:
        """−log p (N,) of N moving steps' screen steps (a density in px), from their hidden states h (N, H)
        and batch values ``m`` (N, ...). With a grid: the small-step class's −log P plus, for larger steps,
        that density."""
        grid_logits, params = self.step_heads(h, dt_cls, m["dt"], m, m["scale"])
        log_scale = torch.log(m["scale"]).float()
        y = m["y"].float()
        step_nll = mixture_nll(params, y) + 2 * log_scale
        if grid_logits is None:
            return step_nll
        cls = self.grid_class(m["step_px"])  # a small step: its class; a larger one: its class, then its density
        step_nll = torch.where(cls == self.n_grid, step_nll, 0.0) + nn.functional.cross_entropy(
            grid_logits, cls, reduction="none")
        if self.cfg.axis_classes:  # on an axis: the density of the other coordinate (a marginal)
            for offset, axis in ((1, 0), (2, 1)):
                on = cls == self.n_grid + offset
                step_nll = step_nll + torch.where(on, marginal_nll(params, y[..., axis], axis) + log_scale, 0.0)
        return step_nll

    # ----------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                 targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """conditions (n, 1) normalised distances → X (n, max_seq_len, 8) float32 zero past each length, L (n,) int64.

        X is paths_to_features of the generated integer path with dx, dy scaled by the requested
        distance, so features_to_paths(X, C, L, params) gives the integer path back. ``targets``
        (n, 2) px, if given, are the end points (rounded to pixels) instead of directions drawn from
        the training histogram: the movement is generated for its real direction.
        """
        X, L, _ = self.generate_with_paths(n, conditions, rng, targets)
        return X, L

    def generate_with_paths(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                            targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """:meth:`generate`, and the integer paths P (n, max_seq_len, 3) float64 the features were made from
        (t_ms, x, y; the last point repeated): a caller that wants pixels need not invert X."""
        P, L, info = self.sample_paths(n, conditions, rng, targets)
        return torch.from_numpy(self.features(P, L, info["distance"])), torch.from_numpy(L), P

    def features(self, P: np.ndarray, L: np.ndarray, distance: np.ndarray) -> np.ndarray:
        """Trajectory features X (n, T, 8) float32 of padded integer paths P (n, T, 3), lengths L (n,) and the
        requested distances (n,) px: dx, dy scaled by the requested distance, so that features_to_paths
        gives the integer path back."""
        T = P.shape[1]
        X, _, _ = padded_to_features(P, L, self.params)
        valid = np.arange(T)[None, :] < L[:, None]  # (n, T)
        pos = (2 / np.pi) * np.arctan(P[:, :, 1:] / distance[:, None, None])  # (n, T, 2)
        X[..., :2] = np.where(valid[..., None], pos, 0.0)
        return X

    @property
    def chooses(self) -> bool:
        """Whether generation draws several candidates per movement and keeps the one the critic picks."""
        return self.cfg.critic and self.cfg.candidates > 1 and bool(self.critic_trained)

    def critic_logits(self, X: np.ndarray, L: np.ndarray) -> torch.Tensor:
        """The critic's logits (n,) (people: > 0) of features X (n, T, 8) with lengths L (n,)."""
        return readout_logits(self.critic, torch.as_tensor(X), torch.as_tensor(L), np.arange(len(L)))

    def _choose(self, P: torch.Tensor, L: torch.Tensor, D: np.ndarray, k: int, rng: torch.Generator | None
                ) -> torch.Tensor:
        """Rows (n,) to keep of n·k candidates (k consecutive rows per movement): one per movement, drawn with
        probability ∝ exp(critic logit)."""
        logits = self.critic_logits(self.features(P.numpy(), L.numpy(), D), L.numpy()).view(-1, k)  # (n, k)
        pick = torch.multinomial(torch.softmax(logits.double(), -1), 1, generator=rng).squeeze(-1)  # (n,)
        return torch.arange(len(pick)) * k + pick

    @torch.inference_mode()
    def sample_paths(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                     targets: torch.Tensor | None = None, choose: bool = True
                     ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Padded integer paths P (n, T, 3) (t_ms, x, y; the last point repeated), lengths L (n,), and per movement:
        ``distance`` requested px, ``snap_px`` the distance the press jumped onto the target (0 after an
        arrival), ``arrive_px`` the length of the arriving step (0 without one), ``forced`` whether the
        press was forced at max_seq_len. ``choose=False``: one draw per movement even where the critic chooses."""
        k = self.cfg.candidates if self.chooses and choose else 1
        if k > 1:  # each movement's candidates on consecutive rows
            conditions = torch.as_tensor(conditions).reshape(n, -1).repeat_interleave(k, 0)
            targets = None if targets is None else torch.as_tensor(targets).reshape(n, 2).repeat_interleave(k, 0)
        target, c, plan = self.prepare(n * k, conditions, rng, targets)
        P, L, info = self._roll_out(target, c, plan, rng)
        D = self.distance(c).numpy()
        if k > 1:
            keep = self._choose(P, L, D, k, rng)
            P, L, D, info = P[keep], L[keep], D[keep.numpy()], {key: v[keep] for key, v in info.items()}
        return P.numpy(), L.numpy(), {"distance": D, **{key: v.numpy() for key, v in info.items()}}

    def failed(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Which movements (n,) of a roll-out's state did not arrive by themselves: forced at max_seq_len, or a
        press that jumped more than ``max_press_jump_px`` onto the target."""
        return s["forced"] | (s["snap_px"] > self.cfg.max_press_jump_px)

    def prepare(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None,
                targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What a roll-out starts from: integer targets (n, 2) px, clamped conditions (n,) float64 and
        plans (n, PLAN_DIM) (see :meth:`sample_paths`, :class:`~.rollout.Rollout`)."""
        if not self.ready:
            raise RuntimeError("ARMDNModel.generate called before training set its data constants (train it, or "
                               "load a trained state_dict)")
        c = torch.as_tensor(conditions, dtype=torch.float64).reshape(-1)  # (n,)
        if len(c) != n:
            raise ValueError(f"generate(n={n}) needs n conditions of shape (n, 1), got {tuple(conditions.shape)}")
        c = c.clamp(-1.0, 1.0)  # distances outside the data's range are brought to its ends
        D = self.distance(c)  # (n,)
        plan, plan_angle = self._draw_plans(D, rng)  # (n, PLAN_DIM), (n,)
        if targets is None:
            angle = plan_angle if self.cfg.direction_source == "plan" else draw_angles(self.angle_hist, n, rng)
            target = torch.stack([D * angle.cos(), D * angle.sin()], -1).round()  # (n, 2) integer px
        else:
            target = torch.as_tensor(targets, dtype=torch.float64).reshape(n, 2).round()  # (n, 2) integer px
        return target, c, plan

    def _draw_plans(self, D: torch.Tensor, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A plan (n, PLAN_DIM) per movement, a training movement's of the same distance bin drawn uniformly,
        and that movement's direction (n,) rad."""
        bins = torch.searchsorted(self.plan_edges[1:-1].contiguous(), D.log().contiguous())
        pick = torch.randint(self.cfg.plan_records, (len(D),), generator=rng)
        return self.plan_records[bins, pick], self.plan_angles[bins, pick]

    def rollout(self, rng: torch.Generator | None = None):
        """An empty :class:`~.rollout.Rollout`: rows join (from :meth:`prepare`) and leave as they finish."""
        from .rollout import Rollout  # here: rollout.py imports this module's constants

        return Rollout(self, rng)

    def _roll_out(self, target: torch.Tensor, c: torch.Tensor, plan: torch.Tensor, rng: torch.Generator | None):
        """Draw every movement step by step: P (n, T, 3) float64, L (n,), and snap_px, arrive_px, forced (n,)."""
        from .rollout import INFO  # here: rollout.py imports this module's constants

        n, T = len(target), self.cfg.max_seq_len
        P, L = torch.zeros(n, T, 3, dtype=torch.float64), torch.full((n,), T)
        info = {"snap_px": torch.zeros(n, dtype=torch.float64), "arrive_px": torch.zeros(n, dtype=torch.float64),
                "forced": torch.zeros(n, dtype=torch.bool)}
        run = self.rollout(rng)
        run.add(target, c, plan)  # ids 0..n-1: the rows of P
        while run.live:
            if (done := run.step()) is not None:
                P[done["id"]], L[done["id"]] = done["path"], done["length"]
                for key in INFO:
                    info[key][done["id"]] = done[key]
        return P, L, info

    def _draw_event(self, logits: torch.Tensor, arrived: torch.Tensor, last: torch.Tensor,
                    rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Event (n,) of each movement's next step from the event head's logits (n, 3), and whether a press
        was forced (n,) bool. After an arrival the press follows; at the last step of max_seq_len the press
        is forced."""
        event = categorical(logits, rng)
        must = arrived | last
        return torch.where(must, PRESS, event), must & (event != PRESS) & ~arrived

    def _draw_dt(self, logits: torch.Tensor, rng: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Interval class (n,) and ms (n,) float64 from the interval logits (n, n_dt): a class by its tempered
        probability, uniform ms within it."""
        dt_cls = categorical(logits / self.cfg.dt_temperature, rng)
        lo, hi = self.dt_edges[dt_cls], self.dt_edges[dt_cls + 1]
        u = torch.rand(len(logits), generator=rng, dtype=torch.float64)
        return dt_cls, (lo + (u * (hi - lo)).floor()).double()

    def _draw_move(self, x: torch.Tensor, dt: torch.Tensor, pos: torch.Tensor, s: dict[str, torch.Tensor],
                   redraw: torch.Tensor, rng: torch.Generator | None) -> torch.Tensor:
        """New integer positions (n, 2) after a move, from the step head's hidden layer x (n, head_dim), the
        intervals dt (n,) ms and the state ``s`` (:meth:`step_inputs`); rows in ``redraw`` (moves after the
        first) never stay on their pixel: a logger reports no such event."""
        if self.grid_out is None:
            return pos + self._drawn_larger(x, dt, s, torch.arange(len(pos)),
                                            lambda st, r: (redraw[r] & (st == 0).all(-1)) | self._too_fast(st, dt[r]),
                                            rng)
        logits = self.grid_out(x) / self.cfg.temperature
        zero = self.n_grid // 2  # the class of (0, 0)
        logits[:, zero] = torch.where(redraw, -math.inf, logits[:, zero])
        cls = categorical(logits, rng)
        step = self.grid[cls.clamp_max(self.n_grid - 1)]  # (n, 2) the small steps
        larger = torch.nonzero(cls >= self.n_grid)[:, 0]  # rows whose step lies outside the grid: drawn
        if len(larger):
            lock = cls - self.n_grid  # (n,) 0 free, 1 on the x axis (dy = 0), 2 on the y axis (dx = 0)
            step[larger] = self._drawn_larger(x, dt, s, larger,
                                              lambda st, r: self._off_class(st, lock[r]) | self._too_fast(st, dt[r]),
                                              rng, lock[larger] if self.cfg.axis_classes else None)
        return pos + step

    def _too_fast(self, step: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """Whether steps (m, 2) px over intervals dt (m,) ms are faster than ``max_step_speed`` (never when 0)."""
        cap = self.cfg.max_step_speed
        if not cap:
            return torch.zeros(len(step), dtype=torch.bool)
        return step.norm(dim=-1) > cap * dt.clamp_min(1.0)

    def _off_class(self, step: torch.Tensor, lock: torch.Tensor) -> torch.Tensor:
        """Whether larger steps (m, 2) px, drawn for classes ``lock`` (m,) (see :meth:`_draw_move`), fall out of
        their class: inside the grid, or (axis classes) a free step on an axis. Such a draw is drawn again."""
        bad = (step.abs() <= self.cfg.grid_radius).all(-1)
        if self.cfg.axis_classes:
            bad = bad | ((lock == 0) & (step == 0).any(-1))
        return bad

    def _drawn_larger(self, x: torch.Tensor, dt: torch.Tensor, s: dict[str, torch.Tensor], rows: torch.Tensor,
                      bad, rng: torch.Generator | None, lock: torch.Tensor | None = None) -> torch.Tensor:
        """Steps (m, 2) px of the m ``rows`` from the mixture (computed for these rows only), drawn again
        where ``bad(steps, rows)`` holds (see :meth:`_redrawn`); ``s``: a roll-out's state with the step's
        ``scale``. ``lock`` (m,): 1 sets dy to 0 (the x coordinate is then a draw of the mixture's marginal),
        2 sets dx to 0, 0 leaves the step free."""
        keys = ("scale", "prev_screen", "dir_cos", "dir_sin") + (("prev", "prev_dt") if self.cfg.momentum else ())
        a = {k: s[k][rows] for k in keys}  # (m, ...)
        scale = a["scale"][:, None]  # (m, 1)
        params = self._packed(self._mixture(x[rows]))
        frames = self._group_frames(a)
        base = (from_frame(self.momentum(a["prev"], a["prev_dt"], dt[rows], scale[:, 0]), a["dir_cos"], a["dir_sin"])
                if self.cfg.momentum else None)  # (m, 2) screen frame

        def draw(i: torch.Tensor | None) -> torch.Tensor:  # steps (len(i), 2) of rows[i]; None: of every row
            take = (lambda v: v) if i is None else (lambda v: v[i])  # noqa: E731
            y = self._sample_mixture(tuple(map(take, params)), tuple(map(take, frames)), rng)
            step = self._capped((y if base is None else y + take(base)) * take(scale))
            if lock is not None:
                keep = torch.stack([take(lock) != 2, take(lock) != 1], -1)  # (len, 2) the coordinates kept
                step = step * keep
            return step

        return self._redrawn(draw, lambda st, i: bad(st, rows if i is None else rows[i]))

    @staticmethod
    def _redrawn(draw, bad) -> torch.Tensor:
        """Steps (n, 2) from ``draw(None)`` (every row), drawn again where ``bad(steps, None)`` holds: the few
        rows that need it get their other MOVE_TRIES - 1 draws in one call, ``draw(i)`` and ``bad(steps, i)``
        for positions i, and keep the first good one (the last if none is), which is the distribution of
        drawing one at a time in a few calls."""
        step = draw(None)
        todo = torch.nonzero(bad(step, None))[:, 0]  # (m,) the rows to draw again
        m, tries = len(todo), MOVE_TRIES - 1
        if m == 0 or tries == 0:
            return step
        again_rows = todo.repeat(tries)  # (tries * m,) try j of the i-th row at j * m + i
        again = draw(again_rows)
        good = ~bad(again, again_rows).view(tries, m)
        first = torch.where(good.any(0), good.int().argmax(0), tries - 1)  # (m,) the try kept
        step[todo] = again.view(tries, m, 2)[first, torch.arange(m)]
        return step

    def _capped(self, step: torch.Tensor) -> torch.Tensor:
        """Steps (n, 2) px shortened to the longest training step, then rounded to whole pixels: a draw from
        a wide component's tail must not throw the cursor off the screen (the next scale would grow with it)."""
        length = step.norm(dim=-1, keepdim=True)
        return (step * (self.step_cap_px / length.clamp_min(1e-9)).clamp_max(1.0)).round()

    def _group_frames(self, s: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (n, 3) float64 of each component group's frame (:meth:`_frames`), one column per group."""
        (tc, ts), (hc, hs), _ = self._frames(s)
        one, zero = torch.ones_like(tc), torch.zeros_like(tc)
        return torch.stack([tc, hc, one], -1).double(), torch.stack([ts, hs, zero], -1).double()

    @staticmethod
    def _packed(params: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixture parameters → weight logits (n, K) and, per component, (μx, μy, log σx, log σy, ρ) (n, K, 5)."""
        logit, mu, log_sigma, rho = params
        return logit, torch.cat([mu, log_sigma, rho[..., None]], -1)

    def _sample_mixture(self, params: tuple[torch.Tensor, torch.Tensor], frames: tuple[torch.Tensor, torch.Tensor],
                        rng: torch.Generator | None) -> torch.Tensor:
        """One draw y (n, 2) float64 in the screen frame per row of mixture parameters (:meth:`_packed`) in
        the components' own frames, at the configured temperatures; ``frames``: cos, sin (n, 3) of the
        component groups.

        The draw is made in the chosen component's frame and then rotated, which gives the same
        distribution as rotating the covariance first (:func:`rotate_components`, used for the
        likelihood) for a fraction of the work. The step is y · scale, plus the momentum step.
        """
        logit, comps = params
        n = len(logit)
        comp = categorical(logit / self.cfg.temperature, rng)[:, None]  # (n, 1)
        c = comps.gather(1, comp[..., None].expand(-1, 1, 5))[:, 0].double()  # (n, 5) the chosen component
        r = c[:, 4]
        e = torch.randn(n, 2, generator=rng, dtype=torch.float64)
        z = torch.stack([e[:, 0], r * e[:, 0] + torch.sqrt(1 - r * r) * e[:, 1]], -1)
        y = c[:, :2] + c[:, 2:4].exp() * math.sqrt(self.cfg.sigma_temperature) * z  # (n, 2) in the component's frame
        group = self.component_group[comp]  # (n, 1)
        return from_frame(y, frames[0].gather(1, group)[:, 0], frames[1].gather(1, group)[:, 0])
