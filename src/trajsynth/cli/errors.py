"""The command line's expected failures."""

from __future__ import annotations


class CliError(Exception):
    """An expected failure: printed as one line, exit status 2 (or .code)."""

    def __init__(self, msg: str, code: int = 2):
        super().__init__(msg)
        self.code = code
