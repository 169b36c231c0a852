"""Command line: argparse → Config, then run. No logic beyond that."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import OPTIONS, ConfigError, load


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastmock",
        description="A fast mock of the OpenAI API. Every option is also an environment "
                    "variable (FASTMOCK_<NAME>) and a TOML key (<name>); "
                    "precedence: flag > environment > file > default.",
        argument_default=argparse.SUPPRESS,
        # A width given spares argparse importing shutil (and its compressors) to ask the
        # terminal, at every start: a few milliseconds.
        formatter_class=lambda prog: argparse.HelpFormatter(
            prog, width=min(120, int(os.environ.get("COLUMNS", "100"))) - 2))
    p.add_argument("--config", metavar="PATH", help="TOML file with options and "
                   "[models.\"<id>\"] tables (env FASTMOCK_CONFIG)")
    p.add_argument("--version", action="version", version=f"fastmock {__version__}")
    for opt in OPTIONS:
        help_text = f"{opt.help} (env {opt.env}; default {opt.default!r})"
        if opt.type is bool:
            p.add_argument(opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction,
                           help=help_text)
        elif opt.type is list:
            p.add_argument(opt.flag, dest=opt.name, action="append", metavar="KEY",
                           help=f"{opt.help} (env {opt.env})")
        else:
            p.add_argument(opt.flag, dest=opt.name, metavar=opt.name.upper(),
                           choices=opt.choices or None, help=help_text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    config_file = args.pop("config", None)
    try:
        config = load(args, config_file=config_file)
    except ConfigError as exc:
        print(f"fastmock: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s fastmock %(levelname)s %(message)s")
    import uvloop

    from .server import serve
    try:
        return uvloop.run(serve(config))
    except KeyboardInterrupt:
        return 0
