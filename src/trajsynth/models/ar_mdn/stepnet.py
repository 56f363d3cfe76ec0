"""The trained network rearranged for drawing one step at a time: the same arithmetic, fewer calls.

Generation runs the network once per step on a few dozen rows (a server) or a few thousand (a
batch), so a step costs either its number of tensor calls or its matrix products. Gathered once
from the frozen weights, before a roll-out:

* the GRU runs one cell call per layer (``torch.gru_cell``): ``nn.GRU`` on a sequence of one step
  costs about 1.5× as much on a large batch;
* every linear map of an embedded interval class becomes a table of its rows (embedding · weight),
  read by index, and the event's one-hot columns of the interval head a table of three rows;
* the three heads that read the hidden state (event, interval, mixture) share one matrix product.

Training keeps the modules as they are (:meth:`ARMDNModel.losses`); the tables and the shared head
matrix are computed from the weights when a :class:`StepNet` is built, so one is built for each
roll-out and a later update of the weights needs a new one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .model import ARMDNModel


class StepNet:
    """One step of :class:`ARMDNModel`'s network from its frozen weights (see the module docstring)."""

    def __init__(self, model: ARMDNModel):
        H, E, n_dt = model.cfg.hidden_dim, model.cfg.dt_embed_dim, model.n_dt
        with torch.no_grad():
            inp = model.inp[0]
            emb = model.dt_embed.weight  # (n_dt + 1, E)
            self.inp_w = inp.weight[:, :-E].contiguous()  # (H, n_numeric) the numeric inputs
            self.inp_emb = emb @ inp.weight[:, -E:].T + inp.bias  # (n_dt + 1, H) the previous interval's class
            gru = model.rnn
            self.cells = [tuple(getattr(gru, f"{w}_l{k}") for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                          for k in range(model.cfg.num_layers)]
            mix = model.mix_head[0]
            heads = (model.event_head.weight, model.dt_head.weight[:, :H], mix.weight[:, :H])
            self.head_w = torch.cat(heads).contiguous()  # (3 + n_dt + head_dim, H)
            self.head_b = torch.cat([model.event_head.bias, model.dt_head.bias, mix.bias])
            self.split = (3, n_dt, mix.weight.shape[0])
            self.dt_event = model.dt_head.weight[:, H:].T.contiguous()  # (3, n_dt) the event's one-hot columns
            self.mix_emb = emb[:n_dt] @ mix.weight[:, H : H + E].T  # (n_dt, head_dim) the drawn interval's class
            self.mix_dt = mix.weight[:, H + E]  # (head_dim,) its log-scaled milliseconds

    def hidden(self, numeric: torch.Tensor, prev_cls: torch.Tensor, h: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Numeric inputs (n, n_numeric) float32 and previous interval classes (n,) → the top layer's output
        (n, H) and the new state (num_layers, n, H) from the state ``h``."""
        x = nn.functional.silu(torch.addmm(self.inp_emb[prev_cls], numeric, self.inp_w.T))  # (n, H)
        states = []
        for k, cell in enumerate(self.cells):
            x = torch.gru_cell(x, h[k], *cell)
            states.append(x)
        return x, torch.stack(states)

    def heads(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """GRU outputs (n, H) → event logits (n, 3), the interval logits' and the mixture head's parts that
        read the hidden state (n, n_dt), (n, head_dim)."""
        return torch.addmm(self.head_b, out, self.head_w.T).split(self.split, -1)

    def dt_logits(self, part: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
        """Interval logits (n, n_dt) given the drawn events (n,)."""
        return part + self.dt_event[event]

    def mix_hidden(self, part: torch.Tensor, dt_cls: torch.Tensor, dt_ms: torch.Tensor) -> torch.Tensor:
        """The step head's hidden layer (n, head_dim) given the drawn interval: class (n,) and ms (n,)."""
        dt_in = torch.log1p(dt_ms.float()) / 4  # (n,) as in ARMDNModel._heads_in_frames
        return nn.functional.silu(part + self.mix_emb[dt_cls] + dt_in[:, None] * self.mix_dt)
