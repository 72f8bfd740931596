"""The ``trainlab`` command line.

One module per command in this package (``run.py``, ``listing.py``, ...). A command module
defines ``NAME``, ``HELP`` (one line), ``add_arguments(parser)`` and ``main(args) -> int``; its
docstring (with an ``Example:`` block) becomes the command's ``--help`` description. Modules
are discovered automatically, so adding a command is adding one file.

A :class:`~trainlab.errors.TrainlabError` (unknown name, bad value, malformed config) or an
``OSError`` (a path that cannot be read or written) is printed as one line without a
traceback and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from trainlab import __version__
from trainlab.errors import TrainlabError


def command_modules() -> list[ModuleType]:
    mods = []
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainlab",
        description="Choose, watch, explain and reproduce the initial conditions and gradient "
                    "dynamics of neural-network training.",
    )
    parser.add_argument("--version", action="version", version=f"trainlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 0
    try:
        return int(args._main(args) or 0)
    except TrainlabError as exc:
        print(f"trainlab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"trainlab {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C during `run` (the first stops cleanly)
        print(f"trainlab {args.command}: stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
