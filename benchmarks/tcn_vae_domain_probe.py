"""How much of the domain a tcn_vae checkpoint's z still carries, and its activity accuracy per domain.

A domain classifier is trained afresh on the frozen encoder's codes of the training split and
scored on the test split (other users): logistic regression and a one-hidden-layer MLP
(scikit-learn) on standardised inputs, accuracy and balanced accuracy (the domains differ in size:
the majority share is printed beside them, and plain accuracy cannot go below it, so the balanced
one, chance 0.5, is the figure to read). Two codes are probed: ``z`` drawn from the posterior
(μ + σ·ε, one seeded draw per sequence: the code the decoder is trained on) and ``mu``, the
posterior mean alone (what ``trajsynth encode`` writes). They can differ: a domain difference much
smaller than the posterior's spread is invisible in z, while the standardised mean still shows it.
Then the model's own activity classifier on the test users of each domain, next to the majority
class of that domain.

    python benchmarks/tcn_vae_domain_probe.py CKPT DATA_DIR [--max-train 20000] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trajsynth.data.directory import load_meta, load_split
from trajsynth.evaluation.sources import finished_model
from trajsynth.utils.atomic import write_json


def codes(model, X: torch.Tensor, L: torch.Tensor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The posterior means (n, Z) and one draw z = μ + σ·ε (n, Z) per sequence, ε from ``seed``."""
    mu, logvar = model.posterior(X, L)
    z = mu + torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)) * (0.5 * logvar).exp()
    return mu.numpy(), z.numpy()


def encoded(model, data_dir: str, split: str, limit: int | None, seed: int) -> dict[str, np.ndarray]:
    """mu and z (n, Z), activity, domain and predicted activity (n,) of up to ``limit`` sequences of a split."""
    s = load_split(data_dir, split, with_paths=False)
    if s.activity is None or s.domain is None:
        raise SystemExit(f"error: {data_dir} has no activity and domain labels")
    idx = np.arange(len(s))
    if limit is not None and limit < len(s):
        idx = np.sort(np.random.default_rng(seed).choice(len(s), limit, replace=False))
    X, L = torch.as_tensor(s.X[idx]), torch.as_tensor(s.L[idx])
    mu, z = codes(model, X, L, seed + (split == "test"))
    return {"mu": mu, "z": z, "activity": s.activity[idx], "domain": s.domain[idx],
            "pred": model.classify(X, L).numpy()}


def domain_probe(train: dict, test: dict, seed: int) -> dict[str, float]:
    """Accuracy and balanced accuracy of fresh domain classifiers, keys ``{code}_{probe}_{acc|balanced_acc}``."""
    out = {"majority_share": float(np.bincount(test["domain"]).max() / len(test["domain"]))}
    for code in ("z", "mu"):
        probes = {"logistic": LogisticRegression(max_iter=2000),
                  "mlp": MLPClassifier((64,), early_stopping=True, max_iter=300, random_state=seed)}
        for name, clf in probes.items():
            pipe = make_pipeline(StandardScaler(), clf).fit(train[code], train["domain"])
            pred = pipe.predict(test[code])
            out[f"{code}_{name}_acc"] = float((pred == test["domain"]).mean())
            out[f"{code}_{name}_balanced_acc"] = float(balanced_accuracy_score(test["domain"], pred))
    return out


def activity_per_domain(test: dict, names: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for d in np.unique(test["domain"]):
        pick = test["domain"] == d
        a = test["activity"][pick]
        out[names[d] if d < len(names) else str(d)] = {
            "n": int(pick.sum()), "activity_acc": float((test["pred"][pick] == a).mean()),
            "majority_share": float(np.bincount(a).max() / len(a))}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("data_dir")
    p.add_argument("--max-train", type=int, default=20000, help="training sequences the probes are fitted on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="also write the numbers to this new file")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    model = finished_model(a.checkpoint)
    train = encoded(model, a.data_dir, "train", a.max_train, a.seed)
    test = encoded(model, a.data_dir, "test", None, a.seed)
    meta = load_meta(a.data_dir)
    result = {"domain_probe": domain_probe(train, test, a.seed), "train_n": len(train["mu"]), "test_n": len(test["mu"]),
              "activity_acc_test": float((test["pred"] == test["activity"]).mean()),
              "per_domain": activity_per_domain(test, meta.get("domain_names") or [])}
    print(json.dumps(result, indent=2))
    if a.json:
        write_json(a.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
