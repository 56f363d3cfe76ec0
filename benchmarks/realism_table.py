"""One markdown row per evaluated generator: the README's realism table from ``trajsynth evaluate`` reports.

Each argument is ``NAME=REPORT_DIR`` (a folder that ``trajsynth evaluate … --out`` wrote, or its
``report.json``), optionally followed by ``,train=TEXT`` and ``,traj_s=N`` (training time and
generation speed, measured elsewhere: ``bench_generate.py``). The last row is the real-vs-real
reference of the first report.

    python benchmarks/realism_table.py ar_mdn=eval_ar,train=9 min,traj_s=5200 ghost-cursor=eval_gc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HEADER = ("| generator | disc_strong | disc_timegan | kinematic detector | coverage | median end error | "
          "duration W1 (ms) | Fitts slope (ms/bit) | Fitts intercept (ms) | training | traj/s |")


def read_report(path: str) -> dict:
    p = Path(path)
    p = p / "report.json" if p.is_dir() else p
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"error: {p}: not a readable evaluation report ({e})") from None


def parse_arg(arg: str) -> tuple[str, dict, dict]:
    name, sep, rest = arg.partition("=")
    if not sep:
        raise SystemExit(f"error: {arg!r}: expected NAME=REPORT_DIR[,train=TEXT][,traj_s=N]")
    path, *extras = rest.split(",")
    extra = dict(e.split("=", 1) for e in extras if "=" in e)
    return name, read_report(path), extra


def fmt(v, spec: str = ".3f") -> str:
    return "–" if v is None else format(v, spec)


def row(name: str, r: dict, extra: dict) -> str:
    err = r.get("cond_rel_err_median")
    cells = [fmt(r.get("disc_strong")), fmt(r.get("disc_timegan")), fmt(r.get("kinematic_detector_acc")),
             fmt(r.get("coverage"), ".2f"), "–" if err is None else f"{100 * err:.2f} %",
             fmt(r.get("w1_movement_time"), ".0f"),
             f"{fmt(r.get('fitts_slope_fake'), '.0f')} (real {fmt(r.get('fitts_slope_real'), '.0f')})",
             f"{fmt(r.get('fitts_intercept_fake'), '.0f')} (real {fmt(r.get('fitts_intercept_real'), '.0f')})",
             extra.get("train", "–"), extra.get("traj_s", "–")]
    return f"| {name} | " + " | ".join(cells) + " |"


def reference_row(r: dict) -> str:
    cells = [fmt(r.get("ref_disc_strong")), fmt(r.get("ref_disc_timegan")),
             fmt(r.get("ref_kinematic_detector_acc")), fmt(r.get("ref_coverage"), ".2f"), "–",
             fmt(r.get("ref_w1_movement_time"), ".0f"), "–", "–", "–", "–"]
    return "| real vs real (reference) | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", metavar="NAME=REPORT_DIR[,train=TEXT][,traj_s=N]")
    rows = [parse_arg(a) for a in ap.parse_args().reports]
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    for name, r, extra in rows:
        print(row(name, r, extra))
    print(reference_row(rows[0][1]))


if __name__ == "__main__":
    main()
