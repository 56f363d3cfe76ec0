"""The ``trajsynth`` command line: parse arguments, call a library function, report."""

from __future__ import annotations

import argparse
import os
import sys

from ..training import distributed
from ..utils.threads import ENV
from . import data_cmds, eval_cmds, model_cmds, serve_cmds, tune_cmds
from .errors import EXPECTED, CliError, os_error_message, silence_stdout
from .options import add_count

COMMANDS = (data_cmds, model_cmds, eval_cmds, tune_cmds, serve_cmds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trajsynth",
        description="Conditional synthesis of time-series trajectories (human mouse movements first).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    for command in sub.choices.values():
        add_count(command, "--threads", metavar="N", help=f"torch threads (default: 1 for generation, the free "
                                                          f"cores for a batch of 1,024 or more and for training, "
                                                          f"a resumed run's own count; "
                                                          f"also ${ENV}, then $OMP_NUM_THREADS)")
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("trajsynth")
    except PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    """Run one command; an expected failure (bad input, missing or unwritable file) is one line, exit 2."""
    args = build_parser().parse_args(argv)
    before = os.environ.get(ENV)
    if getattr(args, "threads", None):  # the policy functions (and worker processes) read it from here
        os.environ[ENV] = str(args.threads)
    try:
        return _run(args)
    finally:  # main() may be called again in the same process (tests, notebooks)
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before


def entry() -> int:
    """The ``trajsynth`` console script and ``python -m trajsynth``: ``main``, then a rank of a multi-process
    torchrun launch ends at once (:func:`~trajsynth.training.distributed.end_process`)."""
    code = main()
    if distributed.multi_process():
        distributed.end_process(code)
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except EXPECTED as e:  # bad values and wrong types: ConfigError, CheckpointError, RawFormatError, ...
        print(f"error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader stopped early (`trajsynth summarize | head`): nothing went wrong here
        silence_stdout()
        return 141
    except OSError as e:  # FileNotFoundError, FileExistsError, PermissionError, a full disk, ...
        print(f"error: {os_error_message(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())
