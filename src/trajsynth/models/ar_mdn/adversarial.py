"""Phase ``adversarial`` of the ar_mdn family: the step model learns from the critic's verdict on its own movements.

Fitted by likelihood the model is still caught by a classifier, and refitting it by likelihood on the
movements the critic prefers did not help (README): what gives it away arises when it runs on its own
draws, which teacher forcing never shows it. So this phase trains it on its own roll-outs, by policy
gradient with the critic's logit as the reward. Each iteration draws ``adv_candidates`` movements to
each of ``adv_groups`` training end points; a movement's advantage is its logit minus its group's
mean, over the batch's spread (group-relative: no value network). The loss lowers the negative
log-likelihood of the better movements and raises that of the worse, step by step, plus

* a KL penalty to the fitted model, per step (the k3 estimator exp(d) − d − 1 with d = log(p_fit / p)):
  it grows exponentially where a step's likelihood falls below the fitted model's, so pushing the
  worse movements down cannot run away (without it the model diverged within 400 iterations);
* the fit's own likelihood on a batch of people's movements, which keeps it close to the data.

With ``adv_critic_lr`` > 0 the critic takes a step of its own per iteration on these movements
against as many people's (a GAN-like game); 0 leaves it as trained. All draws come from a generator
saved in the checkpoints, and the fitted model's weights (the KL reference) too, so a resumed phase
continues where it stopped.
"""

from __future__ import annotations

import copy

import torch

from ..base import guard_finite
from .critic import CriticSet, critic_update
from .model import dequantization_noise

ADV_SEED = 4099  # offset of the seed of the phase's draws


class AdversarialPhase:
    """Optimisers, the KL reference and the draws of phase ``adversarial`` (composed into ARMDNTraining)."""

    def __init__(self, model, cfg, train_set, fit_params: list[torch.nn.Parameter]):
        self.model, self.cfg, self.train_set = model, cfg, train_set
        self.params = fit_params
        self.opt = torch.optim.Adam(fit_params, lr=cfg.adv_lr)
        self.critic_opt = torch.optim.Adam(model.critic.parameters(), lr=cfg.adv_critic_lr or cfg.critic_lr)
        self.rng = torch.Generator().manual_seed(cfg.seed + ADV_SEED)
        self.reference: torch.nn.Module | None = None  # the fitted model, frozen

    # ----- state -------------------------------------------------------------
    def state_dict(self) -> dict:
        ref = None if self.reference is None else self.reference.state_dict()
        return {"optimizer": self.opt.state_dict(), "critic_optimizer": self.critic_opt.state_dict(),
                "rng": self.rng.get_state(), "reference": ref}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["optimizer"])
        self.critic_opt.load_state_dict(state["critic_optimizer"])
        self.rng.set_state(state["rng"])
        if state.get("reference") is not None:
            self.reference = self._frozen_copy()
            self.reference.load_state_dict(state["reference"])

    def _frozen_copy(self) -> torch.nn.Module:
        ref = copy.deepcopy(self.model).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        return ref

    def start(self) -> None:
        """The KL reference: the model as the phase finds it (a resume has it from the checkpoint)."""
        if self.reference is None:
            self.reference = self._frozen_copy()

    # ----- one iteration -------------------------------------------------------
    def step(self) -> dict[str, float]:
        cfg, ts = self.cfg, self.train_set
        G, K = cfg.adv_groups, cfg.adv_candidates
        idx = torch.randint(len(ts.L), (G,), generator=self.rng)
        fake, X, logit = self._draw(idx.repeat_interleave(K))  # K consecutive rows per end point
        adv = logit.view(G, K)
        adv = ((adv - adv.mean(1, keepdim=True)) / adv.std().clamp_min(1e-6)).reshape(-1, 1)  # (G·K, 1)
        batch = fake.batch(self.model, torch.arange(G * K), self._noise(fake.L))
        self.model.train()
        nll = self.model.step_nlls(batch)  # (G·K, S)
        with torch.no_grad():
            nll_ref = self.reference.step_nlls(batch)
        valid = batch["valid"]
        n_steps = valid.sum()
        d = (nll - nll_ref).clamp(-10.0, 10.0)  # log(p_ref / p) per step
        kl = ((torch.exp(d) - d - 1.0) * valid).sum() / n_steps
        pg = (adv * nll).sum() / n_steps  # descending it lowers the NLL of the better movements
        real = torch.randint(len(ts.L), (cfg.batch_size,), generator=self.rng)
        mle = self.model.losses(ts.batch(self.model, real, self._noise(ts.L[real])))["total"]
        losses = {"pg": pg, "kl": kl, "mle": mle, "total": mle + pg + cfg.adv_kl * kl}
        guard_finite(losses)
        self.opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        self.opt.step()
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["logit"] = float(logit.mean())
        if cfg.adv_critic_lr > 0:
            out["critic"] = self._critic_step(X, fake.L)
        return out

    @torch.no_grad()
    def _draw(self, idx: torch.Tensor):
        """Movements drawn to the end points of training movements ``idx`` (n,): as training.Movements, their
        features X (n, T, 8) and the critic's logits (n,)."""
        from .training import Movements  # here: training.py imports this module

        self.model.eval()
        ts = self.train_set
        c = ts.C[idx]
        P, L, info = self.model.sample_paths(len(idx), c.reshape(-1, 1), rng=self.rng, targets=ts.ends()[idx],
                                             choose=False)
        X = self.model.features(P, L, info["distance"])
        self.model.critic.eval()
        logit = self.model.critic_logits(X, L)
        return Movements(torch.as_tensor(P), torch.as_tensor(L), c.clone()), torch.as_tensor(X), logit

    def _noise(self, L: torch.Tensor) -> torch.Tensor | None:
        """Dequantisation noise U(-½, ½) px (n, S, 2) for movements of lengths L (n,), or None."""
        return dequantization_noise(L, self.rng) if self.cfg.dequantize else None

    def _critic_step(self, X: torch.Tensor, L: torch.Tensor) -> float:
        """One critic step on the drawn movements (X (n, T, 8), L (n,)) against as many people's."""
        ts = self.train_set
        real = torch.randint(len(ts.L), (len(L),), generator=self.rng)
        sets = CriticSet.pair(ts.X[real], ts.L[real], X, L)
        return critic_update(self.model.critic, self.critic_opt, *sets.batch(torch.arange(2 * len(L))))

    def line(self, it: int, mean: dict, its: float) -> str:
        return (f"[adversarial] Iter {it:6d}/{self.cfg.adv_iterations} | MLE {mean['mle']:.4f} | KL {mean['kl']:.4f} "
                f"| critic logit {mean['logit']:+.3f} | {its:.1f} it/s")
