"""Hyperparameter search: real Optuna studies on real storages (SQLite, journal file), tiny trials."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="the tune extra (optuna) is not installed")

from trajsynth.cli.main import main  # noqa: E402
from trajsynth.config import ConfigError  # noqa: E402
from trajsynth.models.checkpoint import load_checkpoint  # noqa: E402
from trajsynth.models.registry import run_config  # noqa: E402
from trajsynth.tuning import OptunaConfig, PhaseObjective, StudyManager  # noqa: E402
from trajsynth.tuning.space import baselines, check_space, decode, default_space, load_space  # noqa: E402
from trajsynth.tuning.storage import open_storage  # noqa: E402

TINY1 = ["--preset", "tiny", "--set", "stage1_iterations=20", "--set", "eval_interval=10", "--seed", "0"]
TINY2 = ["--preset", "tiny", "--set", "stage2_iterations=40", "--set", "eval_interval=10", "--seed", "0",
         "--disc-iterations", "50", "--eval-samples", "200", "--min-coverage", "0", "--collapse-coverage", "0"]


def _load(out: Path, name: str):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'optuna.db'}")


def _states(study) -> list[str]:
    return [t.state.name for t in study.trials]


# --------------------------------------------------------------------------- search spaces


def test_default_spaces_give_valid_configs_and_hold_the_baselines():
    base = run_config("latent_wgan", "default")
    for phase in ("stage1", "stage2"):
        space = default_space("latent_wgan", phase)
        check_space(space, base, phase)
        for baseline in baselines("latent_wgan", phase):
            assert all(space[k].contains(v) for k, v in baseline.items()), baseline
    assert decode({"generator_hidden_dims": "512x256", "n_critic": 3}) == {"generator_hidden_dims": [512, 256],
                                                                           "n_critic": 3}


def test_space_file_replaces_removes_and_rejects(tmp_path):
    f = tmp_path / "space.yaml"
    f.write_text("stage1:\n  latent_dim: {type: categorical, choices: [16, 24]}\n  lr_schedule: null\n"
                 "stage2:\n  critic_hidden_dims: {type: categorical, choices: [[64, 64]]}\n")
    s1, s2 = load_space("latent_wgan", "stage1", str(f)), load_space("latent_wgan", "stage2", str(f))
    assert s1["latent_dim"].choices == (16, 24) and "lr_schedule" not in s1
    assert s2["critic_hidden_dims"].choices == ("64x64",)
    f.write_text("stage1:\n  latent_dims: {type: categorical, choices: [16]}\n")
    with pytest.raises(ConfigError, match=r"space.yaml: unknown stage1 parameter 'latent_dims'"):
        load_space("latent_wgan", "stage1", str(f))
    f.write_text("stage2:\n  latent_dim: {type: categorical, choices: [16]}\n")  # stage-1 only
    with pytest.raises(ConfigError, match="unknown stage2 parameter 'latent_dim'"):
        load_space("latent_wgan", "stage2", str(f))
    f.write_text("stage1:\n  lr_autoencoder: {type: float, low: 0, high: 1, log: true}\n")
    with pytest.raises(ConfigError, match="0 < low"):
        load_space("latent_wgan", "stage1", str(f))
    f.write_text("stage1:\n  pool_type: {type: categorical, choices: [attention, median]}\n")
    with pytest.raises(ConfigError, match="pool_type='median' is not a valid setting"):
        check_space(load_space("latent_wgan", "stage1", str(f)), run_config("latent_wgan"), "space")


# --------------------------------------------------------------------------- storage


def test_storage_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="folder .* does not exist"):
        open_storage(f"sqlite:///{tmp_path}/missing/optuna.db")
    with pytest.raises(ConfigError, match="neither a database URL"):
        open_storage("optuna.db")
    with pytest.raises(ConfigError, match="does not exist"):
        open_storage(str(tmp_path / "none.log"), create=False)
    with pytest.raises(ConfigError) as err:  # no server on port 1 (or no driver): either way one clear line
        open_storage("postgresql://user:secret@127.0.0.1:1/db")
    assert "secret" not in str(err.value) and "storage postgresql://user:***@127.0.0.1:1/db" in str(err.value)


def test_journal_storage_holds_a_study(tmp_path):
    storage = open_storage(str(tmp_path / "study.log"))
    study = optuna.create_study(study_name="j", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="j", storage=open_storage(f"journal:{tmp_path / 'study.log'}",
                                                                   create=False))
    assert len(again.trials) == 3


# --------------------------------------------------------------------------- CLI: studies end to end


def test_stage1_study_resumes_then_stage2_prunes_then_analysis(tmp_path, capsys):
    out = tmp_path / "tune"
    cmd = ["tune", "--stage", "1", "--n-trials", "3", "--out", str(out), *TINY1]
    assert main(cmd) == 0
    assert main(cmd) == 0  # the same command again resumes the study
    study = _load(out, "trajsynth_stage1")
    assert [t.number for t in study.trials] == list(range(6)) and set(_states(study)) == {"COMPLETE"}
    assert study.trials[0].params["latent_dim"] == 48  # the default preset's configuration was queued first
    ckpt = load_checkpoint(study.trials[0].user_attrs["checkpoint"])
    assert ckpt["trainer_state"]["done"] == ["stage1"] and ckpt["arch"]["latent_dim"] == 48
    assert Path(study.trials[0].user_attrs["checkpoint"]) == out / "checkpoints/optuna/stage1_trial_0/best_model.pt"
    assert sorted(p.name for p in (out / "checkpoints/optuna/stage1_trial_0").glob("*.pt")) == ["best_model.pt"]
    assert "trial 5 (stage1) done" in (out / "optuna.log").read_text()

    s1 = str(out / "checkpoints/optuna/stage1_trial_1/best_model.pt")
    cmd2 = ["tune", "--stage", "2", "--n-trials", "8", "--out", str(out), "--mode", "single",
            "--stage1-checkpoint", s1, *TINY2]
    assert main(cmd2) == 0
    s2 = _load(out, "trajsynth_stage2")
    states = _states(s2)
    assert "PRUNED" in states and "COMPLETE" in states and "FAIL" not in states, states
    done = [t for t in s2.trials if t.state.name == "COMPLETE"]
    assert all(0 <= t.user_attrs["disc"] <= 0.5 and Path(t.user_attrs["checkpoint"]).is_file() for t in done)
    assert load_checkpoint(done[0].user_attrs["checkpoint"])["trainer_state"]["done"] == ["stage1", "stage2"]

    capsys.readouterr()
    assert main(["tune", "--analyze", "--study-name", "trajsynth_stage1", "--out", str(out)]) == 0
    assert "Pareto front" in capsys.readouterr().out
    folder = out / "analysis" / "trajsynth_stage1"
    for name in ("summary.md", "trials.csv", "pareto_front.html", "pareto_front.png", "plotly.min.js",
                 "optimization_history_recon_mse.html", "param_importances_recon_mse.html"):
        assert (folder / name).stat().st_size > 0, name
    assert len((folder / "trials.csv").read_text().strip().splitlines()) == 7
    assert main(["tune", "--analyze", "--study-name", "trajsynth_stage2", "--out", str(out)]) == 0
    assert (out / "analysis" / "trajsynth_stage2" / "intermediate_values.html").exists()


def test_a_crashing_trial_is_failed_and_the_study_goes_on(tmp_path):
    class Flaky(PhaseObjective):
        def make_trainer(self, run, run_dir):
            if run_dir.name.endswith("_1"):
                raise RuntimeError("injected fault")
            return super().make_trainer(run, run_dir)

    settings = OptunaConfig(out_dir=str(tmp_path), preset="tiny", overrides={"stage1_iterations": 10}, seed=0)
    manager = StudyManager(settings)
    study = manager.optimize(Flaky(settings, manager.load_data(), "stage1"), 3)
    assert _states(study) == ["COMPLETE", "FAIL", "COMPLETE"]


# --------------------------------------------------------------------------- bad input: before any trial


@pytest.mark.parametrize("extra, message", [
    (["--stage", "2"], "--phase stage2 needs --init CKPT"),
    (["--phase", "stage3"], "latent_wgan has no phase 'stage3'"),
    (["--storage", "sqlite:////nonexistent-dir/x.db"], "folder /nonexistent-dir does not exist"),
    (["--set", "pool_type=median"], "pool_type must be one of"),
    (["--space", "SPACE"], "unknown stage1 parameter 'nonsense'"),
])
def test_bad_input_fails_before_any_trial(tmp_path, capsys, extra, message):
    space = tmp_path / "space.yaml"
    space.write_text("stage1:\n  nonsense: {type: int, low: 1, high: 2}\n")
    extra = [str(space) if e == "SPACE" else e for e in extra]
    out = tmp_path / "out"
    assert main(["tune", "--n-trials", "2", "--out", str(out), *TINY1, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "checkpoints").exists()


def test_without_optuna_the_command_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if it were not installed
    assert main(["tune", "--n-trials", "1", "--out", str(tmp_path)]) == 2
    assert "pip install 'trajsynth[tune]'" in capsys.readouterr().err


def test_resuming_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tune", "--n-trials", "1", "--out", str(out), *TINY1]) == 0
    assert main(["tune", "--n-trials", "1", "--out", str(out), "--mode", "single", *TINY1]) == 2
    assert "was created with other settings (mode: study has 'pareto'" in capsys.readouterr().err
    assert main(["tune", "--n-trials", "1", "--out", str(out), "--study-name", "other", *TINY1]) == 2
    assert "holds trials of study 'trajsynth_stage1', not 'other'" in capsys.readouterr().err
    assert main(["tune", "--analyze", "--study-name", "nope", "--out", str(out)]) == 2
    assert "no study 'nope'" in capsys.readouterr().err


# --------------------------------------------------------------------------- several workers


@pytest.mark.parametrize("storage", ["sqlite", "journal"])
def test_two_workers_share_one_study(tmp_path, storage):
    url = f"sqlite:///{tmp_path / 'shared.db'}" if storage == "sqlite" else f"journal:{tmp_path / 'shared.log'}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "trajsynth", "tune", "--n-trials", "3", "--storage", url,
                               "--study-name", "shared", "--out", str(tmp_path / f"worker{w}"), "--preset", "tiny",
                               "--set", "stage1_iterations=20"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for w in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    study = optuna.load_study(study_name="shared", storage=open_storage(url, create=False))
    numbers = sorted(t.number for t in study.trials)
    assert numbers == list(range(6)) and set(_states(study)) == {"COMPLETE"}
    folders = sorted(p.name for w in range(2) for p in (tmp_path / f"worker{w}/checkpoints/optuna").iterdir())
    assert folders == sorted(f"stage1_trial_{n}" for n in range(6))  # each trial ran once, in one worker
    # The two baselines (both with lr 1e-3, which TPE cannot draw exactly) were queued once, by the creator.
    assert sorted(t.params["latent_dim"] for t in study.trials if t.params["lr_autoencoder"] == 1e-3) == [32, 48]


def _take_queued(task: tuple) -> list[int]:
    """One process: wait for the common start, then take six trials of study ``name``."""
    import time

    url, name, start = task
    study = optuna.load_study(study_name=name, storage=open_storage(url, create=False))
    while time.time() < start:  # spin, not sleep: the four must ask within the same milliseconds
        pass
    return [study.ask().number for _ in range(6)]


def test_each_queued_trial_is_taken_by_one_process(tmp_path):
    """Four processes at once on one SQLite file: none may take a queued trial another has taken.

    Deferred SQLite transactions let two of them read the same trial as waiting; each process then
    ran it (a trial folder that already existed, and a trial finished twice). Three rounds, since a
    race does not show every time."""
    import multiprocessing
    import time
    import warnings

    url = f"sqlite:///{tmp_path / 'race.db'}"
    with warnings.catch_warnings(), multiprocessing.get_context("spawn").Pool(4) as pool:
        warnings.simplefilter("ignore")  # heartbeats outside optimize()
        for round_ in range(3):
            study = optuna.create_study(study_name=f"race{round_}", storage=open_storage(url))
            for i in range(16):
                study.enqueue_trial({"x": float(i)})
            start = time.time() + (3 if round_ == 0 else 1)  # every process has started by then
            taken = pool.map(_take_queued, [(url, f"race{round_}", start)] * 4)
            numbers = sorted(n for got in taken for n in got)
            assert numbers == list(range(24)), (round_, taken)


@pytest.mark.slow  # about 30 s: waits for heartbeats to go stale (CI runs it)
def test_a_killed_workers_trial_is_failed_and_run_again(tmp_path):
    """No lost trials: a worker killed mid-trial stops sending heartbeats; the next worker fails its trial
    and runs the same parameters again."""
    import signal
    import time

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    args = [sys.executable, "-m", "trajsynth", "tune", "--n-trials", "1", "--storage", url, "--study-name", "hb",
            "--preset", "tiny", "--set", "stage1_iterations=400", "--heartbeat", "1", "--no-baselines", "--seed", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    victim = subprocess.Popen([*args, "--out", str(tmp_path / "a")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until its trial runs, then kill the worker without warning
        if (tmp_path / "a/checkpoints/optuna/stage1_trial_0/config.yaml").exists():
            break
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(4)  # more than 3 heartbeats of silence
    done = subprocess.run([*args, "--out", str(tmp_path / "b")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="hb", storage=url)
    assert _states(study) == ["FAIL", "COMPLETE"]
    assert study.trials[1].params == study.trials[0].params
    assert study.trials[1].system_attrs.get("failed_trial") == 0


def test_both_stages_chain_from_the_best_stage1_trial(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tune", "--stage", "both", "--n-trials", "2", "--out", str(out), "--study-name", "pipe",
                 "--preset", "tiny", "--set", "stage1_iterations=20", "--set", "stage2_iterations=20",
                 "--disc-iterations", "50", "--eval-samples", "200", "--min-coverage", "0", "--collapse-coverage", "0",
                 "--seed", "0"]) == 0
    s1 = _load(out, "pipe_stage1")
    best = min(s1.best_trials, key=lambda t: t.values[0])
    s2 = _load(out, f"pipe_stage2_from_stage1_trial{best.number}")
    assert s2.user_attrs["identity"]["init_checkpoint"] == best.user_attrs["checkpoint"]
    assert _states(s1) == _states(s2) == ["COMPLETE", "COMPLETE"]
    assert f"stage2 starts from stage1 trial {best.number}" in capsys.readouterr().out


def test_stage2_refuses_a_checkpoint_of_other_data(tmp_path, small_data_dir, capsys):
    out = tmp_path / "out"
    assert main(["tune", "--n-trials", "1", "--out", str(out), *TINY1]) == 0
    ckpt = out / "checkpoints/optuna/stage1_trial_0/best_model.pt"
    assert main(["tune", "--stage", "2", "--n-trials", "1", "--out", str(out), "--stage1-checkpoint", str(ckpt),
                 "--data-dir", str(small_data_dir), *TINY2]) == 2
    assert "trained on" in capsys.readouterr().err
    assert not list((out / "checkpoints/optuna").glob("stage2_*"))


def test_collapse_guard_stops_a_pareto_stage2_trial(tmp_path):
    out = tmp_path / "out"
    assert main(["tune", "--n-trials", "1", "--out", str(out), *TINY1]) == 0
    ckpt = out / "checkpoints/optuna/stage1_trial_0/best_model.pt"
    guard = ["--preset", "tiny", "--set", "stage2_iterations=40", "--set", "eval_interval=10",
             "--collapse-coverage", "1.0", "--min-coverage", "0.5"]  # nothing covers everything: "collapsed"
    assert main(["tune", "--stage", "2", "--n-trials", "2", "--out", str(out), "--stage1-checkpoint", str(ckpt),
                 "--no-baselines", *guard]) == 0
    study = _load(out, "trajsynth_stage2")
    assert _states(study) == ["PRUNED", "PRUNED"]
    for t in study.trials:
        assert t.user_attrs["pruned_reason"].startswith("collapse guard at iteration 20 (coverage")
        assert t.system_attrs["constraints:coverage"] > 0.0  # infeasible: coverage below 0.5
        assert Path(t.user_attrs["checkpoint"]).is_file()  # a pruned trial keeps its best weights too


def test_jobs_share_the_trials_between_worker_processes(tmp_path):
    out = tmp_path / "out"
    assert main(["tune", "--n-trials", "4", "--jobs", "2", "--out", str(out), *TINY1]) == 0
    study = _load(out, "trajsynth_stage1")
    assert [t.number for t in study.trials] == [0, 1, 2, 3] and set(_states(study)) == {"COMPLETE"}
    done = [line for line in (out / "optuna.log").read_text().splitlines() if ") done:" in line]
    pids = {line.split("pid=")[1].split()[0] for line in done}
    assert len(done) == 4 and len(pids) == 2  # two worker processes, each ran its share
