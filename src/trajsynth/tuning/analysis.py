"""Analysis of a finished (or running) study: best trials / Pareto front as a table, plots as HTML and PNG.

The HTML plots (Plotly) load ``plotly.min.js`` from their own folder, so they open offline; the PNG
copies come from Optuna's matplotlib backend. A plot that cannot be drawn (e.g. importances with
fewer than two finished trials) is skipped with its reason in ``summary.md``.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

from ..utils.atomic import write_bytes, write_text

NOT_SCORES = ("run_dir", "checkpoint", "pruned_reason")


def objective_names(study) -> list[str]:
    """The objectives the study was created with (its identity), e.g. recon_mse and latent_rel_err."""
    names = list(study.user_attrs.get("identity", {}).get("objectives") or [])
    names = names or [f"value{i}" for i in range(len(study.directions))]
    return names if len(study.directions) > 1 else names[:1]


def score_attrs(study) -> list[str]:
    """Every numeric score a trial recorded (user attributes), in first-seen order."""
    seen: dict[str, None] = {}
    for t in study.trials:
        for k, v in t.user_attrs.items():
            if k not in NOT_SCORES and isinstance(v, (int, float)):
                seen.setdefault(k)
    return list(seen)


def best_trials(study) -> list:
    """The Pareto front (multi-objective) or the 10 best finished trials (single objective)."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return []
    if len(study.directions) > 1:
        return sorted(study.best_trials, key=lambda t: t.values[0])
    return sorted(done, key=lambda t: t.value)[:10]


def trials_table(study, trials: list) -> str:
    """A Markdown table: number, objective values, parameters, checkpoint."""
    names = objective_names(study)
    params = sorted({p for t in trials for p in t.params})
    head = ["trial", *names, *params, "checkpoint"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in trials:
        cells = [str(t.number), *(f"{v:.5g}" for v in t.values), *(_fmt(t.params.get(p)) for p in params),
                 t.user_attrs.get("checkpoint", "")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def state_counts(study) -> dict[str, int]:
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def trials_csv(study) -> str:
    params = sorted({p for t in study.trials for p in t.params})
    names = objective_names(study)
    buf = io.StringIO()
    w = csv.writer(buf)
    scores = score_attrs(study)
    w.writerow(["trial", "state", *names, *params, *scores, "duration_s", "pruned_reason", "checkpoint"])
    for t in study.trials:
        values = list(t.values) if t.values and len(t.values) == len(names) else [""] * len(names)
        dur = t.duration.total_seconds() if t.duration else ""
        w.writerow([t.number, t.state.name, *values, *(t.params.get(p, "") for p in params),
                    *(t.user_attrs.get(a, "") for a in scores), dur, t.user_attrs.get("pruned_reason", ""),
                    t.user_attrs.get("checkpoint", "")])
    return buf.getvalue()


def _plots(study) -> list[tuple[str, object, object]]:
    """(file stem, plotly builder, matplotlib builder) for every plot of this study."""
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as pm

    names = objective_names(study)
    out = []
    for i, name in enumerate(names):
        kw = dict(target=(lambda t, i=i: t.values[i]), target_name=name) if len(names) > 1 else {}
        suffix = f"_{name}" if len(names) > 1 else ""
        out.append((f"optimization_history{suffix}", lambda kw=kw: pv.plot_optimization_history(study, **kw),
                    lambda kw=kw: pm.plot_optimization_history(study, **kw)))
        out.append((f"param_importances{suffix}", lambda kw=kw: pv.plot_param_importances(study, **kw),
                    lambda kw=kw: pm.plot_param_importances(study, **kw)))
    if len(names) > 1:
        out.append(("pareto_front", lambda: pv.plot_pareto_front(study, target_names=names),
                    lambda: pm.plot_pareto_front(study, target_names=names)))
    elif any(t.intermediate_values for t in study.trials):
        out.append(("intermediate_values", lambda: pv.plot_intermediate_values(study),
                    lambda: pm.plot_intermediate_values(study)))
    return out


def write_plots(study, folder: Path) -> tuple[list[str], list[str]]:
    """Write every plot as HTML and PNG; returns (written file names, 'name: reason' of skipped ones)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.offline

    written, skipped = [], []
    js = folder / "plotly.min.js"
    for stem, html_fn, png_fn in _plots(study):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = html_fn()
                write_text(folder / f"{stem}.html", fig.to_html(include_plotlyjs="directory", full_html=True))
                written.append(f"{stem}.html")
                ax = png_fn()
                figure = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
                buf = io.BytesIO()
                figure.savefig(buf, format="png", dpi=110, bbox_inches="tight")
                plt.close(figure)
                write_bytes(folder / f"{stem}.png", buf.getvalue())
                written.append(f"{stem}.png")
        except Exception as e:  # noqa: BLE001 - a plot Optuna cannot draw must not stop the others
            skipped.append(f"{stem}: {type(e).__name__}: {e}")
    if any(n.endswith(".html") for n in written) and not js.exists():
        write_text(js, plotly.offline.get_plotlyjs())
    return written, skipped


def analyze(study, folder: str | Path) -> str:
    """Write trials.csv, summary.md and the plots into ``folder``; return the summary text."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = state_counts(study)
    front = best_trials(study)
    title = "Pareto front" if len(study.directions) > 1 else "Best trials"
    write_text(folder / "trials.csv", trials_csv(study))
    written, skipped = write_plots(study, folder)
    lines = [f"# Study {study.study_name}", "",
             f"{len(study.trials)} trials: " + ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())), "",
             f"## {title}", "", trials_table(study, front) if front else "(no finished trial yet)", "",
             "## Files", "", *(f"- {w}" for w in ["trials.csv", *written])]
    if skipped:
        lines += ["", "## Plots not drawn", "", *(f"- {s}" for s in skipped)]
    text = "\n".join(lines) + "\n"
    write_text(folder / "summary.md", text)
    return text
