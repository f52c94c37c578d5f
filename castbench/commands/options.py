"""Options as data. A command's options are a table of :class:`Option` rows and its parser is
made by :func:`add_command`, so an option several commands share is one row, declared once, and
no command repeats the argparse calls that build a parser."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Option:
    """One ``add_argument`` call: the positional name or the flags, and the keyword arguments."""

    flags: tuple[str, ...]
    settings: Mapping[str, Any]


def option(*flags: str, **settings: Any) -> Option:
    """An :class:`Option` written as the ``add_argument`` call it stands for."""
    return Option(flags, settings)


def add_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    options: Iterable[Option] = (),
    **defaults: Any,
) -> argparse.ArgumentParser:
    """The parser of command ``name``: ``summary`` is its line in the parent's help,
    ``description`` opens its own, ``defaults`` (``func``, ``needs_backend``) land in the parsed
    arguments."""
    parser = subparsers.add_parser(name, help=summary, description=description)
    for row in options:
        parser.add_argument(*row.flags, **row.settings)
    parser.set_defaults(**defaults)
    return parser


def add_command_group(
    subparsers: argparse._SubParsersAction,
    name: str,
    summary: str,
    description: str,
    dest: str,
    metavar: str,
) -> argparse._SubParsersAction:
    """A command made of subcommands (``castbench data synth``): the action its subcommands are
    added to; the one chosen is parsed into ``dest`` and one must be."""
    group = add_command(subparsers, name, summary, description)
    return group.add_subparsers(dest=dest, metavar=metavar, required=True)


# Options with the same meaning and help wherever they appear.
JSON_TABLE = option("--json", action="store_true", help="print JSON instead of a table")
JSON_TEXT = option("--json", action="store_true", help="print JSON instead of text")
JSON_ROWS = option("--json", action="store_true", help="print the rows as JSON at the end")
NO_PLOTS = option("--no-plots", action="store_true", help="skip the plots")
