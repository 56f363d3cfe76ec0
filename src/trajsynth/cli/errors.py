"""The command line's expected failures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..utils.atomic import WriteError
from ..utils.checks import WrongTypeError

# What the library raises for bad input (ConfigError, CheckpointError, RawFormatError are ValueErrors;
# WrongTypeError is the API's TypeError). Any other exception is a bug and keeps its traceback.
EXPECTED = (ValueError, WrongTypeError)


class CliError(Exception):
    """An expected failure: printed as one line, exit status 2 (or .code)."""

    def __init__(self, msg: str, code: int = 2):
        super().__init__(msg)
        self.code = code


def os_error_message(e: OSError) -> str:
    """An operating-system error in words: our own messages as they are, the system's with the path first."""
    if e.errno is None or e.filename is None:
        return str(e)
    path = Path(e.filename)
    kind = OSError(e.errno, e.strerror or "")  # the subclass Python gives this errno: PermissionError, ...
    if isinstance(kind, PermissionError):
        if path.exists() and not os.access(path, os.R_OK):
            return f"cannot read {path}: permission denied"
        folder = path if path.is_dir() else path.parent
        return f"cannot write to {folder}: permission denied"
    if isinstance(kind, (NotADirectoryError, FileExistsError)):
        blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        if blocking is not None:
            return f"cannot write to {path}: {blocking} is a file, not a folder"
    if isinstance(e, WriteError):  # "cannot write PATH: No space left on device"
        return str(e)
    return f"{path}: {(e.strerror or 'failed').lower()}"


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit after a closed pipe prints nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
