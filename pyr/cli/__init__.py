"""The ``pyr`` command: ``pyr demo``, ``pyr info``, ``pyr quicklook``.

Bad input ends with exit status 1 (2 for a bad option) and one line on
standard error, ``pyr: error: ...``, naming the file, URL or option at
fault; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["main"]

_EPILOG = "Run 'pyr COMMAND --help' for the options of a command. Add --debug to see tracebacks."


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``pyr: error: ...``."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"pyr: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The ``pyr`` argument parser with its sub-commands."""
    from pyr.cli import demo, info, quicklook

    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")
    parser = _Parser(
        prog="pyr",
        description="pyr: frozen rasters, pure functions, lazy Earth-observation arrays.",
        epilog=_EPILOG,
        parents=[common],
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in (demo, info, quicklook):
        sub = subs.add_parser(
            module.NAME,
            help=module.HELP,
            description=module.DESCRIPTION,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if type(err).__module__.startswith("pyr."):
        return text
    return f"{text} ({type(err).__name__})"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pyr`` command line; returns the exit status.

    Examples
    --------
    >>> main(["info", "no/such/file.tif"])  # prints "pyr: error: Cannot open ..." on stderr
    1
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    debug = bool(getattr(args, "debug", False))
    run: Any = getattr(args, "run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        status: int = run(args)
        return status
    except KeyboardInterrupt:
        if debug:
            raise
        sys.stderr.write("pyr: interrupted\n")
        return 130
    except Exception as err:
        if debug:
            raise
        sys.stderr.write(f"pyr: error: {_one_line(err)}\n")
        return 1
