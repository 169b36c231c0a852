"""Command line: flags → Config, then run. No logic beyond that.

Flags are read by hand from the option table (argparse, and the gettext it pulls in, would
hold 0.4 MB of every server's memory); argparse is imported for ``--help`` only.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .config import OPTIONS, WORKER_ENV, ConfigError, Option, load

if TYPE_CHECKING:
    import argparse

DESCRIPTION = ("A fast mock of the OpenAI API. Every option is also an environment variable "
               "(FASTMOCK_<NAME>) and a TOML key (<name>); precedence: flag > environment > "
               "file > default.")


class UsageError(Exception):
    """A command line that cannot be read (one line, as argparse words it)."""


def _flags() -> dict[str, tuple[Option | None, bool]]:
    """Flag -> (its option, the value it stands for when it takes none); --config: None."""
    table: dict[str, tuple[Option | None, bool]] = {"--config": (None, False)}
    for opt in OPTIONS:
        table[opt.flag] = (opt, True)
        if opt.type is list:   # the plural too: --cors-origins a,b as --cors-origin a,b
            table[opt.flag + "s"] = (opt, True)
        if opt.type is bool:
            table["--no-" + opt.flag[2:]] = (opt, False)
    return table


def read_flags(argv: Sequence[str]) -> dict[str, Any]:
    """The options given on the command line (and ``config``): values as strings, as the
    environment gives them, booleans as booleans, lists as lists."""
    table = _flags()
    out: dict[str, Any] = {}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        name, eq, inline = arg.partition("=")
        found = table.get(name)
        if found is None or not name.startswith("--"):
            raise UsageError(f"unrecognized arguments: {arg}")
        opt, flag_value = found
        if opt is not None and opt.type is bool:
            if eq:
                raise UsageError(f"argument {name}: ignored explicit argument {inline!r}")
            out[opt.name] = flag_value
            continue
        if eq:
            value = inline
        elif i < len(args) and not (args[i].startswith("--") and args[i] != "--"):
            value = args[i]
            i += 1
        else:
            raise UsageError(f"argument {name}: expected one argument")
        if opt is None:
            out["config"] = value
        elif opt.type is list:
            out.setdefault(opt.name, []).append(value)
        else:
            if opt.choices and value not in opt.choices:
                raise UsageError(f"argument {name}: invalid choice: {value!r} (choose from "
                                 + ", ".join(map(repr, opt.choices)) + ")")
            out[opt.name] = value
    return out


def parser() -> argparse.ArgumentParser:
    """The same flags for ``--help`` (and its listing of every option)."""
    import argparse

    p = argparse.ArgumentParser(
        prog="fastmock", description=DESCRIPTION, argument_default=argparse.SUPPRESS,
        # A width given spares argparse importing shutil to ask the terminal.
        formatter_class=lambda prog: argparse.HelpFormatter(
            prog, width=min(120, int(os.environ.get("COLUMNS", "100"))) - 2))
    p.add_argument("--config", metavar="PATH", help="TOML file with options and "
                   "[models.\"<id>\"] tables (env FASTMOCK_CONFIG)")
    p.add_argument("--version", action="version", version=f"fastmock {__version__}")
    for opt in OPTIONS:
        choices = f"one of {', '.join(opt.choices)}; " if opt.choices else ""
        help_text = f"{opt.help} ({choices}env {opt.env}; default {opt.default!r})"
        if opt.type is bool:
            p.add_argument(opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction,
                           help=help_text)
        elif opt.type is list:
            p.add_argument(opt.flag, opt.flag + "s", dest=opt.name, action="append",
                           metavar="VALUE", help=f"{opt.help} (env {opt.env})")
        else:
            p.add_argument(opt.flag, dest=opt.name, metavar=opt.name.upper(),
                           choices=opt.choices or None, help=help_text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server (or the workers' supervisor) as the command line says; the exit code.

    The start runs without the cyclic collector: its imports and the replies it frames
    allocate some 27,000 tracked objects, and the collections they set off cost 3.9 % of its
    instructions to listening (callgrind; 3.7 ms of main to listening; bench/RESULTS.md).
    Once the server listens, what it built lives as long as the process: it is frozen out of
    the collector (``gc.freeze``: later collections never walk it again) and the collector is
    on from then (``_listening``). The start's own cycles stay with it, frozen: about 500
    objects.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    finally:
        (gc.enable if collecting else gc.disable)()   # (listening turned it on)


def _listening(line: str) -> None:
    gc.freeze()
    gc.enable()


def _run(argv: Sequence[str]) -> int:
    if "--help" in argv or "-h" in argv:
        parser().print_help()
        return 0
    if "--version" in argv:
        print(f"fastmock {__version__}")
        return 0
    try:
        args = read_flags(argv)
        config_file = args.pop("config", None)
        config = load(args, config_file=config_file)
    except (UsageError, ConfigError) as exc:
        print(f"fastmock: error: {exc}", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s fastmock %(levelname)s %(message)s")
    if config.workers != "1" and WORKER_ENV not in os.environ:
        from . import workers

        count = workers.count(config.workers)
        if count > 1:
            gc.enable()   # (the supervisor lives on without serving)
            return workers.supervise(config, argv, count)
    from .loop import load_uvloop

    uvloop = load_uvloop()
    from .server import serve
    try:
        return uvloop.run(serve(config, on_ready=_listening))
    except KeyboardInterrupt:
        return 0
