"""The latent_diffusion family: schedules and samplers against an exact denoiser, guidance, EMA, the phases,
the adversarial loop's resume after a kill in iteration 2, a frozen autoencoder from --autoencoder, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import trajsynth
from trajsynth.cli.main import main
from trajsynth.config import ConfigError
from trajsynth.data.train_data import TrainData, load_train_data
from trajsynth.models.checkpoint import load_checkpoint, newest_checkpoint
from trajsynth.models.latent_diffusion import LatentDiffusionArch
from trajsynth.models.latent_diffusion.schedule import NoiseSchedule, make_betas
from trajsynth.models.registry import run_config
from trajsynth.training.loop import Trainer

MAX_LEN = 40  # of conftest's model_data_dir
LOOP = ["generate", "encode", "discriminator", "diffusion"]
PHASES = ["autoencoder", "diffusion"] + [f"loop{k}_{s}" for k in (1, 2, 3) for s in LOOP]
QUIET = ["--no-tensorboard", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(model_data_dir) -> TrainData:
    return load_train_data(model_data_dir)


def trainer(data, run_dir, **kw) -> Trainer:
    run = run_config("latent_diffusion", "tiny", max_seq_len=MAX_LEN, **kw)
    return Trainer(run, data, run_dir, tensorboard=False, progress=False, log_lines=False)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Trainer, Path]:
    tr = trainer(data, tmp_path_factory.mktemp("ld_run"))
    return tr, tr.train()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_config_is_checked():
    for bad, key in [(dict(schedule="quadratic"), "schedule"), (dict(sampler="euler"), "sampler"),
                     (dict(ddim_steps=0), "ddim_steps"), (dict(num_timesteps=10, ddim_steps=11), "ddim_steps"),
                     (dict(guidance_scale=-1.0), "guidance_scale"), (dict(autoencoder=[1]), "autoencoder")]:
        with pytest.raises(ConfigError, match=key):
            LatentDiffusionArch(**bad)
    for key, value in [("p_uncond", 1.0), ("ema_decay", 1.0), ("num_samples", 0), ("diffusion_epochs", 0),
                       ("lr_loop", 0.0), ("num_loops", -1)]:
        with pytest.raises(ConfigError, match=key):
            run_config("latent_diffusion", **{key: value})
    for ae, message in [({"summary_dim": 0}, "summary_dim"), ({"lr_autoencoder": 1.0}, "lr_autoencoder")]:
        with pytest.raises(ConfigError, match=f"autoencoder: .*{message}"):  # checked by the autoencoder's family
            LatentDiffusionArch(autoencoder=ae)
    with pytest.raises(ConfigError, match="autoencoder: unknown preset"):
        LatentDiffusionArch(autoencoder_preset="huge")


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_and_both_samplers_recover_a_point_mass(kind):
    """With the exact ε of data at one point μ, DDIM lands on μ and ancestral DDPM within its last step's noise."""
    betas = make_betas(kind, 200)
    assert (betas > 0).all() and (betas < 1).all()
    sched = NoiseSchedule(kind, 200)
    assert (sched.abar[1:] < sched.abar[:-1]).all() and sched.abar[-1] < 0.01
    mu = torch.tensor([0.5, -1.0, 2.0])
    exact = lambda x, t: (x - sched.abar[t].sqrt()[:, None] * mu) / (1 - sched.abar[t])[:, None].sqrt()
    x_T = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    for steps in (10, 50, 200):
        assert torch.allclose(sched.ddim(exact, x_T, steps), mu.expand(64, 3), atol=1e-4)
    ddpm = sched.ddpm(exact, x_T, torch.Generator().manual_seed(1))
    assert (ddpm - mu).abs().max() < 0.05
    x0, t, eps = torch.randn(8, 3), torch.randint(200, (8,)), torch.randn(8, 3)
    assert torch.allclose(sched.predict_x0(sched.q_sample(x0, t, eps), t, eps), x0, atol=1e-4)
    assert sched.ddim_times(4) == [199, 133, 66, 0]


