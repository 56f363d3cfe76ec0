"""Per-domain realism of a tcn_vae model trained on merged mouse data (SapiMouse + Balabit).

Two steps, each a subcommand; then ``trajsynth evaluate --samples`` scores them as any model:

    python benchmarks/tcn_vae_domains.py subset MERGED_DIR OUT_DIR --domain sapimouse
        the merged directory's movements of one domain (same scaling, same users), as a data directory
    python benchmarks/tcn_vae_domains.py samples CKPT OUT_DIR --domain sapimouse --n 2000 --out s.npz
        movements generated with that domain for the test split's conditions, in the export format
        (rendered onto the training data's event clock, as ``export-samples``)
    trajsynth evaluate --samples s.npz OUT_DIR --n 2000 --out eval_sapimouse
"""

from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from trajsynth.data.directory import SPLITS, load_meta, load_params, load_split, write_data_dir
from trajsynth.serving.export import describe, write_samples
from trajsynth.serving.sampler import TrajectorySampler


def subset(merged: str, out: str, domain: str) -> None:
    meta = load_meta(merged)
    names = meta.get("domain_names") or []
    if domain not in names:
        raise SystemExit(f"error: {merged} has no domain {domain!r} (domains: {names})")
    k, splits = names.index(domain), {}
    for name in SPLITS:
        s = load_split(merged, name)
        idx = np.flatnonzero(s.domain == k)
        pts = [s.path(int(i)) for i in idx]
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pts])]).astype(np.int64)
        splits[name] = replace(s, X=s.X[idx], C=s.C[idx], L=s.L[idx], points=np.concatenate(pts), offsets=offsets,
                               start_px=s.start_px[idx], user=s.user[idx], session=s.session[idx],
                               action=s.action[idx], activity=s.activity[idx], domain=s.domain[idx])
    users = {n: [u for u in meta["users"][n] if u.startswith(f"{domain}:")] for n in SPLITS}
    counts = {n: len(splits[n].L) for n in SPLITS}
    write_data_dir(out, splits, load_params(merged), {**meta, "users": users, "counts": counts,
                                                      "subset_of": str(merged), "domain": domain})
    print(f"wrote {out}: {counts}")


def samples(ckpt: str, data_dir: str, domain: str, n: int, out: str, seed: int) -> None:
    sampler = TrajectorySampler.from_checkpoint(ckpt)
    names = (load_meta(data_dir).get("domain_names") or [])
    if domain not in names:
        raise SystemExit(f"error: {data_dir} has no domain {domain!r} (domains: {names})")
    sampler.model.generate = functools.partial(sampler.model.generate, domain=names.index(domain))
    C = load_split(data_dir, "test", with_paths=False).C[:n]
    g = sampler.generate(len(C), seed=seed, conditions=C)
    write_samples(Path(out), g)
    print(f"wrote {out}: {describe(g)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subset")
    s.add_argument("merged")
    s.add_argument("out")
    s.add_argument("--domain", required=True)
    g = sub.add_parser("samples")
    g.add_argument("checkpoint")
    g.add_argument("data_dir")
    g.add_argument("--domain", required=True)
    g.add_argument("--n", type=int, default=2000)
    g.add_argument("--out", required=True)
    g.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.command == "subset":
        subset(a.merged, a.out, a.domain)
    else:
        samples(a.checkpoint, a.data_dir, a.domain, a.n, a.out, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
