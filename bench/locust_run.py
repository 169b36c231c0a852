"""``make bench-locust``: start fastmock on core 0, run Locust headless on core 1, stop.

    python bench/locust_run.py [--users 100] [--seconds 30] [--user MixedUser]

Writes bench/out/locust_*.csv and bench/out/locust.html.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import run
from run import FASTMOCK_TOML, LOAD_CORE, OUT, PY

BENCH = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--user", default="MixedUser",
                    choices=["MixedUser", "StreamUser", "NonStreamUser"])
    ap.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    toml = Path(tempfile.mkdtemp(prefix="fastmock-locust-")) / "fastmock.toml"
    toml.write_text(FASTMOCK_TOML)
    run.TOML = toml
    peer = run.fastmock(f"fastmock {args.http}", "--http", args.http)()
    peer.start()
    try:
        import subprocess
        subprocess.run([*LOAD_CORE, PY, "-m", "locust", "-f", str(BENCH / "locustfile.py"),
                                    "--headless", "-u", str(args.users), "-r", str(args.users),
                                    "-t", f"{args.seconds}s", "--host", peer.base,
                                    "--csv", str(OUT / "locust"), "--html",
                                    str(OUT / "locust.html"), args.user], check=True)
    finally:
        peer.stop()
    print(f"reports: {OUT}/locust_stats.csv, {OUT}/locust.html")


if __name__ == "__main__":
    main()
