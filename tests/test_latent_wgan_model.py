"""The two-stage model's building blocks and API, on random tensors (tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from trajsynth.blocks.expanders import EXPAND_TYPES
from trajsynth.blocks.mlp import CRITIC_TYPES, GENERATOR_TYPES
from trajsynth.blocks.pooling import POOL_TYPES
from trajsynth.config import ConfigError
from trajsynth.models.latent_wgan.config import PRESETS, LatentWGANArch
from trajsynth.models.latent_wgan.model import LatentWGAN
from trajsynth.models.registry import run_config

T = 12


def batch(B: int = 6):
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([T, 3, 7, 1, 12, 5][:B])
    x = torch.rand(B, T, 8, generator=g) * 2 - 1
    x = x * (torch.arange(T)[None, :, None] < lengths[:, None, None])  # zero padding
    return x, torch.rand(B, 1, generator=g) * 2 - 1, lengths


def tiny(**kw) -> LatentWGAN:
    torch.manual_seed(0)
    return LatentWGAN(run_config("latent_wgan", "tiny", max_seq_len=T, **kw).arch)


@pytest.mark.parametrize("pool_type", POOL_TYPES)
@pytest.mark.parametrize("expand_type", EXPAND_TYPES)
def test_autoencoder_shapes_and_masking(pool_type, expand_type):
    m = tiny(pool_type=pool_type, expand_type=expand_type)
    x, c, L = batch()
    x_rec, losses = m.forward_autoencoder(x, L, c)
    assert x_rec.shape == x.shape
    assert torch.all(x_rec[torch.arange(T)[None, :] >= L[:, None]] == 0), "padding must be zero"
    assert set(losses) >= {"direct", "recon", "latent", "length", "condition", "total"}
    losses["total"].backward()
    assert all(p.grad is not None for p in m.encoder.parameters())


def test_pooler_ignores_padding():
    m = tiny(pool_type="hybrid")
    x, _, L = batch()
    x2 = x.clone()
    x2[0 + 1, 5:] = 0.9  # garbage past length 3 of sequence 1
    assert torch.allclose(m.encode(x, L)[1], m.encode(x2, L)[1], atol=1e-6)


@pytest.mark.parametrize("generator_type", GENERATOR_TYPES)
@pytest.mark.parametrize("critic_type", CRITIC_TYPES)
def test_stage2_losses_and_generation(generator_type, critic_type):
    m = tiny(generator_type=generator_type, critic_type=critic_type)
    x, c, L = batch()
    m.freeze_autoencoder()
    assert not any(p.requires_grad for p in m.autoencoder_parameters())
    d = m.forward_discriminator(x, c, lengths=L)  # sequences in: encoded inside
    d["total"].backward()
    assert all(p.grad is not None for p in m.critic.parameters())
    g = m.forward_generator(c, m.encode(x, L))
    assert {"adv", "fm", "cond_guard", "total"} <= set(g)
    xg, lg = m.generate(6, c)
    assert xg.shape == (6, T, 8) and lg.min() >= 1 and lg.max() <= T
    assert torch.all(xg[torch.arange(T)[None, :] >= lg[:, None]] == 0)
    assert torch.all(xg.abs() <= 1)


def test_generate_is_seedable_and_seq_len_fixes_lengths():
    m = tiny()
    c = torch.zeros(4, 1)
    a = m.generate(4, c, rng=torch.Generator().manual_seed(3))
    b = m.generate(4, c, rng=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    _, lengths = m.generate(4, c, seq_len=5)
    assert lengths.tolist() == [5, 5, 5, 5]


def test_encode_decode_interpolate():
    m = tiny()
    x, _, L = batch()
    z = m.encode(x, L)
    assert z.shape == (6, m.cfg.summary_dim) and z.abs().max() <= 1
    assert m.decode(z, 9).shape == (6, 9, 8)
    xi, li = m.interpolate(z[0], z[1], n_steps=4)
    assert xi.shape[0] == 4 and len(li) == 4


@pytest.mark.parametrize("expand_type", EXPAND_TYPES)
def test_reconstruct_is_the_autoencoders_copy(expand_type):
    m = tiny(expand_type=expand_type).train()
    x, c, L = batch()
    m.eval()
    with torch.no_grad():
        x_recon, _ = m.forward_autoencoder(x, L, c)  # the training pass's bottleneck copy, one batch
        x_direct = m.decoder(m.encoder(x)) * (torch.arange(T)[None, :] < L[:, None]).unsqueeze(-1)
    m.train()
    for path, expected in (("bottleneck", x_recon), ("direct", x_direct)):
        got, lengths = m.reconstruct(x, L, c, path=path, chunk=2)  # length-sorted chunks of 2, cut shorter
        assert got.shape == x.shape and torch.equal(lengths, L)
        assert torch.allclose(got, expected, atol=1e-5), path
    assert m.training, "reconstruct must leave the model in the mode it found it"
    with pytest.raises(ValueError, match="unknown reconstruction path 'latent'.*bottleneck, direct"):
        m.reconstruct(x, L, c, path="latent")


def test_config_validation_and_presets():
    for name in PRESETS:
        run_config("latent_wgan", name)
    with pytest.raises(ConfigError, match="pool_type"):
        run_config("latent_wgan", pool_type="median")
    with pytest.raises(ConfigError, match="unknown config key 'lr_generater' \\(did you mean 'lr_generator'"):
        run_config("latent_wgan", lr_generater=1)
    with pytest.raises(ConfigError, match="integer"):
        run_config("latent_wgan", n_critic=2.5)
    run = run_config("latent_wgan", generator_hidden_dims=[8, 8], n_critic=3)
    assert run.arch.generator_hidden_dims == [8, 8] and run.train.n_critic == 3  # each key to its section
    assert isinstance(run.arch, LatentWGANArch) and not hasattr(run.arch, "n_critic")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        run_config("latent_wgan", "huge")
    with pytest.raises(ConfigError, match="unknown model family 'gan'"):
        run_config("gan")


def test_stochastic_decoder_draws_per_step_noise():
    m = tiny(decoder_noise_dim=3).eval()
    x, c, L = batch()
    _, losses = m.forward_autoencoder(x, L, c)
    assert losses["kl"] >= 0 and torch.isfinite(losses["total"])
    losses["total"].backward()  # the posterior, the prior and the noise map all learn
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.step_noise.parameters())
    z = torch.randn(4, m.cfg.summary_dim, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([12, 5, 9, 1])
    a = m.decode(z, lengths, torch.Generator().manual_seed(2))
    b = m.decode(z, lengths, torch.Generator().manual_seed(2))
    other = m.decode(z, lengths, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, other)  # seeded, and a summary no longer fixes the movement
    assert torch.all(a[torch.arange(T)[None, :] >= lengths[:, None]] == 0)
    plain = tiny().eval()
    assert not plain.stochastic and "kl" not in plain.forward_autoencoder(x, L, c)[1]
    assert torch.equal(plain.decode(z, lengths, torch.Generator().manual_seed(2)),
                       plain.decode(z, lengths, torch.Generator().manual_seed(3)))
    with pytest.raises(ConfigError, match="decoder_noise_dim must be >= 0"):
        LatentWGANArch(decoder_noise_dim=-1)
    with pytest.raises(ConfigError, match="path_from must be one of"):
        LatentWGANArch(path_from="speeds")


def test_mixture_decoder_draws_each_steps_residual_given_the_one_before():
    m = tiny(decoder_type="mixture", decoder_components=3)
    assert m.mixture and not tiny().mixture
    x, c, L = batch()
    _, losses = m.forward_autoencoder(x, L, c)
    assert torch.isfinite(losses["residual_nll"]) and torch.isfinite(losses["total"])
    losses["total"].backward()
    # the mixture learns from the likelihood; the likelihood sends nothing into the latent path
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.residual.parameters())
    plain = tiny()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("residual.")})
    plain_losses = plain.forward_autoencoder(x, L, c)[1]
    plain_losses["total"].backward()
    with_mixture = dict(m.named_parameters())
    for name, p in plain.named_parameters():  # the same gradients as without the mixture (none where none)
        q = with_mixture[name]
        assert (p.grad is None and q.grad is None) or torch.allclose(p.grad, q.grad, atol=1e-6), name
    m.eval()
    z = torch.randn(4, m.cfg.summary_dim, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([12, 5, 9, 1])
    a, b = (m.decode(z, lengths, torch.Generator().manual_seed(2)) for _ in range(2))
    other = m.decode(z, lengths, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, other)  # seeded draws
    assert a.abs().max() <= 1 and torch.all(a[torch.arange(T)[None, :] >= lengths[:, None]] == 0)
    mean = m.decoder(m.expander(z, T, lengths)) * (torch.arange(T)[None, :, None] < lengths[:, None, None])
    near = tiny(decoder_type="mixture", decoder_components=3, decoder_temperature=1e-6).eval()
    near.load_state_dict(m.state_dict())
    # at a vanishing σ the draws are the chosen components' means: a residual away from the decoder's mean
    drawn = near.decode(z, lengths, torch.Generator().manual_seed(2))
    assert not torch.allclose(drawn, mean, atol=1e-3)
    built = tiny(decoder_type="mixture", decoder_components=3, path_from="increments").eval()
    built.load_state_dict(m.state_dict())
    drawn = built.decode(z, lengths, torch.Generator().manual_seed(2))
    kept, moved = [0, 1, 7], [2, 3, 4, 5, 6]  # a path from increments: position and interval stay the mean
    assert torch.allclose(drawn[..., kept], mean[..., kept], atol=1e-6)
    assert not torch.allclose(drawn[..., moved], mean[..., moved], atol=1e-3)
    copy, _ = m.reconstruct(x, L, path="direct")
    assert copy.shape == x.shape and torch.all(copy[torch.arange(T)[None, :] >= L[:, None]] == 0)
    for bad, match in ((dict(decoder_type="flow"), "decoder_type must be one of"),
                       (dict(decoder_type="mixture", decoder_noise_dim=2), "set decoder_noise_dim to 0"),
                       (dict(decoder_components=0), "decoder_components must be >= 1"),
                       (dict(decoder_temperature=0), "decoder_temperature must be > 0")):
        with pytest.raises(ConfigError, match=match):
            LatentWGANArch(**bad)


def test_autoregressive_mixture_likelihood_matches_a_hand_computed_gaussian():
    from trajsynth.blocks.mixture_decoder import AutoregressiveMixture

    torch.manual_seed(0)
    mix = AutoregressiveMixture(context_dim=2, value_dim=3, hidden_dim=4, num_layers=1, components=1)
    context, v = torch.randn(2, 5, 2), torch.randn(2, 5, 3) * 0.1
    nll = mix.nll(context, v)  # (2, 5)
    prev = torch.cat([torch.zeros_like(v[:, :1]), v[:, :-1]], 1)
    y, _ = mix.lstm(torch.cat([context, prev], -1))
    _, mu, log_sigma = mix._mixture(y)  # one component: a diagonal Gaussian
    want = -torch.distributions.Normal(mu[..., 0, :], log_sigma[..., 0, :].exp()).log_prob(v).sum(-1)
    assert nll.shape == (2, 5) and torch.allclose(nll, want, atol=1e-5)


def test_directed_model_conditions_on_the_direction():
    from trajsynth.models.latent_wgan.model import end_directions

    m = tiny(directed=True).eval()
    assert m.directed and m.condition_head.net[-1].out_features == 3  # distance, cos, sin
    x, c, L = batch()
    d = end_directions(x, L)  # (B, 2) unit vectors
    assert torch.allclose(d.norm(dim=-1), torch.ones(len(x)), atol=1e-5)
    # the feature's end point, undone: its angle is the movement's direction
    end = x[torch.arange(len(x)), L - 1, :2].double()
    want = torch.atan2(torch.tan(end[:, 1] * torch.pi / 2), torch.tan(end[:, 0] * torch.pi / 2))
    assert torch.allclose(torch.atan2(d[:, 1], d[:, 0]).double(), want, atol=1e-4)
    _, losses = m.forward_autoencoder(x, L, c)  # the condition head reads distance and direction
    assert torch.isfinite(losses["condition"])
    with pytest.raises(RuntimeError, match="never trained"):
        m.generate(3, c[:3])  # no directions to draw from yet
    m.set_directions(x, L)
    assert m.angle_hist.sum() == len(x)
    X, lengths = m.generate(3, c[:3], rng=torch.Generator().manual_seed(0))
    assert X.shape == (3, T, 8) and lengths.min() >= 1
    ends = torch.tensor([[100.0, 0.0], [0.0, -50.0], [-3.0, 4.0]])
    a = m.generate(3, c[:3], rng=torch.Generator().manual_seed(0), targets=ends)[0]
    b = m.generate(3, c[:3], rng=torch.Generator().manual_seed(0), targets=-ends)[0]
    assert not torch.equal(a, b)  # the direction changes what is generated
    with pytest.raises(ValueError, match="directed model"):
        tiny().eval().generate(3, c[:3], targets=ends)
