"""``make bench-locust``: the Locust suite (``bench/locustfile.py``), headless, against any
OpenAI-compatible server.

    python bench/locust_run.py                        # starts a fastmock on core 0 for the run
    python bench/locust_run.py --host http://127.0.0.1:4000 --api-key sk-... --model gpt-4o-mini \\
        --users 200 --seconds 60 --mix chat_stream=3,chat=1 --processes 2
    python bench/locust_run.py --profile my-load.toml -- --csv-full-history

A profile is a TOML file of the same options (``users = 200``, ``mix = "chat_stream=1"``, ...);
flags override it. Anything after ``--`` goes to Locust as it is. Reports go to ``--out``
(bench/out): locust_stats.csv, locust.html, and the LLM metrics locust_llm.csv and
locust_llm.html.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402  (bench/run.py: the peers and their setup)

#: Option -> (default, help); the same names in a profile.
OPTIONS: dict[str, tuple[Any, str]] = {
    "host": ("", "the server to load (default: start a fastmock for the run)"),
    "api_key": ("", "sent as 'Authorization: Bearer'"),
    "model": ("", "the model to ask for (default: paced-20ms on a started fastmock, "
                  "else gpt-4o-mini)"),
    "users": (100, "concurrent users"),
    "spawn_rate": (0, "users started per second (default: all at once)"),
    "seconds": (30, "how long the load runs"),
    "processes": (1, "Locust processes (Locust's --processes; one per core at most)"),
    "mix": ("chat=1,chat_stream=1", "request kinds and weights (see bench/locustfile.py)"),
    "max_tokens": ("20", "N, A:B or normal:MEAN:SD"),
    "prompt_words": ("20:60", "N, A:B or normal:MEAN:SD"),
    "think_time": ("0", "seconds between a user's requests: S or A:B"),
    "shape": ("constant", "constant, ramp, step or spike"),
    "out": (str(run.OUT), "where the reports go"),
    "name": ("locust", "the reports' file prefix"),
}


def parse(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The options (defaults < profile < flags) and the arguments for Locust itself."""
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", help="a TOML file of these options")
    ap.add_argument("--start-fastmock", action="store_true",
                    help="start a fastmock for the run (the default without --host)")
    ap.add_argument("--http", default="httptools", choices=["httptools", "h11"],
                    help="the started fastmock's HTTP handler")
    ap.add_argument("--ignore-eos", action="store_true",
                    help="send vLLM's ignore_eos, so replies are max_tokens long")
    for name, (default, text) in OPTIONS.items():
        ap.add_argument("--" + name.replace("_", "-"), type=type(default), default=None,
                        help=f"{text} (default: {default!r})")
    args = ap.parse_args(argv)
    opts = {name: default for name, (default, _) in OPTIONS.items()}
    if args.profile:
        profile = tomllib.loads(Path(args.profile).read_text())
        for key, value in profile.items():
            name = key.replace("-", "_")
            if name not in OPTIONS:
                ap.error(f"{args.profile}: unknown option {key!r}")
            opts[name] = value
    for name in OPTIONS:
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    opts["start_fastmock"] = args.start_fastmock or not opts["host"]
    opts["http"] = args.http
    opts["ignore_eos"] = args.ignore_eos
    return opts, extra


def locust_command(host: str, opts: dict[str, Any], prefix: Path, extra: list[str],
                   pin: bool = False) -> list[str]:
    users = int(opts["users"])
    cmd = [*(run.LOAD_CORE if pin else []), run.PY, "-m", "locust", "-f",
           str(BENCH / "locustfile.py"), "--headless", "--host", host, "-u", str(users),
           "-r", str(opts["spawn_rate"] or users), "-t", f"{opts['seconds']}s",
           "--csv", str(prefix), "--html", str(prefix) + ".html", "--only-summary",
           "--model", opts["model"], "--mix", opts["mix"], "--max-tokens", str(opts["max_tokens"]),
           "--prompt-words", str(opts["prompt_words"]), "--think-time", str(opts["think_time"]),
           "--shape", opts["shape"], "--llm-out", str(prefix) + "_llm.csv"]
    if int(opts["processes"]) > 1:
        cmd += ["--processes", str(opts["processes"])]
    if opts.get("ignore_eos"):
        cmd.append("--ignore-eos")
    return cmd + extra


def run_locust(host: str, opts: dict[str, Any], prefix: Path, extra: list[str] = (),  # type: ignore[assignment]
               pin: bool = False) -> Path:
    """Run the load; the LLM metrics CSV it wrote. The API key goes by environment (not on a
    command line other local users can read)."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LOCUST_API_KEY": opts["api_key"]}
    subprocess.run(locust_command(host, opts, prefix, list(extra), pin), check=True, env=env,
                   timeout=int(opts["seconds"]) + 120)
    return Path(str(prefix) + "_llm.csv")


def main() -> None:
    opts, extra = parse(sys.argv[1:])
    out = Path(opts["out"])
    peer = None
    host = opts["host"]
    if opts["start_fastmock"]:
        toml = Path(tempfile.mkdtemp(prefix="fastmock-locust-")) / "fastmock.toml"
        toml.write_text(run.FASTMOCK_TOML)
        run.TOML = toml
        peer = run.fastmock(f"fastmock {opts['http']}", "--http", opts["http"])()
        assert peer is not None
        peer.start()
        host = peer.base
        opts["model"] = opts["model"] or "paced-20ms"
    opts["model"] = opts["model"] or "gpt-4o-mini"
    try:
        llm = run_locust(host, opts, out / opts["name"], extra,
                         pin=peer is not None and int(opts["processes"]) == 1)
    finally:
        if peer is not None:
            peer.stop()
    print(f"reports: {out}/{opts['name']}_stats.csv, {out}/{opts['name']}.html, {llm}, "
          f"{llm.with_suffix('.html')}")


if __name__ == "__main__":
    main()
