"""Every limit and every bad input ends cleanly, on both HTTP handlers."""

from __future__ import annotations

import signal
import socket
import time

import orjson
import pytest

from fastmock.config import Config
from helpers import Make, parse_responses, request_bytes, running_server, sse_events

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def later(seconds: float) -> float:
    return time.monotonic() + seconds


def test_connections_over_the_limit_get_503(make: Make) -> None:
    rig = make(Config(max_connections=1))
    extra = rig.handler(rig.app, rig.scheduler, rig.connections)
    from helpers import FakeTransport
    transport = FakeTransport()
    extra.connection_made(transport)  # type: ignore[arg-type]
    (resp,) = parse_responses(transport.take(), method=b"GET")
    assert resp.status == 503 and resp.headers[b"retry-after"] == b"1"
    assert resp.json()["error"]["code"] == "too_many_connections" and transport.closed
    assert len(rig.connections.open) == 1 and rig.app.counters.rejected == 1
    extra.connection_lost(None)
    assert len(rig.connections.open) == 1


def test_too_many_header_fields_is_431(make: Make) -> None:
    rig = make(Config(max_headers=10))
    headers = [(f"x-h{i}", "v") for i in range(20)]
    (resp,) = parse_responses(rig.feed(request_bytes("GET", "/health", headers=headers)),
                              method=b"GET")
    assert resp.status == 431 and rig.transport.closed


def test_slow_request_gets_408(make: Make) -> None:
    rig = make(Config(request_timeout_s=5))
    body = orjson.dumps(CHAT)
    head = request_bytes("POST", "/chat/completions", None,
                         [("content-length", str(len(body)))])
    assert rig.feed(head + body[:10]) == b""             # the body stops half way
    rig.connections.sweep(later(1))
    assert not rig.transport.closed                      # not yet
    rig.connections.sweep(later(6))
    (resp,) = parse_responses(rig.transport.take())
    assert resp.status == 408 and resp.headers[b"connection"] == b"close"
    assert rig.transport.closed and rig.app.counters.timeouts == 1


def test_idle_keep_alive_closes_silently(make: Make) -> None:
    rig = make(Config(keepalive_timeout_s=10, request_timeout_s=5))
    rig.feed(request_bytes("GET", "/health"))
    rig.connections.sweep(later(8))                      # past the request timeout: idle is 10
    assert not rig.transport.closed
    rig.connections.sweep(later(11))
    assert rig.transport.closed and rig.transport.take() == b""


def test_fresh_silent_connection_is_closed(make: Make) -> None:
    rig = make(Config(request_timeout_s=5))
    rig.connections.sweep(later(6))
    assert rig.transport.closed and rig.transport.take() == b""


def test_no_deadline_while_replying(make: Make) -> None:
    rig = make(Config(request_timeout_s=1, keepalive_timeout_s=1, itl_ms=1000))
    rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    rig.connections.sweep(later(100))
    assert not rig.transport.closed                      # a long stream is not a slow client


@pytest.mark.parametrize("body", [
    b'{"model": "m", "messages": [{"role": "user", "content": "\xff\xfe"}]}',   # bad UTF-8
    b"[" * 5000 + b"]" * 5000,                                                  # deep nesting
    b'{"model": "m", "messages": [], "n": 1e999}',                              # huge number
    b'{"model": "m", "messages": [{"role": "user", "content": {"a": [1, {"b": null}]}}]}',
    b'{"model": ["m"], "messages": [{"role": "user", "content": "x"}]}',
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 1.5}',
    b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": [{"type": 1}]}',
    b"\x00\x01\x02",
])
def test_bad_json_is_a_400_and_the_connection_lives(make: Make, body: bytes) -> None:
    rig = make()
    out = rig.feed(request_bytes("POST", "/v1/chat/completions", body)
                   + request_bytes("GET", "/health"))
    bad, ok = parse_responses(out, 2)
    assert bad.status == 400 and set(bad.json()["error"]) == {"message", "type", "param", "code"}
    assert ok.status == 200 and not rig.transport.closed


def test_client_that_never_reads_is_not_buffered(make: Make) -> None:
    rig = make(Config(itl_ms=5, mode="lorem", lorem_tokens=200))
    rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    rig.advance(0.0)
    rig.proto.pause_writing()                            # the kernel buffer is full
    for _ in range(50):
        assert rig.advance(0.005) == b""
    assert rig.scheduler.pending() == 1                  # waiting, not dropped, not buffered
    rig.proto.connection_lost(BrokenPipeError())
    assert rig.scheduler.pending() == 0


def test_sigterm_lets_streams_finish_then_exits_zero() -> None:
    with running_server("--itl-ms", "20", "--mode", "lorem", "--lorem-tokens", "40",
                        "--shutdown-grace-s", "10") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request_bytes("POST", "/v1/chat/completions", dict(CHAT, stream=True)))
        first = sock.recv(65536)
        assert b"data:" in first or first.startswith(b"HTTP/1.1 200")
        server.proc.send_signal(signal.SIGTERM)
        data = first
        while not data.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        (resp,) = parse_responses(data)
        assert sse_events(resp.body)[-1] == "[DONE]"     # the stream in flight finished
        assert server.proc.wait(timeout=10) == 0
        sock.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2)


def test_grace_runs_out_then_streams_are_cut() -> None:
    with running_server("--itl-ms", "1000", "--shutdown-grace-s", "0.5") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request_bytes("POST", "/v1/chat/completions", dict(CHAT, stream=True)))
        sock.recv(65536)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        sock.close()


def test_second_signal_exits_at_once() -> None:
    with running_server("--itl-ms", "1000", "--shutdown-grace-s", "60") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(request_bytes("POST", "/v1/chat/completions", dict(CHAT, stream=True)))
        sock.recv(65536)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert server.proc.poll() is None                # waiting for the stream, up to 60 s
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=5) != 0
        sock.close()


def test_partial_pipelined_request_gets_the_request_deadline(make: Make) -> None:
    rig = make(Config(keepalive_timeout_s=60, request_timeout_s=5))
    partial = request_bytes("POST", "/chat/completions", CHAT)[:30]
    rig.feed(request_bytes("GET", "/health") + partial)
    rig.transport.take()
    rig.connections.sweep(later(6))            # the request deadline, not keep-alive's 60 s
    (resp,) = parse_responses(rig.transport.take())
    assert resp.status == 408 and rig.transport.closed
