"""What a model family is, and the one interface every model offers the rest of the package.

A **family** is a name, an architecture config (with presets), a training config, a model class
and its training phases. Everything above ``models`` — the trainer, the sampler, the evaluation,
the search, the command line — works through this module and never names a family.

Every model is an ``nn.Module`` whose whole state lives in its ``state_dict`` and its architecture
config (plain JSON-able values), so a checkpoint loads with ``torch.load(weights_only=True)``:

* ``generate(n, conditions, rng) → (X, L)``: ``conditions`` (n, condition_dim) normalised,
  X (n, max_seq_len, F) features zero past each length, L (n,) int64 lengths; every random draw
  comes from ``rng``.
* optionally ``embed(X, L) → (n, D)``: a latent vector per sequence, for the latent-space metrics
  (coverage, latent MMD). Families without one leave ``has_embedding`` False.
* optionally ``reconstruct(X, L, C, path) → (X_hat, L)`` with ``reconstruction_paths`` (path name →
  what it runs through): the model's own copy of real sequences, for a family with an autoencoder.
  The evaluation scores these copies like generations: no generator decoding through that
  autoencoder can be more realistic. Families without one leave ``has_reconstruction`` False.

A family's **training** is a list of :class:`Phase` objects built by its ``training_cls``; the
common loop (``trajsynth.training.loop``) steps them, logs, evaluates, guards against NaN, writes
checkpoints and resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from ..config import TrainConfig
from ..data.train_data import TrainData


@runtime_checkable
class TrajectoryModel(Protocol):
    cfg: Any

    def generate(self, n: int, conditions: torch.Tensor, rng: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]: ...


def has_embedding(model: nn.Module) -> bool:
    return callable(getattr(model, "embed", None))


def has_reconstruction(model: nn.Module) -> bool:
    return callable(getattr(model, "reconstruct", None)) and bool(getattr(model, "reconstruction_paths", None))


@dataclass
class Phase:
    """One training phase of a family, stepped by the common loop.

    ``step()`` runs one iteration and returns its losses (tensors or floats); ``evaluate()``
    returns validation numbers (floats, keys starting with ``val_``); ``line(it, mean, it_s)``
    is the console line at each logging step; ``converged(it, mean)`` may end the phase early with
    a message; ``parts`` names the model's sub-modules the phase trains, which are the weights a
    later run takes over from a checkpoint in which this phase is done.
    """

    name: str  # also the prefix of its checkpoints: <name>_iter<k>.pt, <name>_final.pt
    total: int
    step: Callable[[], dict[str, Any]]
    evaluate: Callable[[], dict[str, float]]
    line: Callable[[int, dict[str, float], float], str]
    tracked: str  # the evaluate() key that ranks this phase's results (lower is better)
    parts: tuple[str, ...] = ()
    converged: Callable[[int, dict[str, float]], str | None] | None = None
    start: Callable[[], None] | None = None  # before the first step (and on resume into the phase)
    finish: Callable[[], None] | None = None  # after the last step, before <name>_final.pt is saved
    preview: Callable[[int], tuple] | None = None  # n → (X_real, X_other, C, L_real, L_other, label)
    projector: bool = False  # after the phase, show embed() of validation sequences in TensorBoard
    on_evaluate: Callable[[dict[str, float]], None] | None = None  # e.g. a plateau scheduler's step
    # Intervals of this phase, in its own iterations (0: the run's log_interval, eval_interval, save_interval);
    # an epoch-stepped phase logs and saves every epoch.
    log_every: int = 0
    eval_every: int = 0
    save_every: int = 0
    save_latest: bool = False  # periodic checkpoints overwrite <name>_latest.pt instead of <name>_iter<k>.pt
    keep_best: bool = False  # write <name>_best.pt whenever an evaluation's ``tracked`` value is the lowest yet


@dataclass
class StepContext:
    """What a phase step needs to know about the process it runs in (one process by default).

    Under ``torchrun`` (``trajsynth.training.distributed``) ``sync_grads`` averages the gradients
    of the given parameters over the ranks (call it after ``backward()``, before clipping and the
    optimiser step) and ``average`` the loop's logged numbers, so every rank decides alike.
    """

    rank: int = 0
    world_size: int = 1
    sync_grads: Callable[[list[nn.Parameter]], None] = field(default=lambda params: None)
    average: Callable[[dict[str, float]], dict[str, float]] = field(default=lambda values: values)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class FamilyTraining:
    """A family's phases, with the optimisers and random state they own (saved in checkpoints).

    ``objectives`` names, per phase, the minimised scores of a hyperparameter-search trial, which
    :meth:`score` computes (with the trial's best weights loaded) from the validation data.
    """

    objectives: dict[str, tuple[str, ...]] = {}

    def __init__(self, model: nn.Module, cfg: TrainConfig, data: TrainData, ctx: StepContext):
        self.model, self.cfg, self.data, self.ctx = model, cfg, data, ctx

    def phases(self) -> list[Phase]:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def score(self, phase: str, best_ev: dict[str, float], eval_samples: int, disc_iterations: int
              ) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} defines no search scores for phase {phase!r}")

    def shared_cache(self) -> Any:
        """A cache of what the finished phases' frozen parts compute, for other runs on the same parts."""
        return None

    def share(self, cache: Any) -> None:
        """Take over a cache computed by another run on the same frozen parts (e.g. in a search)."""


@dataclass(frozen=True)
class Family:
    name: str
    version: int  # of this family's checkpoint contents; a newer one is refused with a clear message
    arch_cls: type  # dataclass: what shapes the model (stored in every checkpoint)
    train_cls: type[TrainConfig]  # dataclass: the shared TrainConfig plus this family's own settings
    model_cls: type[nn.Module]
    training_cls: type[FamilyTraining]
    presets: dict[str, dict[str, Any]]  # preset → values of arch and train keys
    description: str
    # Hyperparameter search: phase → {config key: {type: categorical|int|float, choices | low, high, log}}
    search_space: dict[str, dict[str, dict]] = field(default_factory=dict)
    phase_names: tuple[str, ...] = ()
    optional_phases: tuple[str, ...] = ()  # of phase_names, those only some configurations run (ar_mdn: critic)
    # A run that starts from a finished checkpoint of another family: (ckpt, path, run) → (run adapted to it,
    # a checkpoint of this family with the phases it stands for done), for Trainer.continue_from.
    start_from: Callable[[dict, Any, Any], tuple[Any, dict]] | None = None


class NonFiniteLoss(FloatingPointError):
    """Raised by a phase step before it applies a non-finite loss; the loop turns it into a clear stop."""

    def __init__(self, losses: dict[str, float]):
        super().__init__(str(losses))
        self.losses = losses


def guard_finite(losses: dict[str, torch.Tensor]) -> None:
    """Call before ``backward()``: a NaN or Inf loss must never reach the weights."""
    if not all(torch.isfinite(v).all() for v in losses.values()):
        raise NonFiniteLoss({k: float(v.detach()) for k, v in losses.items()})
