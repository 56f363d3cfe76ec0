"""The embedded default data: a small sample of real SapiMouse movements.

The package ships segmented movements (raw pixel paths with timestamps) of a
subset of SapiMouse users in ``assets/sapimouse_sample.npz`` (see
``assets/CITATION.md``). :func:`embedded_data_dir` turns them into a processed
data directory with the same pipeline as ``trajsynth preprocess`` and caches
it, so the first call takes a second and later calls are free.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .directory import load_meta
from .preprocess import PreprocessConfig, build_data_dir
from .segment import Segment

ASSET = "sapimouse_sample.npz"
EMBEDDED = "embedded"  # the name that stands for this data wherever a data directory is asked for
CITATION = (
    "Antal, M., Fejér, N., Buza, K. (2021). SapiMouse: Mouse Dynamics-based User Authentication "
    "Using Deep Feature Learning. IEEE SACI 2021."
)


def asset_path() -> Path:
    return Path(str(resources.files("trajsynth.data") / "assets" / ASSET))


def load_embedded_segments() -> list[Segment]:
    """The shipped movements as Segments (absolute pixels, ms from each start)."""
    with np.load(asset_path(), allow_pickle=False) as z:
        t = z["t_ms"].astype(np.float64)
        xy = z["xy_px"].astype(np.float64)
        off, user, session, action = z["offsets"], z["user"], z["session"], z["action"]
    return [
        Segment(np.column_stack([t[a:b], xy[a:b]]), str(u), str(s), str(ac))
        for a, b, u, s, ac in zip(off[:-1], off[1:], user, session, action, strict=True)
    ]


def cache_root() -> Path:
    env = os.environ.get("TRAJSYNTH_CACHE")
    return Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "trajsynth"


def embedded_data_dir(cfg: PreprocessConfig | None = None) -> Path:
    """Processed data dir of the embedded sample (built once per config, then cached)."""
    cfg = cfg or PreprocessConfig()
    digest = hashlib.sha256(asset_path().read_bytes() + repr(cfg).encode()).hexdigest()[:12]
    out = cache_root() / f"embedded-{digest}"
    if (out / "meta.json").exists():
        return out
    source = {"source_dir": "embedded SapiMouse sample", "source_files": [ASSET], "citation": CITATION}
    try:
        build_data_dir(load_embedded_segments(), out, cfg, source, overwrite=True)
    except FileExistsError:  # another process finished it first
        pass
    load_meta(out)
    return out


def resolve_data_dir(arg: str | Path | None, must_exist: bool = True) -> Path:
    """A data-directory argument as a path: the word ``embedded`` (and None: nothing given) is the
    embedded sample's cached directory; anything else is a path (``./embedded`` for a folder of that
    name), which must be a directory when ``must_exist``."""
    if arg is None or str(arg) == EMBEDDED:
        return embedded_data_dir()
    path = Path(arg)
    if must_exist and not path.is_dir():
        raise FileNotFoundError(f"data directory {path} does not exist" if not path.exists() else
                                f"{path} is a file, not a data directory")
    return path
