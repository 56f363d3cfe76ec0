"""ar_mdn's generation step: the rearranged network equals the trained modules, the input columns keep
the layout checkpoints were trained with, and redrawn steps keep the first acceptable draw."""

from __future__ import annotations

import math

import torch

from trajsynth.models.ar_mdn import ARMDNConfig
from trajsynth.models.ar_mdn.model import ASINH_PX, MOVE_TRIES, ARMDNModel, from_frame
from trajsynth.models.ar_mdn.stepnet import StepNet


def model(**kw) -> ARMDNModel:
    torch.manual_seed(0)
    cfg = ARMDNConfig(hidden_dim=24, head_dim=20, dt_embed_dim=5, n_components=4, heading_components=1,
                      screen_components=1, grid_radius=2, dt_exact_ms=16, dt_log_buckets=4, **kw)
    return ARMDNModel(cfg).eval()


def state(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    f64 = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    angle = f64(n) * 2 * math.pi
    return {"rem": (f64(n, 2) - 0.5) * 400, "prev": (f64(n, 2) - 0.5) * 30, "D": f64(n) * 500 + 3,
            "k": torch.randint(0, 4, (n,), generator=g).double(), "t": f64(n) * 900, "prev_dt": f64(n) * 40,
            "c": f64(n) * 2 - 1, "dir_cos": angle.cos(), "dir_sin": angle.sin(),
            "plan": torch.stack([6.5 + f64(n), f64(n)], -1), "prev_cls": torch.randint(0, 20, (n,), generator=g)}


def layout(m: ARMDNModel, s: dict[str, torch.Tensor]) -> torch.Tensor:
    """The numeric input columns in the order (and with the scaling) trained checkpoints expect."""
    rem, prev, D, cos, sin = s["rem"], s["prev"], s["D"], s["dir_cos"], s["dir_sin"]
    scale = m.scale(rem, prev, D)[:, None]
    col = lambda v: v[:, None]  # noqa: E731
    cols = [torch.atan(rem / col(D)) * 2 / math.pi, torch.asinh(rem / ASINH_PX) / 4,
            torch.log1p(rem.norm(dim=-1, keepdim=True)) / 4, torch.asinh(prev / scale),
            torch.asinh(prev / ASINH_PX) / 4,
            col(torch.log1p(s["prev_dt"])) / 4, col(torch.log1p(s["t"] / 100)) / 2, col(s["k"]) / 50, col(s["c"]),
            col((s["k"] == 0).double()), torch.asinh(from_frame(prev, cos, sin) / ASINH_PX) / 4,
            torch.asinh(from_frame(rem, cos, sin) / ASINH_PX) / 4, col(cos), col(sin)]
    duration, reach = s["plan"][:, 0], s["plan"][:, 1]
    left = (duration.exp() - s["t"]).clamp_min(0)
    cols += [col(duration - 6.5) / 2, col(reach), col(torch.log1p(left / 100)) / 2]
    return torch.cat(cols, -1).float()


def test_input_columns_keep_the_trained_layout():
    m, s = model(), state(64)
    assert torch.equal(m.numeric_inputs(s), layout(m, s))
    on_screen = {"prev_screen": from_frame(s["prev"], s["dir_cos"], s["dir_sin"]),
                 "rem_screen": from_frame(s["rem"], s["dir_cos"], s["dir_sin"])}
    assert torch.allclose(m.numeric_inputs({**s, **on_screen}), layout(m, s), atol=1e-6)


def test_step_network_equals_the_trained_modules():
    for layers in (1, 2):
        m, s = model(num_layers=layers), state(48, seed=layers)
        net = StepNet(m)
        h0 = torch.randn(layers, 48, m.cfg.hidden_dim)
        with torch.no_grad():
            out, h = net.hidden(m.numeric_inputs(s), s["prev_cls"], h0)
            ref_out, ref_h = m.rnn(m.inp(m.step_inputs(s))[:, None], h0)
            assert torch.allclose(out, ref_out[:, 0], atol=1e-5) and torch.allclose(h, ref_h, atol=1e-5)
            event_logits, dt_part, mix_part = net.heads(out)
            event = torch.randint(0, 3, (48,))
            dt_cls = torch.randint(0, m.n_dt, (48,))
            dt_ms = torch.rand(48, dtype=torch.float64) * 60
            assert torch.allclose(event_logits, m.event_head(out), atol=1e-5)
            assert torch.allclose(net.dt_logits(dt_part, event), m.dt_logits(out, event), atol=1e-5)
            grid, params = m._heads_in_frames(out, dt_cls, dt_ms)
            x = net.mix_hidden(mix_part, dt_cls, dt_ms)
            assert torch.allclose(m.grid_out(x), grid, atol=1e-5)
            for mine, theirs in zip(m._mixture(x), params, strict=True):
                assert torch.allclose(mine, theirs, atol=1e-5)


def test_redrawn_rows_keep_their_first_acceptable_draw():
    g = torch.Generator().manual_seed(3)
    calls = []
    rows = torch.arange(4000)

    def draw(i):  # (len(i), 2): the row's index, then a uniform number
        r = rows if i is None else i
        calls.append(len(r))
        return torch.stack([r.double(), torch.rand(len(r), generator=g, dtype=torch.float64)], -1)

    def bad(step, i):  # even rows want a value >= 0.9
        return (step[:, 1] < 0.9) & ((rows if i is None else i) % 2 == 0)

    step = ARMDNModel._redrawn(draw, bad)
    assert len(calls) == 2 and calls[1] % (MOVE_TRIES - 1) == 0, "one draw, then every other try at once"
    assert torch.equal(step[:, 0], rows.double()), "each row keeps its own draws"
    even = step[rows % 2 == 0, 1]
    # 8 tries each: a row stays below 0.9 with probability 0.9 ** 8 = 0.43
    assert abs(float((even >= 0.9).double().mean()) - (1 - 0.9**MOVE_TRIES)) < 0.04
    good = even[even >= 0.9]
    assert abs(float(good.mean()) - 0.95) < 0.005, "a kept good draw is uniform on [0.9, 1)"
