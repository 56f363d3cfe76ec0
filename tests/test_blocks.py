"""Network blocks: masks, the recurrent projection, poolers, expanders, generators and critics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trajsynth.blocks.expanders import EXPAND_TYPES, build_expander
from trajsynth.blocks.masks import length_mask
from trajsynth.blocks.mlp import CRITIC_TYPES, GENERATOR_TYPES, SummaryHead, build_critic, build_generator
from trajsynth.blocks.pooling import POOL_TYPES, LatentPooler
from trajsynth.blocks.rnn import RecurrentProjection, StackedRecurrent

B, T, D, S = 4, 12, 6, 10  # batch, steps, latent dim, summary dim
LENGTHS = torch.tensor([12, 7, 3, 1])
EXPANDER_KW = dict(summary_dim=S, latent_dim=D, hidden_dim=16, num_layers=2, max_len=T)
NOISE, COND = 5, 1
GEN_KW = dict(noise_dim=NOISE, condition_dim=COND, summary_dim=S, hidden_dims=[16, 16], embed_dim=8)
CRITIC_KW = dict(summary_dim=S, condition_dim=COND, hidden_dims=[16, 16], embed_dim=8)


def seeded(seed: int, make):
    torch.manual_seed(seed)
    return make()


def garbage_past_lengths(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``h`` with large random values wherever a step lies past its sequence's length."""
    past = ~length_mask(lengths, h.size(1))
    noise = 1e3 * torch.randn(h.shape, generator=torch.Generator().manual_seed(1))
    return torch.where(past.unsqueeze(-1), noise, h)


def assert_every_parameter_gets_a_gradient(module: nn.Module, loss: torch.Tensor, allowed_zero=()):
    module.zero_grad()
    loss.backward()
    for name, p in module.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), name
        if name not in allowed_zero:
            assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"


