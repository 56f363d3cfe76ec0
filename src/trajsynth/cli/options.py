"""What every command shares in its options: counts checked while parsing, defaults shown in ``--help``."""

from __future__ import annotations

import argparse
from typing import Any


class _ShowDefaults:
    """Append "(default: X)" to an option's help unless it says its default already or has none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text, d = action.help or "", action.default
        if (d is None or d is False or d is argparse.SUPPRESS or d == [] or "default" in text
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


class HelpFormatter(_ShowDefaults, argparse.HelpFormatter):
    """Wrapped description, defaults shown."""


class RawHelpFormatter(_ShowDefaults, argparse.RawDescriptionHelpFormatter):
    """Description kept as written (line breaks are part of it), defaults shown."""


def add_command(sub: argparse._SubParsersAction, name: str, raw: bool = False, **kw: Any) -> argparse.ArgumentParser:
    """A sub-command whose ``--help`` shows every option's default."""
    return sub.add_parser(name, formatter_class=RawHelpFormatter if raw else HelpFormatter, **kw)


class AtLeast(argparse.Action):
    """An integer option checked while parsing: ``--n must be >= 1, got -5``."""

    def __init__(self, option_strings, dest, minimum: int = 1, **kw: Any):
        self.minimum = minimum
        super().__init__(option_strings, dest, **kw)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            value = int(values)
        except ValueError:
            _fail(parser, f"{option_string} must be a whole number, got {values!r}")
        if value < self.minimum:
            _fail(parser, f"{option_string} must be >= {self.minimum}, got {value}")
        setattr(namespace, self.dest, value)


def _fail(parser: argparse.ArgumentParser, message: str) -> None:
    """One line and exit status 2, like argparse's own errors but without the usage: the value is what is wrong."""
    parser.exit(2, f"{parser.prog}: error: {message}\n")


def add_count(p: argparse.ArgumentParser, *flags: str, minimum: int = 1, **kw: Any) -> argparse.Action:
    """An integer option that must be >= ``minimum`` (counts: 1, seeds: 0)."""
    return p.add_argument(*flags, action=AtLeast, minimum=minimum, **kw)


def add_seed(p: argparse.ArgumentParser, *flags: str, **kw: Any) -> argparse.Action:
    """A random seed: a non-negative integer."""
    return add_count(p, *(flags or ("--seed",)), minimum=0, **kw)


def add_candidates(p: argparse.ArgumentParser) -> argparse.Action:
    """``--candidates K``: movements drawn per kept one by an ar_mdn model with a trained critic."""
    return add_count(p, "--candidates", metavar="K", default=None,
                     help="an ar_mdn model trained with critic=true: draw K movements per kept one and keep the "
                          "critic's pick (1: no choice; default: as trained)")