def test_guidance_ema_and_condition_dropout(trained):
    m = trained[0].model
    x, t, c = torch.randn(5, m.latent_dim), torch.randint(m.schedule.T, (5,)), torch.randn(5, 3)
    drop, keep = torch.zeros(5, dtype=torch.bool), torch.ones(5, dtype=torch.bool)
    e_c, e_u = m.predict_eps(m.ema, x, t, c, keep), m.predict_eps(m.ema, x, t, c, drop)
    assert not torch.allclose(e_c, e_u), "the condition matters"
    assert torch.allclose(m.predict_eps(m.ema, x, t, torch.randn(5, 3), drop), e_u), "a dropped condition: null"
    T = torch.full((5,), m.schedule.T - 1)
    assert torch.allclose(m.predict_eps(m.ema, x, T, c), x, atol=1e-3), "exact where ᾱ_t = 0: ε = x_t"
    assert torch.allclose(m.guided_eps(m.ema, c, 1.0)(x, t), e_c, atol=1e-6)
    assert torch.allclose(m.guided_eps(m.ema, c, 3.0)(x, t), e_u + 3.0 * (e_c - e_u), atol=1e-5)
    before = [p.clone() for p in m.ema.parameters()]
    m.ema_update(0.9)
    after = list(m.ema.parameters())
    for b, a, p in zip(before, after, m.denoiser.parameters(), strict=True):
        assert torch.allclose(a, 0.9 * b + 0.1 * p, atol=1e-6)
    for b, a in zip(before, after, strict=True):
        a.data.copy_(b)


def test_phases_files_and_a_frozen_autoencoder(trained):
    tr, final = trained
    assert [p.name for p in tr.phases] == PHASES and tr.state["done"] == PHASES
    run = final.parent
    names = {p.name for p in run.iterdir()}
    for k in (1, 2):
        assert {f"loop{k}_{s}_final.pt" for s in LOOP} <= names
        assert {f"loop{k}_discriminator_best.pt", f"loop{k}_diffusion_best.pt", f"loop{k}_diffusion_latest.pt"} <= names
    ae = load_checkpoint(run / "autoencoder_final.pt")["model_state"]
    end = tr.model.state_dict()
    assert all(torch.equal(ae[k], end[k]) for k in ae if k.startswith("autoencoder.")), "stage 1 stays frozen"
    assert not torch.equal(ae["denoiser.inp.weight"], end["denoiser.inp.weight"])
    assert not torch.equal(tr.model.z_std, torch.ones_like(tr.model.z_std)), "the latents' scale was fitted"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    disc = [r for r in records if r.get("phase") == "loop2_discriminator" and "train_acc" in r]
    assert [r["iteration"] for r in disc] == [1, 2, 3], "one console line per epoch"
    diff = [r for r in records if r.get("phase") == "loop1_diffusion" and "noise_loss" in r]
    assert len(diff) == 4 and all(np.isfinite(list(r.values())[2:]).all() for r in diff)
    assert [("val_loss" in r, "sample_viability" in r) for r in diff] == [(False, False), (True, True)] * 2


def test_the_best_discriminator_goes_on_to_the_diffusion_step(trained):
    run = trained[1].parent
    best = load_checkpoint(run / "loop3_discriminator_best.pt")
    done = load_checkpoint(run / "loop3_discriminator_final.pt")
    key = "discriminator.body.0.weight"
    assert torch.equal(best["model_state"][key], done["model_state"][key])
    assert torch.equal(done["model_state"][key], trained[0].model.state_dict()[key]), "frozen in the diffusion step"
    loop = done["training"]["loop"]
    assert loop["best_loss"] == min(json.loads(r)["val_loss"] for r in (run / "metrics.jsonl").read_text().splitlines()
                                    if '"loop3_discriminator"' in r and "train_acc" in r)


class Killed(Exception):
    """Stands for a kill: the process stops inside a step, nothing after the last checkpoint is saved."""


