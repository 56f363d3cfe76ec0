"""The tcn_vae family: config checks, the TCN's causality, gradient reversal, the design's schedule, training on
labelled data, early stopping with the best weights, exact resume, class-conditional generation, the .ts reader
and series data directories, and every CLI mode (train, resume, generate, encode, evaluate)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from trajsynth.blocks.tcn import TCN, reverse_gradient
from trajsynth.cli.main import main
from trajsynth.config import ConfigError
from trajsynth.data.loading import TrajectoryDataset
from trajsynth.data.train_data import TrainData, load_train_data
from trajsynth.data.ts_format import TsFormatError, read_ts
from trajsynth.data.validate import validate_data_dir
from trajsynth.models.registry import run_config
from trajsynth.models.tcn_vae import TCNVAEArch
from trajsynth.training.loop import Trainer

MAX_LEN = 40  # of conftest's model_data_dir
CLASSES = ("Alpha", "Beta", "Gamma")


pytestmark = pytest.mark.usefixtures("one_thread")


def labelled(ds: TrajectoryDataset) -> TrajectoryDataset:
    """The dataset with activity = the condition's tercile (readable from the sequence) and domain = index parity."""
    c = ds.C[:, 0]
    act = torch.bucketize(c, torch.quantile(c, torch.tensor([1 / 3, 2 / 3])))
    return TrajectoryDataset(ds.X.numpy(), c.numpy(), ds.L.numpy(), act.numpy(), (torch.arange(len(c)) % 2).numpy())


@pytest.fixture(scope="module")
def data(model_data_dir) -> TrainData:
    d = load_train_data(model_data_dir)
    return TrainData(labelled(d.train), labelled(d.val), d.normalization, d.data_dir, d.event_clock,
                     {"activity": list(CLASSES), "domain": ["one", "two"]})


def trainer(data, run_dir, **kw) -> Trainer:
    run = run_config("tcn_vae", "tiny", max_seq_len=MAX_LEN, **kw)
    return Trainer(run, data, run_dir, tensorboard=False, progress=False, log_lines=False)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> tuple[Trainer, Path]:
    tr = trainer(data, tmp_path_factory.mktemp("tcn_vae_run"), patience=0)
    return tr, tr.train()


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_config_is_checked():
    for bad, key in [(dict(channels=[]), "channels"), (dict(dropout=1.0), "dropout"),
                     (dict(latent_dim=0), "latent_dim"), (dict(num_domains=-1), "num_domains")]:
        with pytest.raises(ConfigError, match=key):
            TCNVAEArch(**bad)
    for key in ("epochs", "beta", "lambda_dom", "patience", "lr", "grl_epochs"):
        with pytest.raises(ConfigError, match=key):
            run_config("tcn_vae", **{key: -1})
    over = run_config("tcn_vae", "overnight").train
    assert (over.beta, over.lambda_act, over.lambda_dom, over.lr, over.grad_clip, over.patience) == \
        (0.4, 2.5, 0.05, 3e-4, 0.8, 50)
    d = run_config("tcn_vae").train
    assert (d.beta, d.lambda_act, d.lambda_dom, d.label_smoothing, d.weight_decay) == (1.0, 1.0, 0.1, 0.1, 1e-4)


def test_tcn_is_causal_and_reversal_flips_the_gradient():
    net = TCN(3, [4, 4, 4], kernel=3, dropout=0.0).eval()
    x = torch.randn(2, 20, 3)
    y = x.clone()
    y[:, 12:] += 5.0  # a change from step 12 on
    a, b = net(x), net(y)
    assert torch.equal(a[:, :12], b[:, :12]) and not torch.allclose(a[:, 12:], b[:, 12:])
    v = torch.ones(4, requires_grad=True)
    (reverse_gradient(v, 0.3) * torch.arange(4.0)).sum().backward()
    assert torch.allclose(v.grad, -0.3 * torch.arange(4.0))


