"""What a served model is and where its training data came from (``GET /v1/model``).

A checkpoint records its family and version and, of its data, the directory's path, the sequence
length and the scaling (hence the trained distance range). When that directory is still readable
on the server, its ``meta.json`` adds the source, the citation and the counts per split. Folder
names are reported, never full paths: a client learns which data, not the server's file layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import __version__
from .sampler import TrajectorySampler


def model_card(ckpt: dict[str, Any], sampler: TrajectorySampler, real_movements: bool) -> dict[str, Any]:
    """The ``/v1/model`` answer for a loaded checkpoint dict and its sampler."""
    lo, hi = sampler.distance_range
    return {"family": sampler.family, "family_version": int(ckpt.get("family_version", 0)),
            "trajsynth_version": __version__, "directed": sampler.directed,
            "distance_range_px": [float(lo), float(hi)], "data": data_provenance(ckpt.get("data", {})),
            "real_movements": real_movements}


def data_provenance(data: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint's record of its data, with the data directory's meta.json where it can be read."""
    where = str(data.get("data_dir") or "")
    out: dict[str, Any] = {"data_dir": Path(where).name or None, "max_seq_len": data.get("max_seq_len")}
    meta = _meta(Path(where)) if where else None
    if meta is not None:
        out.update(source=Path(str(meta.get("source_dir", ""))).name or None, citation=meta.get("citation"),
                   counts=meta.get("counts"), data_format=meta.get("data_format"))
    out["meta_available"] = meta is not None
    return out


def _meta(data_dir: Path) -> dict[str, Any] | None:
    """The data directory's meta.json as a dict, or None when it is gone or unreadable."""
    try:
        meta = json.loads((data_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None
