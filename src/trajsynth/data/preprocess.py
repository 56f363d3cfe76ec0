"""Raw logs → processed data directory: read, segment, split by user, featurise, write."""

from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .directory import DATA_FORMAT, SPLITS, SplitArrays, split_users, write_data_dir
from .features import FEATURE_NAMES, FORMAT_VERSION, fit_params, pad_paths, paths_to_features, raw_kinematics
from .raw import RawFormatError, find_logs, read_log, user_and_session
from .segment import Segment, SegmentConfig, SegmentStats, segment_log


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that decides the content of a data directory."""

    format: str = "auto"
    max_seq_len: int = 100
    long_policy: str = "drop"  # drop | resample (keep every k-th point, ends kept)
    seed: int = 0
    val_frac: float = 0.15
    test_frac: float = 0.15
    segment: SegmentConfig = field(default_factory=SegmentConfig)

    def __post_init__(self) -> None:
        if self.long_policy not in ("drop", "resample"):
            raise ValueError(f"long_policy must be 'drop' or 'resample', got {self.long_policy!r}")
        if self.max_seq_len < self.segment.min_points:
            raise ValueError("max_seq_len must be at least segment.min_points")
        if self.format not in ("auto", "sapimouse", "balabit"):
            raise ValueError(f"format must be auto, sapimouse or balabit, got {self.format!r}")


@dataclass
class FileResult:
    path: str
    segments: list[Segment]
    stats: SegmentStats
    rows: int = 0
    skipped_rows: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    format: str | None = None


def process_file(path: Path, raw_dir: Path, cfg: PreprocessConfig) -> FileResult:
    """Read and segment one file; problems become messages, never exceptions."""
    stats = SegmentStats()
    try:
        log, report = read_log(path, cfg.format)
    except (RawFormatError, OSError, UnicodeError) as e:
        return FileResult(str(path), [], stats, messages=[f"skipped file: {e}"])
    user, session = user_and_session(path, raw_dir)
    segs = segment_log(log, user, session, cfg.segment, stats)
    return FileResult(str(path), segs, stats, report.rows, dict(report.skipped), report.examples)


def _fit_length(seg: Segment, max_len: int, policy: str) -> Segment | None:
    n = len(seg.points)
    if n <= max_len:
        return seg
    if policy == "drop":
        return None
    idx = np.unique(np.round(np.linspace(0, n - 1, max_len)).astype(int))
    return Segment(seg.points[idx], seg.user, seg.session, seg.action)


def _split_arrays(segs: list[Segment], max_len: int, params, labels: dict[str, list[str]]) -> SplitArrays:
    paths = [s.points for s in segs]
    X, C, L = paths_to_features(paths, max_len, params)
    rel = [p - p[:1] for p in paths]
    offsets = np.zeros(len(segs) + 1, np.int64)
    offsets[1:] = np.cumsum(L)
    return SplitArrays(
        X=X, C=C, L=L,
        points=np.concatenate(rel).astype(np.float32) if rel else np.zeros((0, 3), np.float32),
        offsets=offsets,
        start_px=np.array([p[0, 1:] for p in paths], np.float32).reshape(-1, 2),
        user=np.array([s.user for s in segs], dtype=str),
        session=np.array([s.session for s in segs], dtype=str),
        action=np.array([s.action for s in segs], dtype=str),
        activity=np.array([labels["activity"].index(s.action) for s in segs], np.int64),
        domain=np.array([labels["domain"].index(s.domain) for s in segs], np.int64),
    )


def read_all(raw_dir: Path, cfg: PreprocessConfig, workers: int, progress: bool) -> list[FileResult]:
    files = find_logs(raw_dir)
    # disable=None: the bar shows on a terminal only
    bar = dict(total=len(files), desc="reading logs", unit="file", disable=None if progress else True)
    if workers <= 1:
        return [process_file(f, raw_dir, cfg) for f in tqdm(files, **bar)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        jobs = pool.map(process_file, files, [raw_dir] * len(files), [cfg] * len(files), chunksize=4)
        return list(tqdm(jobs, **bar))


def read_dirs(dirs: list[Path], cfg: PreprocessConfig, workers: int, progress: bool) -> list[FileResult]:
    """Every raw directory's files; each movement's domain is its directory's name, and with several
    directories its user is ``name:user`` (users of different data sets stay apart)."""
    names = [d.name for d in dirs]
    if len(set(names)) < len(names):
        raise ValueError(f"raw directories must have different names (each is a domain): {', '.join(names)}")
    results = []
    for d in dirs:
        for r in read_all(d, cfg, workers, progress):
            for s in r.segments:
                s.domain = d.name
                s.user = f"{d.name}:{s.user}" if len(dirs) > 1 else s.user
            r.path = str(Path(d.name) / Path(r.path).relative_to(d)) if len(dirs) > 1 else r.path
            results.append(r)
    return results


def preprocess(
    raw_dir: str | Path | list, out_dir: str | Path, cfg: PreprocessConfig | None = None,
    overwrite: bool = False, workers: int | None = None, progress: bool = True,
) -> dict:
    """Build a data directory from raw logs (one directory, or several merged: one domain each); returns the meta
    dict that was written."""
    t0 = time.perf_counter()
    cfg = cfg or PreprocessConfig()
    dirs = [Path(d) for d in (raw_dir if isinstance(raw_dir, list | tuple) else [raw_dir])]
    raw_dir, out_dir = (dirs[0] if len(dirs) == 1 else dirs[0].parent), Path(out_dir)
    check_output_dir(out_dir, overwrite)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    results = read_dirs(dirs, cfg, workers, progress)
    stats = SegmentStats()
    skipped_rows: Counter = Counter()
    for r in results:
        stats.merge(r.stats)
        skipped_rows.update(r.skipped_rows)
    source = {
        "source_dir": ", ".join(d.name for d in dirs),
        "source_files": [str(Path(r.path).relative_to(raw_dir)) if len(dirs) == 1 else r.path for r in results],
        "rows_read": sum(r.rows for r in results),
        "skipped_rows": dict(skipped_rows),
        "skipped_files": [m for r in results for m in r.messages if m.startswith("skipped file")],
        "dropped_events": dict(stats.dropped_events),
        "candidate_movements": stats.candidates,
        "dropped_movements": dict(stats.dropped_segments),
    }
    segs = [s for r in results for s in r.segments]
    if not segs:
        raise ValueError(nothing_usable_message(", ".join(map(str, dirs)), results, source))
    meta = build_data_dir(segs, out_dir, cfg, source, overwrite)
    meta["messages"] = [m for r in results for m in r.messages]
    meta["seconds"] = round(time.perf_counter() - t0, 2)
    return meta


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n)


def nothing_usable_message(raw_dir: Path | str, results: list[FileResult], source: dict, examples: int = 5) -> str:
    """Why a raw directory gave no movement: skip counts, then up to ``examples`` file (or file:line) reasons."""
    n_skipped = len(source["skipped_files"])
    lines = [f"no usable movements found in {raw_dir}: {_plural(len(results), 'file')} ({n_skipped} skipped "
             f"whole), {_plural(source['rows_read'], 'row')} read"]
    if source["skipped_rows"]:
        lines.append(f"  skipped rows: {_counts(source['skipped_rows'])}")
    if source["rows_read"]:
        dropped = _counts(source["dropped_movements"])
        lines.append(f"  candidate movements (release -> moves -> press): {source['candidate_movements']}"
                     + (f"; dropped: {dropped}" if dropped else ""))
    shown = [m.removeprefix("skipped file: ") for r in results for m in r.messages][:examples]
    lines += [f"  {m}" for m in shown]
    return "\n".join(lines)


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise FileExistsError(f"output directory {out_dir} already exists and is not empty; "
                              "choose a new path or pass --overwrite to replace it")


def build_data_dir(segs: list[Segment], out_dir: Path, cfg: PreprocessConfig, source: dict, overwrite: bool) -> dict:
    """Length policy, user split, scaling fitted on train, features; write atomically."""
    fitted = [_fit_length(s, cfg.max_seq_len, cfg.long_policy) for s in segs]
    n_long = sum(len(s.points) > cfg.max_seq_len for s in segs)
    segs = [s for s in fitted if s is not None]
    for s in segs:
        s.domain = s.domain or source.get("source_dir") or "default"
    users = split_by_domain(segs, cfg)
    split_of = {u: name for name, us in users.items() for u in us}
    by_split = {name: [s for s in segs if split_of[s.user] == name] for name in SPLITS}
    train_P, train_L = pad_paths([s.points for s in by_split["train"]], cfg.max_seq_len)
    dt_bound = cfg.segment.pause_ms if cfg.long_policy == "drop" else cfg.segment.max_duration
    params = fit_params(raw_kinematics(train_P, train_L), cfg.segment.min_distance, cfg.segment.max_distance,
                        dt_bound=dt_bound)
    # activity: the click that ends the movement; domain: the data set
    labels = {"activity": sorted({s.action for s in segs}), "domain": sorted({s.domain for s in segs})}
    arrays = {name: _split_arrays(by_split[name], cfg.max_seq_len, params, labels) for name in SPLITS}
    dropped = dict(source.get("dropped_movements", {}))
    if cfg.long_policy == "drop":
        dropped[f"more than {cfg.max_seq_len} points"] = n_long
    meta = {
        "data_format": DATA_FORMAT,
        "format_version": FORMAT_VERSION,
        "feature_names": list(FEATURE_NAMES),
        "max_seq_len": cfg.max_seq_len,
        "config": _config_dict(cfg),
        **source,
        "dropped_movements": dropped,
        "resampled_movements": n_long if cfg.long_policy == "resample" else 0,
        "users": users,
        "counts": {name: len(arrays[name]) for name in SPLITS},
        "activity_names": labels["activity"],
        "domain_names": labels["domain"],
    }
    write_data_dir(out_dir, arrays, params, meta, overwrite=overwrite)
    return meta


def split_by_domain(segs: list[Segment], cfg: PreprocessConfig) -> dict[str, list[str]]:
    """The user split of each domain on its own, merged: every data set has users in every split (a small one
    would otherwise land whole in one split). One domain: exactly the plain user split."""
    domains = sorted({s.domain for s in segs})
    parts = [split_users([s.user for s in segs if s.domain == d], cfg.val_frac, cfg.test_frac, cfg.seed)
             for d in domains]
    return {name: sorted(u for p in parts for u in p[name]) for name in SPLITS}


def _config_dict(cfg: PreprocessConfig) -> dict:
    d = asdict(cfg)
    d["segment"] = asdict(cfg.segment)
    return d
