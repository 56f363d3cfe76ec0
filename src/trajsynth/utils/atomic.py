"""Atomic file and directory writes: write to a temporary sibling, then rename.

A crash (or Ctrl-C) mid-write therefore never leaves a half-written file under
the final name, and readers see either the old content or the new one. A write that fails (read-only
folder, full disk, a file where a folder should be) raises :class:`WriteError`, which names the
output, and leaves no temporary file behind; a process killed mid-write leaves at most a temporary
file ``.<name>.<random>.tmp``, which no reader looks at and which may be deleted.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; finished outputs get the usual permissions (0666 less the umask).
FILE_MODE = 0o666 & ~_umask()

# Test hook: with TRAJSYNTH_TEST_SLOW_WRITES=SECONDS in the environment every atomic write pauses that long
# between its complete temporary file and the rename, so that a test can kill a process inside a write.
# Unset (always, outside tests) it changes nothing.
SLOW_WRITES_ENV = "TRAJSYNTH_TEST_SLOW_WRITES"


class WriteError(OSError):
    """An output that cannot be written; ``str()`` is ``cannot write PATH: REASON``."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` of the enclosed file-system calls into a :class:`WriteError` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as e:
        raise WriteError(e.errno, e.strerror or str(e), str(path)) from e


def make_folder(folder: str | os.PathLike) -> None:
    """``mkdir -p``, where a file in the way is "Not a directory" (not mkdir's misleading "File exists")."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    folder.mkdir(parents=True, exist_ok=True)


def _test_pause() -> None:
    seconds = os.environ.get(SLOW_WRITES_ENV)
    if seconds:
        time.sleep(float(seconds))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` on success.

    The temporary file is removed whatever happens in the block; failures of the folder, the
    temporary file and the rename are :class:`WriteError`, those of the block pass through as they are.
    """
    path = Path(path)
    with writing(path):
        make_folder(path.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with writing(path):
            os.chmod(tmp_path, FILE_MODE)
        yield tmp_path
        _test_pause()
        with writing(path):
            os.replace(tmp_path, path)
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, writing(path):
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def save_npz(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    write_bytes(path, buf.getvalue())


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a directory under a temporary name and move it into place at the end.

    An existing non-empty ``path`` is an error unless ``overwrite`` is set; it is
    then replaced only after the new content is complete.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(
            f"output directory {path} already exists and is not empty; "
            "choose a new path or pass --overwrite to replace it"
        )
    with writing(path):
        make_folder(path.parent)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "content")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
