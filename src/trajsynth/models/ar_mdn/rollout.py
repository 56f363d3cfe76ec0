"""Movements drawn step by step, with rows that join and leave between steps (continuous batching).

A batch of movements costs one network step per step of its *longest* movement: on SapiMouse a
batch of 32 runs about 74 steps while its movements need 33 on average. A :class:`Rollout` keeps
only the movements still going: a row leaves as soon as its press is drawn, and new rows may
join before any step. ``ARMDNModel.sample_paths`` adds one batch and steps until it is empty; a
server adds requests as they arrive, so a short movement is answered after its own steps, not
after the longest one in its batch.

Every row carries its own step index, so rows that joined at different steps are drawn exactly
as if each batch had run alone; the rows keep their order, so a batch's draws from one generator
are the same whichever way it is run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .model import ARRIVE, MOVE, PRESS, to_frame
from .stepnet import StepNet

if TYPE_CHECKING:
    from .model import ARMDNModel

INFO = ("snap_px", "arrive_px", "forced")  # what a finished row reports besides its path


class Rollout:
    """The live rows of one model's roll-out; :meth:`add` rows, :meth:`step` until :attr:`live` is 0.

    Use it under ``torch.inference_mode()`` (as ``sample_paths`` does): it holds no graph.
    """

    def __init__(self, model: ARMDNModel, rng: torch.Generator | None = None):
        self.model, self.rng, self.T = model, rng, model.cfg.max_seq_len
        self.net = StepNet(model)  # the frozen weights, rearranged once for this roll-out's steps
        self.s: dict[str, torch.Tensor] = {}
        self.h = torch.zeros(model.cfg.num_layers, 0, model.cfg.hidden_dim)
        self._next_id = 0
        # The paths being drawn, one slot per live row (s["slot"]): kept out of the state, which is
        # copied whenever rows leave, while a path is written once per step and read once at the end.
        self.paths = torch.zeros(0, self.T, 3, dtype=torch.float64)
        self._free: list[int] = []  # slots of rows that left

    @property
    def live(self) -> int:
        return len(self.h[0])

    def add(self, target: torch.Tensor, c: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
        """New rows from their integer targets (n, 2) px, conditions (n,) and plans (n, PLAN_DIM); their ids (n,)."""
        n = len(target)
        ids = torch.arange(self._next_id, self._next_id + n)
        self._next_id += n
        new = {**self._fresh(target, c, plan), "tries": torch.zeros(n, dtype=torch.long), "slot": self._slots(n),
               "id": ids}
        self.s = new if not self.s else {k: torch.cat([self.s[k], v]) for k, v in new.items()}
        h0 = torch.zeros(self.model.cfg.num_layers, n, self.model.cfg.hidden_dim)
        self.h = torch.cat([self.h, h0], 1)
        return ids

    def _fresh(self, target: torch.Tensor, c: torch.Tensor, plan: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state of n movements about to draw their first step (:meth:`add`; :meth:`_restart`)."""
        n = len(target)
        D = target.norm(dim=-1).clamp_min(1.0)
        zeros = lambda *shape: torch.zeros(*shape, dtype=torch.float64)  # noqa: E731
        return {"D": D, "c": c, "dir_cos": target[:, 0] / D, "dir_sin": target[:, 1] / D, "prev": zeros(n, 2),
                "prev_screen": zeros(n, 2), "prev_dt": zeros(n), "t": zeros(n),
                "prev_cls": torch.full((n,), self.model.n_dt), "plan": plan,
                "target": target, "pos": zeros(n, 2), "arrived": torch.zeros(n, dtype=torch.bool),
                "snap_px": zeros(n), "arrive_px": zeros(n), "forced": torch.zeros(n, dtype=torch.bool),
                "step": torch.zeros(n, dtype=torch.long)}

    def _slots(self, n: int) -> torch.Tensor:
        """n free path slots (n,), zeroed; the storage grows (doubling) when too few are free."""
        if len(self._free) < n:
            have = len(self.paths)
            grow = max(n - len(self._free), have)
            self.paths = torch.cat([self.paths, torch.zeros(grow, self.T, 3, dtype=torch.float64)])
            self._free += range(have, have + grow)
        slots = torch.tensor(self._free[:n], dtype=torch.long)
        del self._free[:n]
        self.paths[slots] = 0.0
        return slots

    def step(self) -> dict[str, torch.Tensor] | None:
        """Draw one step of every live row; the rows that pressed, if any: ``id`` (m,), ``path`` (m, T, 3)
        float64 (t_ms, x, y; the last point repeated), ``length`` (m,), and :data:`INFO` (m,)."""
        m, s = self.model, self.s
        s["rem_screen"] = s["target"] - s["pos"]
        s["rem"] = to_frame(s["rem_screen"], s["dir_cos"], s["dir_sin"])
        s["k"] = s["step"].double()
        s["scale"] = m.scale(s["rem"], s["prev"], s["D"])
        out, self.h = self.net.hidden(m.numeric_inputs(s), s["prev_cls"], self.h)  # (n, H)
        pressing = self._draw(out, s)
        del s["rem"], s["rem_screen"], s["k"], s["scale"]  # this step's only: rows that leave need not carry them
        s["step"] = s["step"] + 1
        if m.cfg.redraws:  # movements that did not arrive by themselves start over, while they have tries left
            again = pressing & m.failed(s) & (s["tries"] < m.cfg.redraws)
            if again.any():
                self._restart(again)
                pressing = pressing & ~again
        if not pressing.any():
            return None
        done = {k: s[k][pressing] for k in ("id", "slot", "step", *INFO)}
        going = ~pressing
        self.s, self.h = {k: v[going] for k, v in s.items()}, self.h[:, going]
        length = done.pop("step") + 1  # the press was point step + 1
        slot = done.pop("slot")
        self._free += slot.tolist()
        last = torch.minimum(torch.arange(self.T), length[:, None] - 1)  # (m, T) the last point, repeated
        done["path"] = self.paths[slot].gather(1, last[..., None].expand(-1, -1, 3))
        return {**done, "length": length}

    def _restart(self, rows: torch.Tensor) -> None:
        """Start the movements of ``rows`` (n,) bool over: same id, slot and target, a new plan, one try more."""
        m, s = self.model, self.s
        plan, _ = m._draw_plans(m.distance(s["c"][rows]), self.rng)
        for key, v in self._fresh(s["target"][rows], s["c"][rows], plan).items():
            s[key] = s[key].clone()  # the first rows' tensors may be the caller's (add does not copy them)
            s[key][rows] = v
        s["tries"] = s["tries"] + rows.long()
        self.h = torch.where(rows[None, :, None], 0.0, self.h)
        self.paths[s["slot"][rows]] = 0.0

    def _draw(self, out: torch.Tensor, a: dict[str, torch.Tensor]) -> torch.Tensor:
        """Draw each live row's step (GRU outputs ``out`` (n, H)) into its path and state; which rows pressed."""
        m, net, rng, target, pos, k = self.model, self.net, self.rng, a["target"], a["pos"], a["step"]
        event_logits, dt_part, mix_part = net.heads(out)
        event, forced = m._draw_event(event_logits, a["arrived"], k == self.T - 2, rng)
        dt_cls, dt = m._draw_dt(net.dt_logits(dt_part, event), rng)
        moves = event == MOVE
        new = m._draw_move(net.mix_hidden(mix_part, dt_cls, dt), dt, pos, a, moves & (k > 0), rng)
        new = torch.where(moves[:, None], new, target)
        jump = (target - pos).norm(dim=-1)
        a["arrive_px"] = torch.where(event == ARRIVE, jump, a["arrive_px"])
        pressing = event == PRESS
        a["snap_px"] = torch.where(pressing, jump, a["snap_px"])
        a["forced"] = a["forced"] | (pressing & forced)
        self.paths[a["slot"], k + 1] = torch.cat([(a["t"] + dt)[:, None], new], -1)
        a["prev_screen"] = new - pos
        a["prev"], a["prev_dt"], a["prev_cls"] = to_frame(a["prev_screen"], a["dir_cos"], a["dir_sin"]), dt, dt_cls
        a["t"], a["pos"], a["arrived"] = a["t"] + dt, new, a["arrived"] | (event == ARRIVE)
        return pressing
