"""Checkpoints written before model families had their own config sections (format version 1)."""

from __future__ import annotations

import dataclasses

from .config import ARCH_VERSION, LatentWGANArch


def upgrade_v1(ckpt: dict) -> dict:
    """Version 1 (one flat config, stage flags) → version 2 (arch / train sections, phases done)."""
    arch_keys = {f.name for f in dataclasses.fields(LatentWGANArch)}
    flat = ckpt.get("config", {})
    st = dict(ckpt.get("trainer_state", {}))
    done = [name for name, flag in (("stage1", "stage1_done"), ("stage2", "stage2_done")) if st.get(flag)]
    st.update(phase=len(done), done=done, complete=len(done) == 2,
              converged_at={"stage1": st.get("stage1_converged_at")})
    training = {"optimizers": ckpt.get("optimizers"), "schedulers": ckpt.get("schedulers", {}),
                "rng": ckpt.get("rng", {}).get("stage2"), "epoch": st.get("epoch", 0),
                "batch_pos": st.get("batch_pos", 0)}
    drop = ("config", "model_family", "arch_version", "trainer_state", "optimizers", "schedulers")
    out = {k: v for k, v in ckpt.items() if k not in drop}
    if training["optimizers"] is not None:
        out["training"] = training
    out.update(version=2, family=ckpt.get("model_family"), family_version=ckpt.get("arch_version", ARCH_VERSION),
               arch={k: v for k, v in flat.items() if k in arch_keys},
               train={k: v for k, v in flat.items() if k not in arch_keys}, trainer_state=st)
    return out