def test_a_kill_inside_loop_iteration_2_resumes_to_the_same_weights(trained, data, tmp_path):
    tr = trainer(data, tmp_path / "killed")
    phase = next(p for p in tr.phases if p.name == "loop2_diffusion")
    epochs, step = [], phase.step

    def step_then_kill():
        if len(epochs) == 2:
            raise Killed
        epochs.append(1)
        return step()

    phase.step = step_then_kill
    with pytest.raises(Killed):
        tr.train()
    last = newest_checkpoint(tmp_path / "killed")
    assert last.name == "loop2_diffusion_latest.pt"
    assert load_checkpoint(last)["trainer_state"]["iteration"] == 2
    resumed = Trainer.from_checkpoint(last, data, tmp_path / "resumed", tensorboard=False, progress=False,
                                      log_lines=False)
    resumed.train()
    a, b = weights(trained[0].model), weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "identical weights after resume"


@pytest.mark.parametrize("name", ["loop2_generate_final.pt", "loop2_discriminator_latest.pt"])
def test_resume_from_other_loop_steps(trained, data, tmp_path, name):
    resumed = Trainer.from_checkpoint(trained[1].parent / name, data, tmp_path, tensorboard=False, progress=False,
                                      log_lines=False)
    resumed.train()
    a, b = weights(trained[0].model), weights(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_generation_sampler_and_ddpm(trained, data):
    model = trained[0].model
    C = data.train.C[:50]
    X, L = model.generate(50, C, rng=torch.Generator().manual_seed(3))
    assert X.shape == (50, MAX_LEN, 8) and int(L.min()) >= 1 and int(L.max()) <= MAX_LEN
    assert torch.all(X[torch.arange(MAX_LEN)[None] >= L[:, None]] == 0)
    again = model.generate(50, C, rng=torch.Generator().manual_seed(3))
    assert torch.equal(X, again[0]) and torch.equal(L, again[1])
    c = torch.cat([C[:8], torch.tensor([[1.0, 0.0]]).expand(8, 2)], -1)
    ddpm = model.sample_latents(c, torch.Generator().manual_seed(0), sampler="ddpm")
    ddim = model.sample_latents(c, torch.Generator().manual_seed(0), sampler="ddim", steps=5)
    assert ddpm.shape == ddim.shape == (8, model.latent_dim) and not torch.allclose(ddpm, ddim)
    s = trajsynth.load(trained[1])
    assert s.family == "latent_diffusion" and s.directed
    p = s.path((10, 20), (210, -80), seed=4)
    assert np.allclose(p[0, 1:], (10, 20)) and np.array_equal(p[-1, 1:], (210, -80))


def test_cli_with_a_frozen_autoencoder_and_its_errors(model_data_dir, tmp_path, capsys):
    d = str(model_data_dir)
    assert main(["train", d, "--family", "latent_wgan", "--preset", "tiny", "--until", "stage1", *QUIET,
                 "--set", "directed=true", "--out", str(tmp_path / "ae")]) == 0
    (ae_run,) = (tmp_path / "ae").iterdir()
    ae = load_checkpoint(ae_run / "stage1_final.pt")
    out = tmp_path / "ld"
    assert main(["train", d, "--family", "latent_diffusion", "--preset", "tiny", "--autoencoder",
                 str(ae_run / "stage1_final.pt"), "--ddim-steps", "7", "--set", "num_loops=1", *QUIET,
                 "--out", str(out)]) == 0
    final = load_checkpoint(next(out.glob("run_*/final.pt")))
    assert final["arch"]["ddim_steps"] == 7 and final["arch"]["autoencoder"]["summary_dim"] == 16
    assert final["trainer_state"]["done"][0] == "autoencoder" and final["trainer_state"]["complete"]
    assert all(torch.equal(v, final["model_state"][f"autoencoder.{k}"]) for k, v in ae["model_state"].items())
    assert not list(out.glob("run_*/autoencoder_*.pt")), "the given autoencoder is not trained again"
    capsys.readouterr()
    for argv, message in [
        (["--autoencoder", str(next(out.glob("run_*/final.pt")))], "holds a latent_diffusion model"),
        (["--autoencoder", str(ae_run / "stage1_iter10.pt")], "its autoencoder is unfinished"),
        (["--autoencoder", str(ae_run / "stage1_final.pt"), "--init", str(ae_run / "stage1_final.pt")], "not both"),
    ]:
        assert main(["train", d, "--family", "latent_diffusion", "--preset", "tiny", *argv, *QUIET,
                     "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["train", d, "--family", "timegan", "--autoencoder", str(ae_run / "stage1_final.pt"), *QUIET,
                 "--out", str(tmp_path / "bad")]) == 2
    assert "applies to --family latent_diffusion" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_ddim_steps_script_writes_one_copy_per_step_count(trained, tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "ddim_steps.py"
    run = lambda *a: subprocess.run([sys.executable, str(script), *map(str, a)], capture_output=True, text=True,
                                    timeout=120)
    r = run(trained[1], "--steps", "2", "5", "--out", tmp_path / "c", "--n", "32", "--repeats", "1")
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["traj_s"]) == {"2", "5"}
    src = load_checkpoint(trained[1])
    for k in (2, 5):
        copy = load_checkpoint(tmp_path / "c" / f"ddim{k}.pt")
        assert copy["arch"] == {**src["arch"], "ddim_steps": k}
        assert all(torch.equal(v, copy["model_state"][n]) for n, v in src["model_state"].items())
    again = run(trained[1], "--steps", "2", "--out", tmp_path / "c")
    assert again.returncode == 1 and "ddim2.pt already exists" in again.stderr


# ----- latents: sequence (the 1-D U-Net on the encoder's per-step latents) -----------------------------------
SEQ = dict(latents="sequence", num_loops=0)


def test_sequence_config_is_checked(data, tmp_path):
    for bad, key in [(dict(latents="pixels"), "latents"), (dict(unet_channels=[8]), "unet_channels"),
                     (dict(unet_channels=[8, 12], unet_groups=8), "multiples of unet_groups"),
                     (dict(unet_blocks=0), "unet_blocks")]:
        with pytest.raises(ConfigError, match=key):
            LatentDiffusionArch(**bad)
    with pytest.raises(ConfigError, match="summaries only: latents 'sequence' needs num_loops=0"):
        trainer(data, tmp_path, latents="sequence")


def test_unet_shapes_and_masking():
    from trajsynth.models.latent_diffusion.unet import UNet1d

    torch.manual_seed(0)
    net = UNet1d(latent_dim=5, condition_dim=3, channels=[8, 16, 16], blocks=2, embed_dim=16, groups=4)
    x, t, c = torch.randn(4, 21, 5), torch.randint(50, (4,)), torch.randn(4, 3)  # 21 steps: padded to 24 inside
    L = torch.tensor([21, 13, 4, 1])
    mask = torch.arange(21)[None] < L[:, None]
    out = net(x, t, c, mask=mask)
    assert out.shape == (4, 21, 5) and torch.all(out[~mask] == 0)
    garbage = torch.where(mask[..., None], x, torch.randn_like(x) * 100)  # anything past each length
    assert torch.allclose(net(garbage, t, c, mask=mask), out, atol=1e-5), "padding is never read"
    longer = net(torch.cat([x, torch.randn(4, 11, 5)], 1), t, c, mask=torch.cat([mask, torch.zeros(4, 11).bool()], 1))
    assert torch.allclose(longer[:, :21], out, atol=1e-5), "a row does not depend on how far the batch is padded"
    alone = net(x[1:2, :13], t[1:2], c[1:2], mask=mask[1:2, :13])
    assert torch.allclose(alone, out[1:2, :13], atol=1e-5)
    drop = net(x, t, c, keep=torch.zeros(4, dtype=torch.bool), mask=mask)
    assert torch.allclose(drop, net(x, t, torch.randn(4, 3), keep=torch.zeros(4, dtype=torch.bool), mask=mask))
    assert not torch.allclose(drop, out), "the condition matters, a dropped one is the null embedding"


@pytest.fixture(scope="module")
def seq_trained(data, tmp_path_factory) -> tuple[Trainer, Path]:
    tr = trainer(data, tmp_path_factory.mktemp("ld_seq"), **SEQ)
    return tr, tr.train()


def test_sequence_model_trains_and_generates(seq_trained, data):
    tr, final = seq_trained
    model = tr.model
    assert [p.name for p in tr.phases] == ["autoencoder", "diffusion"] and model.sequence
    assert model.latent_dim == 8 and type(model.denoiser).__name__ == "UNet1d"
    assert model.lengths.fitted and not torch.equal(model.z_std, torch.ones_like(model.z_std))
    C = data.train.C[:30]
    X, L = model.generate(30, C, rng=torch.Generator().manual_seed(3))
    assert X.shape == (30, MAX_LEN, 8) and int(L.min()) >= 1 and int(L.max()) <= MAX_LEN
    assert torch.all(X[torch.arange(MAX_LEN)[None] >= L[:, None]] == 0) and X.abs().sum() > 0
    again = model.generate(30, C, rng=torch.Generator().manual_seed(3))
    assert torch.equal(X, again[0]) and torch.equal(L, again[1])
    X7, L7 = model.generate(4, C[:4], rng=torch.Generator().manual_seed(0), seq_len=7)
    assert torch.all(L7 == 7) and torch.all(X7[:, 7:] == 0)
    c = torch.cat([C[:6], torch.tensor([[1.0, 0.0]]).expand(6, 2)], -1)
    lengths = torch.tensor([5, 9, 12, 1, 40, 20])
    for sampler in ("ddpm", "ddim"):
        z = model.sample_latents(c, torch.Generator().manual_seed(0), sampler=sampler, lengths=lengths)
        assert z.shape == (6, MAX_LEN, 8) and torch.all(z[torch.arange(MAX_LEN)[None] >= lengths[:, None]] == 0)
    s = trajsynth.load(final)
    p = s.path((10, 20), (210, -80), seed=4)
    assert np.allclose(p[0, 1:], (10, 20)) and np.array_equal(p[-1, 1:], (210, -80))


def test_sequence_checkpoint_and_guidance(seq_trained):
    tr, final = seq_trained
    ckpt = load_checkpoint(final)
    assert ckpt["arch"]["latents"] == "sequence" and ckpt["arch"]["unet_channels"] == [8, 16, 16]
    assert {"lengths.edges", "lengths.counts", "denoiser.inp.weight", "ema.middle.blocks.0.conv1.weight"} <= set(
        ckpt["model_state"])
    m = tr.model
    x, t, c = torch.randn(3, MAX_LEN, 8), torch.randint(m.schedule.T, (3,)), torch.randn(3, 3)
    mask = torch.arange(MAX_LEN)[None] < torch.tensor([[10], [40], [3]])
    keep, drop = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    e_c, e_u = m.predict_eps(m.ema, x, t, c, keep, mask), m.predict_eps(m.ema, x, t, c, drop, mask)
    assert torch.allclose(m.guided_eps(m.ema, c, 2.5, mask)(x, t), e_u + 2.5 * (e_c - e_u), atol=1e-5)


def test_sequence_run_resumes_to_the_same_weights(seq_trained, data, tmp_path):
    run = seq_trained[1].parent
    mid = sorted(run.glob("diffusion_iter*.pt"))
    assert mid, "a checkpoint inside the diffusion phase"
    resumed = Trainer.from_checkpoint(mid[0], data, tmp_path, tensorboard=False, progress=False, log_lines=False)
    resumed.train()
    a, b = weights(seq_trained[0].model), weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "identical weights after resume"


def test_cli_sequence_train_export_and_evaluate(model_data_dir, tmp_path, capsys):
    d, out = str(model_data_dir), tmp_path / "seq"
    assert main(["train", d, "--family", "latent_diffusion", "--preset", "tiny", "--set", "latents=sequence",
                 "--set", "num_loops=0", *QUIET, "--out", str(out)]) == 0
    final = next(out.glob("run_*/final.pt"))
    assert main(["export-samples", str(final), "--n", "12", "--out", str(tmp_path / "gen.npz")]) == 0
    assert main(["evaluate", str(final), d, "--n", "40", "--repeats", "1", "--quick", "--out",
                 str(tmp_path / "report")]) == 0
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert 0 <= rep["disc_timegan"] <= 0.5 and 0 <= rep["coverage"] <= 1
    capsys.readouterr()
    assert main(["train", d, "--family", "latent_diffusion", "--preset", "tiny", "--set", "latents=sequence",
                 *QUIET, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "needs num_loops=0" in err and len(err.strip().splitlines()) == 1, err