def weighted_sum(out: torch.Tensor) -> torch.Tensor:
    """A loss with no symmetry that could cancel gradients (unlike a plain sum after a LayerNorm)."""
    return (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum()


# --------------------------------------------------------------------------- masks


def test_length_mask():
    m = length_mask(torch.tensor([3, 0, 5, 1]), 5)
    assert m.dtype == torch.bool and m.shape == (4, 5)
    assert m.int().tolist() == [[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert length_mask(LENGTHS, T).sum(1).tolist() == LENGTHS.tolist()


# --------------------------------------------------------------------------- recurrent projection


def test_recurrent_projection_shape_range_and_causality():
    net = seeded(0, lambda: RecurrentProjection(in_dim=8, hidden_dim=16, num_layers=2, out_dim=D))
    x = torch.randn(B, T, 8)
    y = net(x)
    assert y.shape == (B, T, D) and y.abs().max() <= 1
    # padding sits after the valid steps, so it never changes an output at a valid step
    y_bad = net(garbage_past_lengths(x, LENGTHS))
    for i, n in enumerate(LENGTHS.tolist()):
        assert torch.equal(y[i, :n], y_bad[i, :n])
        assert torch.allclose(y[i, :n], net(x[i : i + 1, :n])[0], atol=1e-6)  # same as without padding
    assert not torch.allclose(y[1, 7:], y_bad[1, 7:])  # the test above could fail: padding does change later steps


def test_recurrent_projection_gradients_and_seed():
    make = lambda: RecurrentProjection(in_dim=8, hidden_dim=16, num_layers=2, out_dim=D)
    a, b, c = seeded(3, make), seeded(3, make), seeded(4, make)
    x = torch.randn(B, T, 8)
    assert torch.equal(a(x), b(x)) and not torch.allclose(a(x), c(x))
    assert_every_parameter_gets_a_gradient(a, weighted_sum(a(x)))


# --------------------------------------------------------------------------- poolers


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_pooler_shape_and_range(pool_type):
    pool = seeded(0, lambda: LatentPooler(D, S, pool_type))
    z = pool(torch.randn(B, T, D), LENGTHS)
    assert z.shape == (B, S) and z.abs().max() <= 1 and torch.isfinite(z).all()


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_pooler_ignores_values_past_the_length(pool_type):
    pool = seeded(0, lambda: LatentPooler(D, S, pool_type))
    h = torch.randn(B, T, D)
    z = pool(h, LENGTHS)
    assert torch.allclose(pool(garbage_past_lengths(h, LENGTHS), LENGTHS), z, atol=1e-6)
    for i, n in enumerate(LENGTHS.tolist()):  # same summary as the sequence alone, unpadded
        assert torch.allclose(pool(h[i : i + 1, :n], LENGTHS[i : i + 1])[0], z[i], atol=1e-6)
    # a valid step does count (the last one matters to every pool type)
    h2 = h.clone()
    h2[1, LENGTHS[1] - 1] += 3.0
    assert not torch.allclose(pool(h2, LENGTHS)[1], z[1])


@pytest.mark.parametrize("pool_type", POOL_TYPES)
def test_pooler_gradients(pool_type):
    pool = seeded(0, lambda: LatentPooler(D, S, pool_type))
    h = torch.randn(B, T, D, requires_grad=True)
    # a softmax does not change when the same number is added to every score: the last score bias gets none
    allowed = ("score.2.bias",) if pool_type == "attention" else ()
    assert_every_parameter_gets_a_gradient(pool, weighted_sum(pool(h, LENGTHS)), allowed_zero=allowed)
    if allowed:
        assert pool.score[2].bias.grad.abs().max() < 1e-6
    past = ~length_mask(LENGTHS, T)
    assert h.grad[past].abs().max() == 0  # nothing flows back into padding
    assert h.grad[~past].abs().sum() > 0


def test_pooler_types_differ_and_unknown_type_is_refused():
    h = torch.randn(B, T, D)
    summaries = [seeded(0, lambda t=t: LatentPooler(D, S, t))(h, LENGTHS) for t in ("mean", "last")]
    assert not torch.allclose(*summaries)
    with pytest.raises(ValueError, match=r"pool_type must be one of .*'max'"):
        LatentPooler(D, S, "max")


# --------------------------------------------------------------------------- expanders


@pytest.mark.parametrize("expand_type", EXPAND_TYPES)
def test_expander_shape_and_range(expand_type):
    exp = seeded(0, lambda: build_expander(expand_type, **EXPANDER_KW))
    z = torch.rand(B, S) * 2 - 1
    for steps in (T, 5, 1):
        out = exp(z, steps, LENGTHS.clamp_max(steps))
        assert out.shape == (B, steps, D) and out.abs().max() <= 1 and torch.isfinite(out).all()
    assert exp(z, T).shape == (B, T, D)  # lengths are optional


@pytest.mark.parametrize("expand_type", EXPAND_TYPES)
def test_expander_depends_on_z_and_is_seeded(expand_type):
    make = lambda: build_expander(expand_type, **EXPANDER_KW)
    a, b, c = seeded(5, make), seeded(5, make), seeded(6, make)
    z = torch.rand(B, S) * 2 - 1
    out = a(z, T, LENGTHS)
    assert torch.equal(out, b(z, T, LENGTHS)) and not torch.allclose(out, c(z, T, LENGTHS))
    assert not torch.allclose(out[0], out[1])  # different summaries give different sequences


@pytest.mark.parametrize("expand_type", EXPAND_TYPES)
def test_expander_gradients(expand_type):
    exp = seeded(0, lambda: build_expander(expand_type, **EXPANDER_KW))
    z = (torch.rand(B, S) * 2 - 1).requires_grad_(True)
    assert_every_parameter_gets_a_gradient(exp, weighted_sum(exp(z, T, LENGTHS)))
    assert z.grad.abs().sum() > 0


@pytest.mark.parametrize("expand_type, uses_lengths", [("parallel", True), ("repeat", True),
                                                       ("lstm", False), ("mlp", False)])
def test_expander_lengths_input(expand_type, uses_lengths):
    assert set(EXPAND_TYPES) == {"parallel", "repeat", "lstm", "mlp"}
    exp = seeded(0, lambda: build_expander(expand_type, **EXPANDER_KW))
    z = torch.rand(B, S) * 2 - 1
    same = torch.allclose(exp(z, T, LENGTHS), exp(z, T, torch.full((B,), T)))
    assert same != uses_lengths


def test_unknown_expander_is_refused():
    with pytest.raises(ValueError, match=r"expand_type must be one of .*'gru'"):
        build_expander("gru", **EXPANDER_KW)


# --------------------------------------------------------------------------- generators and critics


@pytest.mark.parametrize("kind", GENERATOR_TYPES)
def test_generator_shape_range_and_inputs(kind):
    gen = seeded(0, lambda: build_generator(kind, **GEN_KW))
    noise, cond = torch.randn(B, NOISE), torch.rand(B, COND) * 2 - 1
    out = gen(noise, cond)
    assert out.shape == (B, S) and out.abs().max() <= 1
    assert not torch.allclose(gen(noise, -cond), out)  # the condition matters
    assert not torch.allclose(gen(torch.randn(B, NOISE), cond), out)  # and so does the noise


@pytest.mark.parametrize("kind", GENERATOR_TYPES)
def test_generator_gradients_and_seed(kind):
    make = lambda: build_generator(kind, **GEN_KW)
    a, b, c = seeded(7, make), seeded(7, make), seeded(8, make)
    noise, cond = torch.randn(B, NOISE), torch.rand(B, COND) * 2 - 1
    assert torch.equal(a(noise, cond), b(noise, cond)) and not torch.allclose(a(noise, cond), c(noise, cond))
    assert_every_parameter_gets_a_gradient(a, weighted_sum(a(noise, cond)))


@pytest.mark.parametrize("kind", CRITIC_TYPES)
def test_critic_shape_and_inputs(kind):
    critic = seeded(0, lambda: build_critic(kind, **CRITIC_KW))
    z, cond = torch.rand(B, S) * 2 - 1, torch.rand(B, COND) * 2 - 1
    score = critic(z, cond)
    assert score.shape == (B, 1) and torch.isfinite(score).all()
    assert not torch.allclose(critic(z, -cond), score)  # the condition matters
    assert not torch.allclose(critic(-z, cond), score)
    # per-sample: a sample's score does not depend on the rest of the batch (LayerNorm, not BatchNorm)
    assert torch.allclose(critic(z[:1], cond[:1]), score[:1], atol=1e-6)


@pytest.mark.parametrize("kind", CRITIC_TYPES)
def test_critic_gradients_and_seed(kind):
    make = lambda: build_critic(kind, **CRITIC_KW)
    a, b, c = seeded(9, make), seeded(9, make), seeded(10, make)
    z, cond = (torch.rand(B, S) * 2 - 1).requires_grad_(True), torch.rand(B, COND) * 2 - 1
    assert torch.equal(a(z, cond), b(z, cond)) and not torch.allclose(a(z, cond), c(z, cond))
    assert_every_parameter_gets_a_gradient(a, weighted_sum(a(z, cond)))
    assert z.grad.abs().sum() > 0  # the gradient penalty needs the gradient with respect to the input


def test_unknown_generator_or_critic_is_refused():
    with pytest.raises(ValueError, match=r"generator_type must be one of .*'gru'"):
        build_generator("gru", **GEN_KW)
    with pytest.raises(ValueError, match=r"critic_type must be one of .*'patch'"):
        build_critic("patch", **CRITIC_KW)


def test_summary_head():
    head = seeded(0, lambda: SummaryHead(S, 7, hidden_dim=16))
    z = torch.rand(B, S) * 2 - 1
    out = head(z)
    assert out.shape == (B, 7) and not torch.allclose(out[0], out[1])
    assert_every_parameter_gets_a_gradient(head, weighted_sum(out))


@pytest.mark.parametrize("module", ["gru", "lstm"])
def test_tf1_weight_init_starts_gates_open_and_kernels_in_glorot_range(module):
    torch.manual_seed(0)
    net = StackedRecurrent(5, 24, 2, 3, module, "sigmoid", "tf1")
    H = 24
    for k, fan_in in ((0, 5 + H), (1, H + H)):
        b_ih, b_hh = getattr(net.rnn, f"bias_ih_l{k}"), getattr(net.rnn, f"bias_hh_l{k}")
        w = torch.cat([getattr(net.rnn, f"weight_ih_l{k}"), getattr(net.rnn, f"weight_hh_l{k}")], 1)
        assert torch.all(b_hh == 0)
        if module == "gru":  # reset and update gates at 1, the candidate at 0
            assert torch.all(b_ih[: 2 * H] == 1) and torch.all(b_ih[2 * H :] == 0)
            bound = (6 / (fan_in + H)) ** 0.5
            assert w[2 * H :].abs().max() <= bound and w[2 * H :].abs().max() > 0.9 * bound
        else:  # the forget gate at 1
            assert torch.all(b_ih[H : 2 * H] == 1) and (b_ih != 0).sum() == H
            bound = (6 / (fan_in + 4 * H)) ** 0.5
            assert w.abs().max() <= bound and w.abs().max() > 0.9 * bound
    assert torch.all(net.out.bias == 0)
    plain = StackedRecurrent(5, 24, 2, 3, module)
    assert not torch.all(plain.rnn.bias_ih_l0[:H] == 1), "torch's own start is the default"
    with pytest.raises(ValueError, match="init must be one of"):
        StackedRecurrent(5, 24, 2, 3, module, "sigmoid", "keras")
