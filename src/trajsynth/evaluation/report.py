"""report.json and report.md of an evaluation: every metric with its direction, band and reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..metrics.base import REGISTRY
from ..utils.atomic import write_text
from .suite import SuiteResult


def _fmt(v: float | None) -> str:
    if v is None or not np.isfinite(v):
        return "–"
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def markdown(res: SuiteResult, title: str, meta: dict) -> str:
    """A table of every metric: value ± std, real-vs-real reference, direction, ideal, band."""
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    lines += ["", "| metric | value | ± std | real vs real | better | ideal | band |", "|---|---|---|---|---|---|---|"]
    for key, value in res.values.items():
        info = REGISTRY.get(key)
        better = info.direction if info else ""
        ideal = _fmt(info.ideal) if info else ""
        band = (info.band(value) if info else None) or ""
        lines.append(f"| `{key}` | {_fmt(value)} | {_fmt(res.std.get(key))} | {_fmt(res.reference.get(key))} | "
                     f"{better} | {ideal} | {band} |")
    lines += ["", "Bands (Excellent / Good / Needs work / Poor) follow the design's table where it gives one; "
              "the real-vs-real column is what a perfect generator would score on this data.", "",
              "## Time per metric group", ""]
    lines += [f"- {k}: {v:.1f} s" for k, v in res.seconds.items()]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, res: SuiteResult, title: str, meta: dict) -> tuple[Path, Path]:
    """report.json (metric keys → numbers) and report.md, written atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    j, m = out / "report.json", out / "report.md"
    write_text(j, json.dumps(res.flat(), indent=2, sort_keys=True) + "\n")
    write_text(m, markdown(res, title, meta))
    return j, m


def side_by_side(results: dict[str, SuiteResult], title: str, meta: dict) -> str:
    """One column per evaluated set (e.g. per reconstruction path), with the real-vs-real reference."""
    names = list(results)
    first = results[names[0]]
    keys = list(dict.fromkeys(k for r in results.values() for k in r.values))  # in the reports' order
    lines = [f"# {title}", "", *[f"- **{k}**: {v}" for k, v in meta.items()], ""]
    lines += ["| metric | " + " | ".join(names) + " | real vs real | better |", "|---" * (len(names) + 3) + "|"]
    for key in keys:
        info = REGISTRY.get(key)
        cells = [_fmt(results[n].values.get(key)) for n in names]
        lines.append(f"| `{key}` | " + " | ".join(cells) + f" | {_fmt(first.reference.get(key))} | "
                     f"{info.direction if info else ''} |")
    return "\n".join(lines) + "\n"
