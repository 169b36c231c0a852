"""A few real sockets on 127.0.0.1: keep-alive, pipelining, fragmentation, disconnects."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from helpers import Server, parse_responses, request_bytes, running_server

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def recv_until(sock: socket.socket, marker: bytes, count: int = 1, limit: float = 10) -> bytes:
    data = b""
    deadline = time.monotonic() + limit
    while data.count(marker) < count:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def connect(server: Server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_keep_alive_and_pipelining(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(request_bytes("GET", "/health") * 5)
        out = recv_until(sock, b'{"status":"ok"}', 5)
        assert [r.status for r in parse_responses(out, 5, method=b"GET")] == [200] * 5
        sock.sendall(request_bytes("GET", "/v1/models"))
        (resp,) = parse_responses(recv_until(sock, b"]}"), method=b"GET")
        assert resp.json()["object"] == "list"


def test_fragmented_request(server: Server) -> None:
    with connect(server) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, byte in enumerate(request_bytes("POST", "/v1/chat/completions", CHAT)):
            sock.send(bytes([byte]))
            if i % 20 == 0:
                time.sleep(0.001)
        (resp,) = parse_responses(recv_until(sock, b"fp_fastmock"))
        assert resp.status == 200


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_disconnects_mid_stream_do_not_disturb_others(http: str) -> None:
    with running_server("--itl-ms", "20", "--mode", "lorem", "--lorem-tokens", "50",
                        "--http", http) as server:
        quitters = []
        for _ in range(20):
            sock = connect(server)
            sock.sendall(request_bytes("POST", "/v1/chat/completions", dict(CHAT, stream=True)))
            quitters.append(sock)
        with connect(server) as keeper:
            keeper.sendall(request_bytes("POST", "/v1/chat/completions", dict(CHAT, stream=True)))
            for sock in quitters:
                recv_until(sock, b"data:")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00"
                                b"\x00\x00")
                sock.close()   # RST, mid-stream
            out = recv_until(keeper, b"[DONE]")
            (resp,) = parse_responses(out)
            assert resp.body.count(b"data: {") == 1 + 50 + 1   # role, tokens, finish
        with urllib.request.urlopen(server.base + "/stats", timeout=5) as r:
            stats = json.loads(r.read())
        assert stats["pacing"]["streams"]["active"] == 0
        assert stats["pacing"]["streams"]["cancelled"] == 20
        assert stats["connections"]["open"] == 1   # this request's own


@pytest.mark.parametrize("payload", [b"\x16\x03\x01\x02\x00", b"GET / HTTP/9.9\r\n\r\n",
                                     b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                                     b"content-length: 5\r\n\r\n{bad}"])
def test_bad_input_gets_an_error_and_server_survives(server: Server, payload: bytes) -> None:
    with connect(server) as sock:
        sock.sendall(payload)
        out = recv_until(sock, b"}}")
        assert out.startswith(b"HTTP/1.1 4"), out[:80]
        body = json.loads(out.split(b"\r\n\r\n", 1)[1])
        assert set(body["error"]) == {"message", "type", "param", "code"}
    with urllib.request.urlopen(server.base + "/health", timeout=5) as r:
        assert r.status == 200


def test_sigterm_exits_zero() -> None:
    with running_server() as server:
        server.proc.terminate()
        assert server.proc.wait(timeout=10) == 0
        assert server.proc.stderr is not None
        assert "Traceback" not in server.proc.stderr.read()


def test_startup_line(server: Server) -> None:
    line = server.startup_line
    assert f"http://127.0.0.1:{server.port}/v1" in line
    assert "gpt-4o-mini" in line and "Ctrl+C" in line
