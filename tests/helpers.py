"""Shared test helpers: a fake transport, an h11 client to parse what we send, a live server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import orjson

from fastmock.config import Config
from fastmock.protocol import BaseProtocol
from fastmock.protocol_h11 import H11Protocol
from fastmock.scheduler import Scheduler
from fastmock.state import App

Make = Callable[..., "Rig"]


class FakeTransport:
    """Records writes and flow-control calls; ``peer`` is what get_extra_info reports."""

    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 50000)) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading_paused = False
        self.limits: tuple[int, int] | None = None
        self.peer = peer

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading_paused = True

    def resume_reading(self) -> None:
        self.reading_paused = False

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        self.limits = (high, low)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.peer if name == "peername" else default

    def take(self) -> bytes:
        out = b"".join(self.written)
        self.written.clear()
        return out


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A protocol wired to a fake transport and a hand-driven scheduler on a fake clock."""

    config: Config = field(default_factory=Config)
    handler: type[BaseProtocol] = H11Protocol
    clock: FakeClock = field(default_factory=FakeClock)
    peer: tuple[str, int] = ("127.0.0.1", 50000)

    def __post_init__(self) -> None:
        self.scheduler = Scheduler(self.clock, None)
        self.app = App(self.config, self.scheduler.stats)
        self.connections = self.app.connections
        self.transport = FakeTransport(self.peer)
        self.proto = self.handler(self.app, self.scheduler, self.connections)
        self.proto.connection_made(self.transport)  # type: ignore[arg-type]

    def feed(self, data: bytes) -> bytes:
        self.proto.data_received(data)
        return self.transport.take()

    def advance(self, seconds: float) -> bytes:
        self.clock.now += seconds
        self.scheduler.tick()
        return self.transport.take()


def request_bytes(method: str, path: str, body: Any = None, headers: list[tuple[str, str]]
                  | None = None, http10: bool = False) -> bytes:
    """Serialise a request (a body given as an object is sent as JSON, with its length)."""
    data = b"" if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
    hdrs = [("host", "test")] + (headers or [])
    if body is not None and not any(k.lower() == "content-length" for k, _ in hdrs):
        hdrs.append(("content-length", str(len(data))))
    version = "1.0" if http10 else "1.1"
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
    return head.encode() + b"\r\n" + data


@dataclass
class Parsed:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def parse_responses(data: bytes, count: int = 1, method: bytes = b"POST") -> list[Parsed]:
    """Parse ``count`` responses from raw bytes with an h11 client; fail on any framing error."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    out: list[Parsed] = []
    for _ in range(count):
        client.send(h11.Request(method=method, target="/", headers=[("host", "t")]))
        client.send(h11.EndOfMessage())
        resp: h11.Response | None = None
        body = b""
        while True:
            event = client.next_event()
            if event is h11.NEED_DATA:
                raise AssertionError(f"incomplete response; got {data[:300]!r}")
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                resp = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        assert resp is not None
        out.append(Parsed(resp.status_code, dict(resp.headers), body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return out


def sse_events(body: bytes) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order; asserts the blank-line framing."""
    assert body.endswith(b"\n\n"), body[-100:]
    events = []
    for block in body.decode().split("\n\n")[:-1]:
        lines = block.split("\n")
        data = [ln[len("data: "):] for ln in lines if ln.startswith("data: ")]
        assert data, block
        events.append("\n".join(data))
    return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    proc: subprocess.Popen[str]
    port: int
    startup_line: str

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def running_server(*args: str, env: dict[str, str] | None = None,
                   timeout: float = 20.0) -> Iterator[Server]:
    """Start ``python -m fastmock --port 0 ARGS``; wait for /health by polling; always stop it."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FASTMOCK_")}
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-m", "fastmock", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://[^:]+:(\d+)/", line)
        if not match:
            proc.kill()
            raise AssertionError(f"no startup line: {line!r} {proc.stderr.read()!r}")  # type: ignore[union-attr]
        server = Server(proc, int(match.group(1)), line.strip())
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(server.base + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)
        yield server
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
