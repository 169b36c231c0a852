"""``make soak``: minutes of mixed load with many streams cut short, then check that the
server's RSS and open file descriptors come back to where they were.

    python bench/soak.py [--minutes 3] [--http httptools]

The baseline is taken after a short warm-up (the first requests allocate caches that stay),
the end level after the load stops and the connections close. It fails (exit 1) when the
descriptors do not return to the baseline or RSS ends more than --rss-slack-mb above it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parent.parent
BODIES = [
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    {"model": "paced", "messages": [{"role": "user", "content": "tell me"}], "stream": True},
    {"model": "deepseek-reasoner", "messages": [{"role": "user", "content": "why"}],
     "stream": True, "stream_options": {"include_usage": True}},
    {"model": "paced", "input": "stream me", "stream": True},
]
PATHS = ["/v1/chat/completions", "/v1/chat/completions", "/v1/chat/completions",
         "/v1/responses"]


def level(pid: int) -> tuple[float, int]:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss / 1024.0, len(os.listdir(f"/proc/{pid}/fd"))


async def client(port: int, deadline: float, counts: dict[str, int]) -> None:
    while time.monotonic() < deadline:
        i = random.randrange(len(BODIES))
        body = json.dumps(BODIES[i]).encode()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: %d\r\n\r\n%s" % (PATHS[i].encode(), len(body), body))
            await writer.drain()
            if BODIES[i].get("stream") and random.random() < 0.6:
                # read a little, then vanish mid-stream (half abort, half close)
                await reader.read(random.randint(1, 4000))
                if random.random() < 0.5:
                    writer.transport.abort()
                else:
                    writer.close()
                counts["cut"] += 1
            else:
                while await reader.read(65536):
                    if time.monotonic() > deadline + 30:
                        break
                    if reader.at_eof():
                        break
                writer.close()
                counts["whole"] += 1
        except OSError:
            counts["errors"] += 1
        else:
            # close the keep-alive connection of whole replies too
            writer.close()


async def load(port: int, seconds: float, clients: int) -> dict[str, int]:
    counts = {"whole": 0, "cut": 0, "errors": 0}
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(client(port, deadline, counts) for _ in range(clients)))
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--http", default="httptools", choices=["httptools", "h11"])
    ap.add_argument("--rss-slack-mb", type=float, default=8.0)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ROOT / "bench" / "out" / "soak.toml"
    config.parent.mkdir(exist_ok=True)
    config.write_text('log_level = "warning"\nkeepalive_timeout_s = 2\n'
                      '[models."paced"]\nitl_ms = 10\nmode = "lorem"\nlorem_tokens = 60\n')
    proc = subprocess.Popen([sys.executable, "-m", "fastmock", "--port", str(port), "--http",
                             args.http, "--config", str(config)], cwd=ROOT,
                            stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        warm = uvloop.run(load(port, 10, args.clients))
        time.sleep(4)                        # idle keep-alive connections close (2 s)
        rss0, fds0 = level(proc.pid)
        print(f"baseline after warm-up {warm}: RSS {rss0:.1f} MB, {fds0} fds", flush=True)
        counts = uvloop.run(load(port, args.minutes * 60, args.clients))
        time.sleep(4)
        rss1, fds1 = level(proc.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats") as r:
            stats = json.loads(r.read())
        print(f"after {args.minutes:g} min {counts}: RSS {rss1:.1f} MB, {fds1} fds")
        print(f"server: {json.dumps(stats)}")
        ok = fds1 <= fds0 and rss1 <= rss0 + args.rss_slack_mb \
            and stats["pacing"]["streams"]["active"] == 0
        print("soak: OK" if ok else "soak: FAILED (descriptors or memory did not come back)")
        return 0 if ok else 1
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
