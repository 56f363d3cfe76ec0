"""Movements drawn by the tools people use today for human-like mouse paths, in the export format.

For the movements of one split of a data directory (the same ``--n`` movements, drawn the same way,
that ``trajsynth evaluate DATA --n N`` compares against), each peer draws one movement from the real
movement's screen start to its real end point (``split.start_px[i]`` to ``start_px[i] +
split.path(i)[-1, 1:]``). The requested distance of movement i is ``condition_to_distance(C[i])``.
Each peer's paths are written as ``OUT/<peer>.npz`` in the export format (X, L, C, distance_px,
paths_points, paths_offsets; paths from (0, 0, 0), t in ms, X from ``paths_to_features``, C the
requested condition), so that ``trajsynth evaluate --samples OUT/<peer>.npz DATA`` scores them.

    python benchmarks/peers.py DATA_DIR --split test --n 2000 --out DIR [--peers ghost_cursor,cursory]
    python benchmarks/peers.py DATA_DIR --cursory-overlap       # cursory's recordings found in DATA_DIR

The peers, how each is driven and timed (every peer with its defaults; ``--seed`` makes runs repeat):

* ``ghost_cursor`` (npm ``ghost-cursor``, pinned in ``benchmarks/peers/package.json``; install with
  ``cd benchmarks/peers && PUPPETEER_SKIP_DOWNLOAD=1 npm install``): ``path(start, end,
  {useTimestamps: true})`` run with node by ``benchmarks/peers/ghost_cursor.mjs``. Times are
  ghost-cursor's own timestamps (step time from the Bézier curve's speed over a random movement
  speed), counted from the first point; steps of 0 ms that it emits are kept. Its ``Math.random`` is
  seeded. ghost-cursor clamps points to x, y >= 0 (a page's top-left corner), so movements are drawn
  at their real screen positions, moved right / down just enough where the start or the end lies at
  a negative coordinate (multi-monitor logs; none in processed SapiMouse).
* ``cursory`` (PyPI ``cursory``): ``generate_trajectory(start, end, seed=seed + i)``, which picks a
  recorded human movement of similar direction and length, warps it onto start → end and resamples
  it at its default 60 Hz (``frequency=60``, ``frequency_randomizer=1``); its own timings are used.
  Its recordings overlap SapiMouse: ``--cursory-overlap`` counts those that share a run of 12
  displacement steps with a movement of each split.
* ``windmouse`` (PyPI ``windmouse``): the points of ``windmouse.core.wind_mouse`` with its defaults
  (gravity 9, wind 3, max step 15 px, damped distance 12 px) on integer screen pixels, the start
  point first, and the end point appended when the last step stops short of it (the reference
  WindMouse ends with a move onto the target). The package moves the cursor through pyautogui or
  AutoHotkey and leaves timing to ``tick_delay`` + ``step_duration`` per point; the timing used
  here is the reference WindMouse's wait per step, ``wait = (maxWait - minWait) * step / maxStep +
  minWait`` ms with ``minWait = 10 / s``, ``maxWait = 15 / s`` and ``s = (U[0, 15) / 2 + 15) / 10``
  drawn per movement (its default mouse speed 15), maxStep the package's 15 px.
  ``--windmouse-step-ms MS`` times every point ``MS`` ms apart instead (the package's quick-start
  ``tick_delay=0.005, step_duration=0.1`` is 105).

Movements with more than the data directory's ``max_seq_len`` points are thinned as ``trajsynth
preprocess --long-policy resample`` does: ``max_seq_len`` evenly spaced points that keep both ends.
How many were thinned is printed per peer.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trajsynth.data.directory import load_params, load_split
from trajsynth.data.features import condition_to_distance, paths_to_features
from trajsynth.data.sets import TrajectorySet
from trajsynth.serving.export import describe, write_samples

PEERS_DIR = Path(__file__).resolve().parent / "peers"
NODE_SCRIPT = PEERS_DIR / "ghost_cursor.mjs"
NPM_INSTALL = f"cd {PEERS_DIR} && PUPPETEER_SKIP_DOWNLOAD=1 npm install"
PIP_INSTALL = "pip install cursory windmouse   (or: pip install -e '.[peers]')"


class PeerMissing(RuntimeError):
    """A peer cannot run here; the message says what to install."""


@dataclass
class Requests:
    """The movements to draw: screen start and end points, requested conditions and distances."""

    start: np.ndarray  # (n, 2) screen px
    end: np.ndarray  # (n, 2) screen px
    C: np.ndarray  # (n,) requested normalised conditions
    distance_px: np.ndarray  # (n,) requested distances
    max_len: int


def load_requests(data_dir: Path, split: str, n: int | None, seed: int) -> Requests:
    """The movements ``trajsynth evaluate DATA --split S --n N --seed SEED`` compares against, in its order."""
    s = load_split(data_dir, split)
    if len(s) == 0 or s.offsets[-1] == 0:
        raise ValueError(f"{data_dir}: split {split!r} has no movements with paths")
    idx = np.arange(len(s))
    if n is not None and n < len(s):  # the draw of TrajectorySet.from_split
        idx = np.sort(np.random.default_rng(seed).choice(len(s), n, replace=False))
    rel_end = np.array([s.path(int(i))[-1, 1:] for i in idx], np.float64)
    start = s.start_px[idx].astype(np.float64)
    C = s.C[idx].astype(np.float32)
    return Requests(start, start + rel_end, C, condition_to_distance(C, load_params(data_dir)), s.X.shape[1])


# --------------------------------------------------------------------------- the peers


def ghost_cursor_paths(req: Requests, seed: int) -> list[np.ndarray]:
    """ghost-cursor's ``path(start, end, {useTimestamps: true})``, run with node."""
    node = shutil.which("node")
    if node is None:
        raise PeerMissing("ghost_cursor needs node (Node.js >= 18) on PATH: apt-get install nodejs npm")
    if not (PEERS_DIR / "node_modules" / "ghost-cursor").is_dir():
        raise PeerMissing(f"ghost-cursor is not installed: {NPM_INSTALL}")
    shift = np.maximum(0.0, -np.minimum(req.start, req.end))  # (n, 2): ghost-cursor clamps to x, y >= 0
    moves = np.concatenate([req.start + shift, req.end + shift], axis=1).tolist()
    proc = subprocess.run([node, str(NODE_SCRIPT)], input=json.dumps({"seed": seed, "moves": moves}),
                          capture_output=True, text=True, cwd=PEERS_DIR, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ghost_cursor.mjs failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return [np.asarray(p, np.float64) - [0, *d] for p, d in zip(json.loads(proc.stdout), shift, strict=True)]


def cursory_paths(req: Requests, seed: int) -> list[np.ndarray]:
    """cursory's ``generate_trajectory`` at its default 60 Hz, one seed per movement."""
    try:
        from cursory import generate_trajectory
    except ImportError:
        raise PeerMissing(f"cursory is not installed: {PIP_INSTALL}") from None
    out = []
    for i, (a, b) in enumerate(zip(req.start, req.end, strict=True)):
        points, times = generate_trajectory((float(a[0]), float(a[1])), (float(b[0]), float(b[1])), seed=seed + i)
        out.append(np.column_stack([np.asarray(times, np.float64), np.asarray(points, np.float64)]))
    return out


def windmouse_points(start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The integer points of ``wind_mouse`` (package defaults), from the start point onto the end point."""
    from windmouse.core import wind_mouse

    a, b = np.round(start).astype(int), np.round(end).astype(int)
    points = [tuple(a), *wind_mouse(int(a[0]), int(a[1]), int(b[0]), int(b[1]))]
    if points[-1] != tuple(b):
        points.append(tuple(b))
    return np.asarray(points, np.float64)


def windmouse_times(points: np.ndarray, rng: np.random.Generator, step_ms: float | None,
                    max_step: float = 15.0) -> np.ndarray:
    """Times (ms) of WindMouse points: the reference wait per step, or ``step_ms`` apart."""
    steps = np.hypot(*np.diff(points[:, :2], axis=0).T)
    if step_ms is not None:
        waits = np.full(len(steps), float(step_ms))
    else:
        speed = (rng.uniform(0, 15) / 2 + 15) / 10
        min_wait, max_wait = 10 / speed, 15 / speed
        waits = np.round((max_wait - min_wait) * steps / max_step + min_wait)
    return np.concatenate([[0.0], np.cumsum(waits)])


def windmouse_paths(req: Requests, seed: int, step_ms: float | None = None) -> list[np.ndarray]:
    """WindMouse paths timed by the reference wait model (or a fixed interval)."""
    try:
        import windmouse.core  # noqa: F401
    except ImportError:
        raise PeerMissing(f"windmouse is not installed: {PIP_INSTALL}") from None
    np.random.seed(seed)  # wind_mouse draws from numpy's global generator
    rng = np.random.default_rng(seed)
    out = []
    for a, b in zip(req.start, req.end, strict=True):
        points = windmouse_points(a, b)
        out.append(np.column_stack([windmouse_times(points, rng, step_ms), points]))
    return out


PEERS: dict[str, Callable[..., list[np.ndarray]]] = {
    "ghost_cursor": ghost_cursor_paths, "cursory": cursory_paths, "windmouse": windmouse_paths,
}


# --------------------------------------------------------------------------- export


def thin(path: np.ndarray, max_len: int) -> np.ndarray:
    """At most ``max_len`` evenly spaced points keeping both ends (``preprocess --long-policy resample``)."""
    if len(path) <= max_len:
        return path
    return path[np.unique(np.round(np.linspace(0, len(path) - 1, max_len)).astype(int))]


def to_samples(paths: list[np.ndarray], req: Requests, data_dir: Path, name: str) -> TrajectorySet:
    """Screen paths → thinned paths from (0, 0, 0) (their first point and time) and their features, with the
    requested conditions."""
    rel = [thin(p - p[0], req.max_len) for p in paths]
    X, _, L = paths_to_features(rel, req.max_len, load_params(data_dir))
    return TrajectorySet(X, L, req.C, rel, req.distance_px, name)


def peer_summary(paths: list[np.ndarray], samples: TrajectorySet, req: Requests, seconds: float) -> str:
    """One line: the project's description, how many were thinned, 0-ms steps, end-point error."""
    n_long = sum(len(p) > req.max_len for p in paths)
    zero_dt = np.mean(np.concatenate([np.diff(p[:, 0]) == 0 for p in paths]))
    end_err = np.array([np.hypot(*(p[-1, 1:] - b)) for p, b in zip(paths, req.end, strict=True)])
    return (f"{describe(samples)} | thinned {n_long} | 0-ms steps {zero_dt:.1%} | "
            f"end off target p50 {np.median(end_err):.2f} px, max {end_err.max():.2f} px | {seconds:.1f} s")


def run_peer(name: str, req: Requests, data_dir: Path, out: Path, seed: int, overwrite: bool,
             windmouse_step_ms: float | None = None) -> Path:
    """Draw, convert and write one peer's movements; returns the written file."""
    target = out / f"{name}.npz"
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (use --overwrite)")
    t0 = time.perf_counter()
    kwargs = {"step_ms": windmouse_step_ms} if name == "windmouse" else {}
    paths = PEERS[name](req, seed, **kwargs)
    samples = to_samples(paths, req, data_dir, name)
    target.unlink(missing_ok=True)
    write_samples(target, samples)
    print(f"{name}: {peer_summary(paths, samples, req, time.perf_counter() - t0)} -> {target}")
    return target


# --------------------------------------------------------------------------- cursory's recordings


def _runs(xy: np.ndarray, k: int, stride: int = 1) -> list[tuple]:
    """Runs of k integer displacement steps that move at least 5 px per step on average."""
    d = np.round(np.diff(xy, axis=0)).astype(int)
    runs = [tuple(d[o : o + k].ravel()) for o in range(0, len(d) - k + 1, stride)]
    return [r for r in runs if np.abs(r).sum() >= 5 * k]


def cursory_recordings(k: int = 12) -> dict[tuple, int]:
    """Every run of k displacement steps in cursory's shipped recordings → the recording's index."""
    try:
        import cursory  # noqa: F401  (its recordings ship inside the package)
    except ImportError:
        raise PeerMissing(f"cursory is not installed: {PIP_INSTALL}") from None
    db = Path(sys.modules["cursory"].__file__).parent / "trajectories.json.gz"
    owner: dict[tuple, int] = {}
    for j, rec in enumerate(json.loads(gzip.decompress(db.read_bytes()))):
        for r in _runs(np.asarray(rec["points"], np.float64), k):
            owner.setdefault(r, j)
    return owner


def overlap(owner: dict[tuple, int], paths: list[np.ndarray], users, k: int = 12) -> dict[str, int]:
    """How many (t, x, y) paths share a run of k steps with a recording, how many recordings and users that is."""
    hits = [{owner[r] for r in _runs(p[:, 1:], k, stride=2) if r in owner} for p in paths]
    return {"movements": len(paths), "movements_matched": sum(bool(h) for h in hits),
            "recordings_matched": len(set().union(*hits)),
            "users_matched": len({str(users[i]) for i, h in enumerate(hits) if h})}


def cursory_overlap(data_dir: Path, k: int = 12) -> dict[str, dict[str, int]]:
    """Per split of a data directory: its movements found in cursory's recordings (see :func:`overlap`)."""
    owner = cursory_recordings(k)
    result = {"cursory": {"recordings": len(set(owner.values()))}}
    for split in ("train", "val", "test"):
        s = load_split(data_dir, split)
        result[split] = overlap(owner, [s.path(i) for i in range(len(s))], s.user, k)
    return result


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", type=Path)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--n", type=int, default=2000, help="movements (default 2000; 0: the whole split)")
    p.add_argument("--seed", type=int, default=0, help="the draw of the movements (as evaluate's) and the peers' seed")
    p.add_argument("--out", type=Path, default=Path("peers_out"))
    p.add_argument("--peers", default=",".join(PEERS), help=f"comma-separated, of {', '.join(PEERS)}")
    p.add_argument("--windmouse-step-ms", type=float, default=None,
                   help="time WindMouse points this many ms apart instead of the reference wait model")
    p.add_argument("--overwrite", action="store_true", help="replace existing OUT/<peer>.npz")
    p.add_argument("--cursory-overlap", action="store_true",
                   help="only count cursory's recordings found in the data directory's splits, as JSON")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.cursory_overlap:
            print(json.dumps(cursory_overlap(args.data_dir), indent=1))
            return 0
        names = [s.strip() for s in args.peers.split(",") if s.strip()]
        unknown = sorted(set(names) - set(PEERS))
        if unknown or not names:
            raise ValueError(f"unknown peers {unknown}; choose from {', '.join(PEERS)}")
        req = load_requests(args.data_dir, args.split, args.n or None, args.seed)
        args.out.mkdir(parents=True, exist_ok=True)
    except (PeerMissing, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        try:
            run_peer(name, req, args.data_dir, args.out, args.seed, args.overwrite, args.windmouse_step_ms)
        except (PeerMissing, FileExistsError) as e:
            print(f"error: {name}: {e}", file=sys.stderr)
            failed.append(name)
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
