"""``make bench-cost``: instructions per request (callgrind), fastmock beside the prototype.

Wall-clock figures on a shared machine drift by tens of percent within seconds; instruction
counts do not. Each case feeds the same request bytes, again and again, to one connection's
protocol object through a transport that drops what is written (no sockets, no syscalls), and
callgrind counts the instructions of N and of 5N requests: the difference over 4N is the cost
of one request in Python and the C it calls, without the kernel's share. N defaults to 1024,
so that the 4N requests measured include exactly one of fastmock's id batches (4096 ids are
formatted at a time). Needs valgrind.

    python bench/cost.py [--requests 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROTOTYPE = ROOT.parent / "shared" / "reference" / "prototype"

BODIES = {
    "chat": b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are you?"}]}',
    "stream16": b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}],'
                b'"stream":true,"max_tokens":16}',
    "varied": b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, how are '
              b'you? This is request number %d."}]}',
}
KEY = b"Authorization: Bearer sk-bench-key-0007\r\n"
TWENTY_KEYS: dict[str, Any] = {"api_keys": tuple(f"sk-bench-key-{i:04d}" for i in range(20))}
#: Trouble configured but idle: faults at rate 0, and rate limits far above the load (every
#: reply carries its six x-ratelimit-* headers).
IDLE_TROUBLE: dict[str, Any] = {"faults": "429:0,500:0,drop:0", "rpm": 100_000_000,
                                "tpm": 100_000_000_000}
#: case -> (server, body, extra header, fastmock settings)
CASES: dict[str, tuple[str, str, bytes, dict[str, Any]]] = {
    "chat, prototype": ("proto_httptools", "chat", b"", {}),
    "chat, fastmock": ("httptools", "chat", b"", {}),
    "chat h11, prototype": ("proto_h11", "chat", b"", {}),
    "chat h11, fastmock": ("h11", "chat", b"", {}),
    "stream16, prototype": ("proto_httptools", "stream16", b"", {}),
    "stream16, fastmock": ("httptools", "stream16", b"", {}),
    "varied, prototype": ("proto_httptools", "varied", b"", {}),
    "varied, fastmock": ("httptools", "varied", b"", {}),
    "chat with a key header, no keys": ("httptools", "chat", KEY, {}),
    "chat with a key header, 20 keys": ("httptools", "chat", KEY, TWENTY_KEYS),
    "chat, trouble configured at rate 0": ("httptools", "chat", b"", IDLE_TROUBLE),
}


def request(body: bytes, extra: bytes) -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            b"Content-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s"
            % (extra, len(body), body))


#: Requests read in one turn of the event loop. Under wrk with 64 connections, a server with
#: rate limits saw 52 on average (116,293 requests, 2,227 turns that settled the limits).
TURN = 32


def drive(case: str, n: int) -> None:
    """Run ``n`` requests of ``case`` in this process (what callgrind measures)."""
    turn_ends: list[Callable[[], object]] = []
    server, body_name, extra, settings = CASES[case]
    body = BODIES[body_name]
    datas = [request(body % i if b"%d" in body else body, extra) for i in range(n)]

    class Sink:
        def write(self, data: bytes) -> None: ...
        def close(self) -> None: ...
        def is_closing(self) -> bool: return False
        def pause_reading(self) -> None: ...
        def resume_reading(self) -> None: ...
        def set_write_buffer_limits(self, high: int, low: int) -> None: ...
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return ("127.0.0.1", 50000) if name == "peername" else default

    if server.startswith("proto_"):
        sys.path.insert(0, str(PROTOTYPE))
        module = __import__(server)
        proto = (module.HttptoolsProtocol if "httptools" in server else module.H11Protocol)()
    else:
        sys.path.insert(0, str(ROOT))   # this tree's fastmock, not an installed one
        from fastmock.config import Config
        from fastmock.protocol_h11 import H11Protocol
        from fastmock.protocol_httptools import HttpToolsProtocol
        from fastmock.scheduler import Scheduler
        from fastmock.state import App
        config = Config(**settings)
        scheduler = Scheduler(time.monotonic, None)
        app = App(config, scheduler.stats, turn_ends.append)
        handler = HttpToolsProtocol if server == "httptools" else H11Protocol
        proto = handler(app, scheduler, app.connections)
    proto.connection_made(Sink())
    feed = proto.data_received
    for i, data in enumerate(datas):
        feed(data)
        if i % TURN == TURN - 1:   # the loop's turn ends: what was left for then runs
            for then in turn_ends:
                then()
            turn_ends.clear()


def instructions(case: str, n: int) -> int:
    # A fixed hash seed: the layout of dicts and sets (and so a few hundred instructions per
    # request) would otherwise change from one process to the next.
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          sys.executable, __file__, "--drive", case, "--requests", str(n)],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1))  # type: ignore[union-attr]


def measure(n: int, say: Callable[[str], None] = print) -> dict[str, int]:
    """Instructions per request of every case (the prototype's when it is there)."""
    results = {}
    for case in CASES:
        if case.endswith("prototype") and not PROTOTYPE.is_dir():
            continue
        per = (instructions(case, 5 * n) - instructions(case, n)) / (4 * n)
        results[case] = round(per)
        say(f"{case:40s} {per:10,.0f} instructions per request")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=1024)
    ap.add_argument("--drive", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.drive:
        drive(args.drive, args.requests)
        return
    if not shutil.which("valgrind"):
        sys.exit("bench/cost.py needs valgrind (apt-get install valgrind)")
    results = measure(args.requests, lambda line: print(line, flush=True))
    (ROOT / "bench" / "out").mkdir(exist_ok=True)
    (ROOT / "bench" / "out" / "cost.json").write_text(json.dumps(results, indent=1))

if __name__ == "__main__":
    main()
