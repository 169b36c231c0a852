"""Streaming-fidelity client: hold N concurrent SSE streams and measure their timing.

One Locust process cannot drive thousands of streams on two cores; this client can, because it
is a raw ``asyncio.Protocol`` per connection on uvloop that only counts SSE event ends. Each
connection sends a streaming chat request, reads it to the end, and sends the next one, until
the run ends. It reports:

- TTFT: request sent -> first read carrying a token (a content delta);
- ITL: the gap between consecutive reads that carry tokens (a server step, as written),
  for reads after the ramp;
- its own lag: how late a 5 ms ticker on the client's loop wakes up, so that a slow client is
  never mistaken for a slow server.

    python bench/stream_client.py --port 8080 --streams 1000 --seconds 8 --tokens 50

prints one JSON object (and ``--itl-ms`` is only used to report the error from that target).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import resource
import socket
import time
from typing import Any

import uvloop

now = time.perf_counter
#: A content delta, as compact JSON (fastmock, most servers) or json.dumps' default spacing.
CONTENT = (b'"delta":{"content":', b'"delta": {"content": ')


def request_bytes(port: int, model: str, tokens: int) -> bytes:
    body = json.dumps({"model": model, "stream": True, "max_tokens": tokens,
                       "messages": [{"role": "user", "content": "Tell me a story."}]}).encode()
    return (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (port, len(body), body))


class Results:
    def __init__(self) -> None:
        self.ttft: list[float] = []
        self.gaps: list[float] = []
        self.streams = 0
        self.errors = 0
        self.events = 0


class StreamConn(asyncio.Protocol):
    """One connection running streams back to back; stamps every read that carries a token.

    The work per read is kept to a clock read, two substring tests and an append, so that at
    thousands of streams the client's own delay stays far below the pace it measures (its
    loop lag is reported); the gaps are computed when a stream ends.
    """

    def __init__(self, req: bytes, results: Results, deadline: float, measure_from: float,
                 done: asyncio.Future[None]) -> None:
        self.req = req
        self.results = results
        self.deadline = deadline
        self.measure_from = measure_from
        self.done = done
        self.transport: asyncio.Transport | None = None
        self.sent = 0.0
        self.stamps: list[float] = []
        self.events = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.start()

    def start(self) -> None:
        assert self.transport is not None
        self.sent = now()
        self.stamps = []
        self.transport.write(self.req)

    def data_received(self, data: bytes) -> None:
        t = now()
        if CONTENT[0] in data or CONTENT[1] in data:
            self.stamps.append(t)
        self.events += data.count(b"\n\n")
        if data.endswith(b"0\r\n\r\n"):   # the end of the chunked body: the stream is done
            self.finish(t)

    def finish(self, t: float) -> None:
        r = self.results
        r.streams += 1
        r.events += self.events
        self.events = 0
        stamps = self.stamps
        if stamps:
            start = self.measure_from
            if stamps[0] >= start:
                r.ttft.append(stamps[0] - self.sent)
            r.gaps.extend(b - a for a, b in itertools.pairwise(stamps) if a >= start)
        if t < self.deadline:
            self.start()
        else:
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if now() < self.deadline:
                self.results.errors += 1
            self.done.set_result(None)


async def lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        t = now()
        await asyncio.sleep(0.005)
        lags.append(now() - t - 0.005)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100.0 * len(values)))]


async def run(port: int, streams: int, seconds: float, tokens: int, model: str,
              ramp: float, itl_ms: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    req = request_bytes(port, model, tokens)
    results = Results()
    start = now()
    deadline = start + ramp + seconds
    measure_from = start + ramp
    stop = asyncio.Event()
    lags: list[float] = []
    probe = asyncio.create_task(lag_probe(stop, lags))
    futures: list[asyncio.Future[None]] = []
    for i in range(streams):
        # Spread connection starts over the ramp so due times are spread like real traffic.
        target = start + ramp * i / max(1, streams)
        delay = target - now()
        if delay > 0:
            await asyncio.sleep(delay)
        done: asyncio.Future[None] = loop.create_future()
        futures.append(done)
        sock = socket.socket()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            await loop.create_connection(
                lambda d=done: StreamConn(req, results, deadline, measure_from, d), sock=sock)
        except OSError:
            results.errors += 1
            done.set_result(None)
    await asyncio.wait(futures, timeout=seconds + ramp + 30)
    stop.set()
    await probe
    gaps_ms = [g * 1000.0 for g in results.gaps]
    target = itl_ms
    return {
        "streams": streams,
        "completed_streams": results.streams,
        "errors": results.errors,
        "events": results.events,
        "ttft_ms_p50": round(pct([t * 1000 for t in results.ttft], 50), 3),
        "ttft_ms_p99": round(pct([t * 1000 for t in results.ttft], 99), 3),
        "itl_ms_p50": round(pct(gaps_ms, 50), 3),
        "itl_ms_p99": round(pct(gaps_ms, 99), 3),
        "itl_ms_p1": round(pct(gaps_ms, 1), 3),
        "itl_ms_max": round(max(gaps_ms), 3) if gaps_ms else None,
        "itl_samples": len(gaps_ms),
        "itl_abs_error_ms_p99": round(pct([abs(g - target) for g in gaps_ms], 99), 3),
        "client_lag_ms_p99": round(pct([lg * 1000 for lg in lags], 99), 3),
        "client_lag_ms_max": round(max(lags) * 1000, 3) if lags else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--streams", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=6.0, help="measured time after the ramp")
    p.add_argument("--ramp", type=float, default=1.0, help="time to open all connections")
    p.add_argument("--tokens", type=int, default=50, help="max_tokens of each stream")
    p.add_argument("--itl-ms", type=float, default=20.0, help="the server's itl, for errors")
    p.add_argument("--model", default="gpt-4o-mini")
    args = p.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    random.seed(0)
    out = uvloop.run(run(args.port, args.streams, args.seconds, args.tokens, args.model,
                         args.ramp, args.itl_ms))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
