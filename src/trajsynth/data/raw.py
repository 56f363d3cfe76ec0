"""Readers for raw mouse-event logs (SapiMouse and Balabit CSV, plain or gzip).

Both formats hold one event per row: a timestamp, a button, a state and the
pointer position. A reader returns an :class:`EventLog` of parallel numpy
arrays plus a :class:`ReadReport` that counts (and shows a few of) the rows it
had to skip, so that one bad line never costs the whole file.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Integer codes for the categorical columns (int8 arrays stay small and fast).
STATES = {"Move": 0, "Drag": 1, "Pressed": 2, "Released": 3, "Down": 4, "Up": 5}
MOVE, DRAG, PRESSED, RELEASED = 0, 1, 2, 3
BUTTONS = {"NoButton": 0, "Left": 1, "Right": 2, "Other": 3, "Scroll": 4, "XButton": 5}
BUTTON_NAMES = {v: k for k, v in BUTTONS.items()}

FORMATS = ("sapimouse", "balabit")
_HEADERS = {
    "sapimouse": ["client timestamp", "button", "state", "x", "y"],
    "balabit": ["record timestamp", "client timestamp", "button", "state", "x", "y"],
}
_MAX_EXAMPLES = 5


class RawFormatError(ValueError):
    """A file that cannot be read at all (unknown header, empty, not CSV)."""


@dataclass
class EventLog:
    """One session's events. Times in milliseconds, positions in pixels."""

    t: np.ndarray  # (E,) float64 ms
    x: np.ndarray  # (E,) float64 px
    y: np.ndarray  # (E,) float64 px
    button: np.ndarray  # (E,) int8 code, see BUTTONS
    state: np.ndarray  # (E,) int8 code, see STATES

    def __len__(self) -> int:
        return len(self.t)

    def select(self, keep: np.ndarray) -> EventLog:
        return EventLog(self.t[keep], self.x[keep], self.y[keep], self.button[keep], self.state[keep])


@dataclass
class ReadReport:
    """What a reader skipped, with up to a few examples naming file and line."""

    path: str
    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    truncated: bool = False

    def skip(self, reason: str, line_no: int | None = None, detail: str = "") -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < _MAX_EXAMPLES:
            where = f"{self.path}:{line_no}" if line_no is not None else self.path
            self.examples.append(f"{where}: {reason}{' (' + detail + ')' if detail else ''}")


def detect_format(header: str, path: str | Path = "<input>") -> str:
    """Name the log format from a CSV header line (a UTF-8 byte-order mark before it is ignored)."""
    cols = [c.strip().lower() for c in header.strip().lstrip("\ufeff").split(",")]
    for name, expected in _HEADERS.items():
        if cols == expected:
            return name
    raise RawFormatError(
        f"{path}: unknown header {header.strip()!r}; expected one of "
        + " | ".join(",".join(h) for h in _HEADERS.values())
    )


def _read_text(path: Path, report: ReadReport) -> str:
    """Whole file as text; a truncated gzip keeps what could be decompressed."""
    raw = path.read_bytes()
    if not raw.startswith(b"\x1f\x8b"):
        return raw.decode("utf-8", errors="replace")
    try:
        return gzip.decompress(raw).decode("utf-8", errors="replace")
    except (EOFError, OSError, zlib.error):
        report.truncated = True
        report.skip("truncated or corrupt gzip stream; kept the part that decompressed")
        out = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = out.decompress(raw)
        except zlib.error:
            text = b""
        text = text.decode("utf-8", errors="replace")
        return text[: text.rfind("\n") + 1]  # drop a partial last line


def read_log(path: str | Path, fmt: str = "auto") -> tuple[EventLog, ReadReport]:
    """Read one SapiMouse or Balabit CSV file (``.csv`` or ``.csv.gz``)."""
    path = Path(path)
    report = ReadReport(str(path))
    text = _read_text(path, report)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise RawFormatError(f"{path}: file is empty (no header line)")
    found = detect_format(lines[0], path)
    if fmt != "auto" and fmt != found:
        raise RawFormatError(f"{path}: header is {found} format but --format {fmt} was given")
    return _parse_rows(lines, found, report), report


def _parse_rows(lines: list[str], fmt: str, report: ReadReport) -> EventLog:
    n_cols = len(_HEADERS[fmt])
    t_col, scale = (1, 1000.0) if fmt == "balabit" else (0, 1.0)
    t, x, y, b, s = [], [], [], [], []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) != n_cols:
            report.skip("wrong number of fields", line_no, f"{len(parts)} instead of {n_cols}")
            continue
        button, state = BUTTONS.get(parts[-4].strip()), STATES.get(parts[-3].strip())
        if button is None or state is None:
            report.skip("unknown button or state", line_no, f"{parts[-4]!r}, {parts[-3]!r}")
            continue
        try:
            ti, xi, yi = float(parts[t_col]) * scale, float(parts[-2]), float(parts[-1])
            if not (math.isfinite(ti) and math.isfinite(xi) and math.isfinite(yi)):  # float() accepts 'nan', 'inf'
                raise ValueError
        except ValueError:
            report.skip("non-numeric timestamp or position", line_no)
            continue
        t.append(ti), x.append(xi), y.append(yi), b.append(button), s.append(state)
    report.rows = len(t)
    return EventLog(
        np.asarray(t, np.float64), np.asarray(x, np.float64), np.asarray(y, np.float64),
        np.asarray(b, np.int8), np.asarray(s, np.int8),
    )


def find_logs(raw_dir: str | Path) -> list[Path]:
    """All ``*.csv`` / ``*.csv.gz`` files below ``raw_dir``, sorted for determinism."""
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise FileNotFoundError(f"raw data directory {raw_dir} does not exist")
    files = sorted(p for p in raw_dir.rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise FileNotFoundError(f"no .csv or .csv.gz files found below {raw_dir}")
    return files


def user_and_session(path: Path, raw_dir: Path) -> tuple[str, str]:
    """User id = first folder below the raw dir (``user12``); session = file stem."""
    rel = path.relative_to(raw_dir)
    user = rel.parts[0] if len(rel.parts) > 1 else "unknown"
    if len(rel.parts) > 2 and rel.parts[0] in ("training_files", "test_files"):
        user = rel.parts[1]
    session = path.name.removesuffix(".gz").removesuffix(".csv")
    return user, session
