"""benchmarks/peers.py: the peer tools' movements in the export format, on a small synthetic data directory.

Each peer runs for real where it is installed (node + ``benchmarks/peers/node_modules`` for ghost-cursor,
the ``peers`` extra for cursory and windmouse) and is skipped with the install command otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT

from trajsynth.data.directory import load_params, load_split
from trajsynth.data.features import features_to_paths
from trajsynth.data.sets import TrajectorySet
from trajsynth.evaluation.sources import samples_set

SCRIPT = REPO_ROOT / "benchmarks" / "peers.py"
_spec = importlib.util.spec_from_file_location("peers_benchmark", SCRIPT)
peers = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = peers  # its dataclass looks itself up there
_spec.loader.exec_module(peers)

N = 12  # movements per peer (of the small data directory's test split)


def missing(name: str) -> str | None:
    """Why a peer cannot run here (with its install command), or None."""
    if name == "ghost_cursor":
        if shutil.which("node") is None:
            return "node is not on PATH (apt-get install nodejs npm)"
        if not (peers.PEERS_DIR / "node_modules" / "ghost-cursor").is_dir():
            return f"ghost-cursor is not installed: {peers.NPM_INSTALL}"
        return None
    if importlib.util.find_spec(name) is None:
        return f"{name} is not installed: {peers.PIP_INSTALL}"
    return None


INSTALLED = [name for name in peers.PEERS if missing(name) is None]
per_peer = pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.skipif(missing(n) is not None, reason=str(missing(n))))
             for n in peers.PEERS])


def run_script(*args, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def exported(small_data_dir, tmp_path_factory):
    """The script run once on the small data directory for every installed peer: the output folder."""
    if not INSTALLED:
        pytest.skip(f"no peer is installed ({peers.PIP_INSTALL}; {peers.NPM_INSTALL})")
    out = tmp_path_factory.mktemp("peers")
    proc = run_script(small_data_dir, "--split", "test", "--n", N, "--out", out, "--peers", ",".join(INSTALLED))
    assert proc.returncode == 0, proc.stderr
    return out


@per_peer
def test_export_loads_and_draws_the_requested_movements(name, exported, small_data_dir):
    g = samples_set(exported / f"{name}.npz")
    real = TrajectorySet.from_split(small_data_dir, "test", N, seed=0)  # what `evaluate --n N` compares with
    assert len(g) == len(real) == N
    assert np.allclose(g.C, real.C) and np.all(g.L <= real.X.shape[1])
    assert [len(p) for p in g.paths] == list(g.L)
    for p, r, d in zip(g.paths, real.paths, g.distance_px, strict=True):
        assert np.array_equal(p[0], [0, 0, 0])
        assert np.all(np.diff(p[:, 0]) >= 0)  # times in ms, never backwards
        # ghost-cursor and WindMouse end on the target, cursory warps its recording onto it
        assert np.allclose(p[-1, 1:], r[-1, 1:], atol=0.01)
        assert abs(np.hypot(*p[-1, 1:]) - d) < 1e-3 * d  # the requested distance is the real one


@per_peer
def test_features_give_the_paths_back(name, exported, small_data_dir):
    g = samples_set(exported / f"{name}.npz")
    back = features_to_paths(g.X, g.C, g.L, load_params(small_data_dir))
    for p, q in zip(g.paths, back, strict=True):
        assert np.allclose(p, q, atol=0.05)


@per_peer
def test_peers_are_seeded(name, small_data_dir):
    req = peers.load_requests(small_data_dir, "test", 5, seed=0)
    a, b, c = peers.PEERS[name](req, 3), peers.PEERS[name](req, 3), peers.PEERS[name](req, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(len(x) == len(z) and np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_requests_follow_the_real_movements(small_data_dir):
    s = load_split(small_data_dir, "test")
    req = peers.load_requests(small_data_dir, "test", None, seed=0)
    assert len(req.C) == len(s) and req.max_len == s.X.shape[1]
    assert np.allclose(req.end - req.start, [s.path(i)[-1, 1:] for i in range(len(s))])
    assert np.allclose(req.distance_px, [np.hypot(*s.path(i)[-1, 1:]) for i in range(len(s))], rtol=1e-4)


def test_thin_keeps_both_ends_and_spaces_points_evenly():
    path = np.column_stack([np.arange(250.0) * 8, np.arange(250.0), np.zeros(250)])
    out = peers.thin(path, 100)
    assert len(out) == 100 and np.array_equal(out[0], path[0]) and np.array_equal(out[-1], path[-1])
    assert np.ptp(np.diff(out[:, 1])) <= 1  # steps of 2 or 3 source points
    assert len(peers.thin(path[:40], 100)) == 40


@pytest.mark.skipif(missing("windmouse") is not None, reason=str(missing("windmouse")))
def test_windmouse_timing_models():
    points = peers.windmouse_points(np.array([10.0, 10.0]), np.array([900.0, 400.0]))
    assert np.array_equal(points[0], [10, 10]) and np.array_equal(points[-1], [900, 400])
    t = peers.windmouse_times(points, np.random.default_rng(0), None)
    waits = np.diff(t)
    assert np.all(waits >= 4) and np.all(waits <= 11)  # reference wait: 10/s..15/s ms, s in [1.5, 2.25)
    assert np.array_equal(np.diff(peers.windmouse_times(points, None, 105.0)), np.full(len(points) - 1, 105.0))


@pytest.mark.skipif(missing("cursory") is not None, reason=str(missing("cursory")))
def test_cursory_overlap_finds_a_recording_and_nothing_synthetic(small_data_dir):
    owner = peers.cursory_recordings()
    rec_run = next(iter(owner))  # a run of 12 steps of some recording
    steps = np.array(rec_run, float).reshape(-1, 2)
    xy = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)])
    path = np.column_stack([np.arange(len(xy)) * 16.0, xy + 500])
    assert peers.overlap(owner, [path], ["u"])["movements_matched"] == 1
    s = load_split(small_data_dir, "test")
    assert peers.overlap(owner, [s.path(i) for i in range(len(s))], s.user)["movements_matched"] == 0


def test_a_missing_node_is_named_with_the_install_command(small_data_dir, tmp_path):
    bare = tmp_path / "bin"  # a PATH without node
    bare.mkdir()
    proc = run_script(small_data_dir, "--n", 3, "--out", tmp_path / "out", "--peers", "ghost_cursor",
                      env={"PATH": str(bare)})
    assert proc.returncode == 2
    assert "node" in proc.stderr and "apt-get install nodejs" in proc.stderr


def test_unknown_peer_is_refused(small_data_dir, tmp_path):
    proc = run_script(small_data_dir, "--out", tmp_path, "--peers", "bezier")
    assert proc.returncode == 2 and "unknown peers ['bezier']" in proc.stderr