def test_alpha_and_beta_follow_the_design(data, tmp_path):
    tr = trainer(data, tmp_path, beta_warmup_epochs=2, grl_epochs=10)
    t = tr.training
    n = t.per_epoch
    expected = {0: 0.0, 5 * n: 2 / (1 + math.exp(-5)) - 1, 10 * n: 2 / (1 + math.exp(-10)) - 1, 30 * n: None}
    for it, alpha in expected.items():
        t.it = it
        a, b = t.weights_now()
        assert a == pytest.approx(alpha if alpha is not None else expected[10 * n])
    t.it = 0
    assert t.weights_now()[1] == pytest.approx(tr.run.train.beta / (2 * n))  # β warms up over two epochs
    assert tr.run.train.eval_interval == n, "validation after every epoch"


def test_mmd_penalty_joins_the_loss(data, tmp_path):
    off = trainer(data, tmp_path / "off")
    on = trainer(data, tmp_path / "on", lambda_mmd=5.0)
    on.model.load_state_dict(off.model.state_dict())
    logs = [t.training.step() for t in (off, on)]
    assert logs[0]["mmd"] == 0.0, "off by default: the design's loss"
    assert logs[1]["mmd"] != 0.0 and math.isfinite(logs[1]["mmd"])


def test_trains_on_labelled_data_and_generates_per_activity(trained):
    tr, final = trained
    assert tr.state["done"] == ["fit"] and tr.state["iteration"] == 0
    cfg = tr.model.cfg
    assert (cfg.feature_dim, cfg.num_activities, cfg.num_domains) == (8, 3, 2), "sizes resolved from the data"
    assert "num_activities: 3" in (final.parent / "config.yaml").read_text()
    records = [json.loads(line) for line in (final.parent / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_act_acc" in r]
    assert len(evals) == 3 and all(np.isfinite(r["val_loss"]) for r in evals), "one validation per epoch"
    steps = [r for r in records if "vae" in r]
    assert steps and all(np.isfinite([r["vae"], r["activity"], r["domain"], r["kl"]]).all() for r in steps)
    line = tr.training.line(tr.training.per_epoch + 2, steps[-1], 3.0)
    assert line.startswith("Epoch: 2, Batch: 2, VAE Loss: ") and "Activity Loss:" in line and "Domain Loss:" in line
    m = tr.model
    assert m.pair_count.sum() == len(tr.data.train) and not torch.equal(m.class_mu, torch.zeros_like(m.class_mu))
    g = torch.Generator().manual_seed(0)
    X, L = m.generate(6, torch.zeros(6, 1), rng=g, activity=2, domain=1)
    assert X.shape == (6, MAX_LEN, 8) and X.abs().max() <= 1 and int(L.min()) >= 1
    assert torch.all(X[torch.arange(MAX_LEN)[None, :] >= L[:, None]] == 0)
    a, d = m.draw_labels(400, None, None, torch.Generator().manual_seed(1))
    assert set(a.tolist()) == {0, 1, 2} and set(d.tolist()) == {0, 1}
    assert m.draw_labels(5, [0, 1, 2, 0, 1], 1, None)[0].tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match=r"activity must lie in \[0, 3\)"):
        m.generate(2, torch.zeros(2, 1), activity=3)


def test_early_stopping_keeps_the_best_weights(data, tmp_path):
    tr = trainer(data, tmp_path, epochs=8, patience=1, lr=1e-9)  # nothing improves after the first epoch
    final = tr.train()
    t = tr.training
    n = t.per_epoch  # validation at the end of epoch 2 runs out of patience; the loop stops at its next log line
    assert 2 * n < tr.state["converged_at"]["fit"] <= 2 * n + tr.run.train.log_interval < 8 * n
    assert t.best["epoch"] == 1 and t.best["stale"] >= 1  # (the final validation after the stop counts too)
    state = torch.load(final, weights_only=True)["model_state"]
    best = t.best["state"]
    assert all(torch.equal(state[k], best[k]) for k in best if k.startswith("encoder")), "final.pt holds the best"


def test_a_tied_accuracy_keeps_the_weights_of_a_clearly_lower_loss(data, tmp_path):
    t = trainer(data, tmp_path).training
    for acc, loss, improves in [(0.9, 10.0, True), (0.9, 9.995, False), (0.9, 9.0, True), (0.8, 1.0, False),
                                (0.95, 50.0, True)]:
        ev = {"val_act_acc": acc, "val_loss": loss}
        stale = t.best["stale"]
        t.on_evaluate(ev)
        assert (t.best["stale"] == 0) if improves else (t.best["stale"] == stale + 1), ev
    assert (t.best["acc"], t.best["loss"]) == (0.95, 50.0)


def test_resume_mid_run_matches_an_uninterrupted_run(trained, data, tmp_path):
    full, final = trained
    mid = final.parent / "fit_iter3.pt"
    resumed = Trainer.from_checkpoint(mid, data, tmp_path, tensorboard=False, progress=False, log_lines=False)
    assert resumed.state["iteration"] == 3
    resumed.train()
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "identical weights after resume"


# --------------------------------------------------------------------------- .ts files and series data

def ts_text(n_per_class: int = 4, length: int = 12, seed: int = 0, header_classes=CLASSES) -> str:
    rng = np.random.default_rng(seed)
    lines = ["# a comment", "@problemName Toy", "@univariate false", "@dimensions 2", "@equalLength true",
             f"@seriesLength {length}", f"@classLabel true {' '.join(header_classes)}", "@data"]
    for k, name in enumerate(CLASSES):
        for _ in range(n_per_class):
            t = np.arange(length)
            dims = [np.sin(t * (k + 1) / 3 + rng.uniform(0, 6)) * (k + 1), rng.normal(0, 0.1, length) + k]
            lines.append(":".join(",".join(f"{v:.5f}" for v in d) for d in dims) + f":{name}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ts_dir(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("ts_raw")
    (raw / "Toy_TRAIN.ts").write_text(ts_text(seed=1))
    (raw / "Toy_TEST.ts").write_text(ts_text(n_per_class=2, seed=2))
    out = raw.parent / "toy_data"
    assert main(["preprocess", "--format", "ts", str(raw), str(out), "--dataset", "Toy"]) == 0
    return out


def test_ts_reader_and_its_errors(tmp_path):
    path = tmp_path / "a.ts"
    path.write_text(ts_text(n_per_class=2, length=7))
    cases = read_ts(path)
    assert cases.X.shape == (6, 7, 2) and cases.class_names == list(CLASSES) and set(cases.L) == {7}
    assert cases.labels.tolist() == ["Alpha", "Alpha", "Beta", "Beta", "Gamma", "Gamma"]
    bad = ts_text(n_per_class=1).splitlines()
    for change, words in [(lambda ls: ls[:-3] + [ls[-3].replace(",", ",x", 1)] + ls[-2:], r"a.ts:9: a value"),
                          (lambda ls: ls[:-1] + ["1,2:Gamma"], r"a.ts:11: 1 dimension\(s\), the header says 2"),
                          (lambda ls: ls[:-1] + [ls[-1].replace("Gamma", "Delta")], r"\['Delta'\] are not declared"),
                          (lambda ls: [x for x in ls if x != "@data"], r"a.ts:8: expected a @key header line")]:
        path.write_text("\n".join(change(bad)) + "\n")
        with pytest.raises(TsFormatError, match=words):
            read_ts(path)


def test_series_data_directory(ts_dir, capsys):
    report = validate_data_dir(ts_dir)
    assert report.ok, report.errors
    meta = json.loads((ts_dir / "meta.json").read_text())
    assert meta["kind"] == "series" and meta["activity_names"] == list(CLASSES) and meta["counts"]["test"] == 6
    d = load_train_data(ts_dir)
    assert d.train.X.shape[1:] == (12, 2) and d.train.X.abs().max() <= 1 and d.normalization == {}
    assert sorted(torch.bincount(d.val.A).tolist()) == [1, 1, 1], "validation stratified by class"
    assert d.labels == {"activity": list(CLASSES)}
    np.save(ts_dir.parent / "bad_labels.npy", np.array([0, 9]))
    (ts_dir.parent / "copy").mkdir()
    for f in ts_dir.iterdir():
        (ts_dir.parent / "copy" / f.name).write_bytes(f.read_bytes())
    np.save(ts_dir.parent / "copy" / "A_test.npy", np.full(6, 7, np.int64))
    assert any("A_test.npy: label 7 but meta.json names only 3" in e for e in validate_data_dir(
        ts_dir.parent / "copy").errors)
    assert main(["preprocess", "--format", "ts", str(ts_dir), str(ts_dir.parent / "x")]) == 2
    assert "--format ts needs --dataset" in capsys.readouterr().err


def test_every_cli_mode_on_series(ts_dir, tmp_path, capsys):
    """train, resume, encode, and the sets `evaluate` scores on a labelled series directory."""
    from trajsynth.evaluation.sources import activity_accuracy, evaluation_inputs

    base, d, quiet = tmp_path / "runs", str(ts_dir), ["--no-tensorboard", "--quiet"]
    assert main(["train", d, "--family", "tcn_vae", "--preset", "tiny", "--set", "epochs=4", "--set", "batch_size=4",
                 *quiet, "--out", str(base)]) == 0
    (run,) = base.iterdir()
    assert main(["resume", str(run / "fit_iter3.pt"), *quiet, "--out", str(base)]) == 0
    final = run / "final.pt"
    assert main(["encode", str(final), d, "--out", str(tmp_path / "z.npz")]) == 0
    z = np.load(tmp_path / "z.npz")
    assert z["z"].shape == (6, 8) and z["activity"].shape == (6,) and z["activity_pred"].shape == (6,)
    assert "activity accuracy from z" in capsys.readouterr().out
    assert main(["encode", str(final), d, "--out", str(tmp_path / "z.npz")]) == 2, "never overwrites"
    acc = activity_accuracy(final, d, "test")
    assert acc == pytest.approx(float((z["activity_pred"] == z["activity"]).mean()))
    assert main(["generate", str(final)]) == 2
    assert "trained on sensor series" in capsys.readouterr().err
    e = evaluation_inputs(d, "test", None, 0, checkpoint=final)
    assert e.fake.X.shape == e.real.X.shape == (6, 12, 2) and e.fake.paths is None and e.embed is not None


@pytest.mark.slow
def test_evaluate_reports_activity_accuracy(tmp_path):
    raw, ts_dir, base = tmp_path / "raw", tmp_path / "data", tmp_path / "runs"
    raw.mkdir()
    (raw / "Toy_TRAIN.ts").write_text(ts_text(n_per_class=5, seed=1))
    (raw / "Toy_TEST.ts").write_text(ts_text(n_per_class=5, seed=2))  # the post-hoc classifiers need 10 a set
    assert main(["preprocess", "--format", "ts", str(raw), str(ts_dir), "--dataset", "Toy"]) == 0
    assert main(["train", str(ts_dir), "--family", "tcn_vae", "--preset", "tiny", "--no-tensorboard", "--quiet",
                 "--out", str(base)]) == 0
    final = next(base.glob("run_*/final.pt"))
    assert main(["evaluate", str(final), str(ts_dir), "--repeats", "1", "--quick", "--workers", "1",
                 "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert 0 <= report["activity_acc"] <= 1 and "disc_strong" in report


def test_mouse_directories_merge_with_activity_and_domain_labels(tmp_path, capsys):
    from conftest import write_raw_dir

    a, b = write_raw_dir(tmp_path / "setA", seed=3), write_raw_dir(tmp_path / "setB", seed=4)
    out = tmp_path / "merged"
    assert main(["preprocess", str(a), str(b), str(out), "--quiet", "--workers", "1"]) == 0
    assert "labels: activity Left_click; domain setA, setB" in capsys.readouterr().out
    assert validate_data_dir(out).ok
    meta = json.loads((out / "meta.json").read_text())
    users = [u for s in ("train", "val", "test") for u in meta["users"][s]]
    assert len(users) == 12 and {u.split(":")[0] for u in users} == {"setA", "setB"}, "users of each set apart"
    for split in ("train", "val", "test"):  # each data set split by its own users
        assert {u.split(":")[0] for u in meta["users"][split]} == {"setA", "setB"}, split
    d = load_train_data(out)
    assert d.labels == {"activity": ["Left_click"], "domain": ["setA", "setB"]}
    assert set(d.train.D.tolist()) <= {0, 1} and d.train.A.max() == 0 and len(d.train.D) == len(d.train.L)
    assert main(["preprocess", str(a), str(a), str(tmp_path / "x"), "--quiet"]) == 2
    assert "must have different names" in capsys.readouterr().err
