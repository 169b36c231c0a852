"""Both HTTP handlers fed bytes through a fake transport, read back with an h11 client.

Every test runs against the h11 handler (the reference) and the httptools one.
"""

from __future__ import annotations

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fastmock.config import Config
from helpers import Make, parse_responses, request_bytes, sse_events

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}



def test_keep_alive_and_one_write_per_reply(make: Make) -> None:
    rig = make()
    for _ in range(3):
        rig.proto.data_received(request_bytes("GET", "/health"))
        assert len(rig.transport.written) == 1
        (resp,) = parse_responses(rig.transport.take(), method=b"GET")
        assert resp.status == 200 and resp.json() == {"status": "ok"}
        assert b"date" in resp.headers and resp.headers[b"server"] == b"fastmock"
    assert not rig.transport.closed
    assert rig.transport.limits == (64 * 1024, 16 * 1024)


def test_pipelined_requests_answered_in_order(make: Make) -> None:
    rig = make()
    data = (request_bytes("GET", "/v1/models/gpt-4o") + request_bytes("GET", "/nope")
            + request_bytes("POST", "/v1/chat/completions", CHAT))
    out = rig.feed(data)
    first, second, third = parse_responses(out, 3)
    assert first.json()["id"] == "gpt-4o"
    assert second.status == 404
    assert ChatCompletion.model_validate_json(third.body).object == "chat.completion"


def test_fragmented_request_byte_by_byte(make: Make) -> None:
    rig = make()
    out = b""
    for byte in request_bytes("POST", "/chat/completions", CHAT):
        out += rig.feed(bytes([byte]))
    (resp,) = parse_responses(out)
    assert resp.status == 200


def test_http10_client_gets_close(make: Make) -> None:
    rig = make()
    out = rig.feed(request_bytes("GET", "/health", http10=True))
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close" in out.lower()
    assert rig.transport.closed


def test_http10_stream_is_close_delimited(make: Make) -> None:
    rig = make(Config(itl_ms=10))
    out = rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True),
                                 http10=True))
    while not rig.transport.closed:
        out += rig.advance(0.01)
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert sse_events(body)[-1] == "[DONE]"


def test_expect_100_continue(make: Make) -> None:
    rig = make()
    body = orjson.dumps(CHAT)
    head = request_bytes("POST", "/chat/completions", None,
                         [("content-length", str(len(body))), ("expect", "100-continue")])
    out = rig.feed(head)
    assert out == b"HTTP/1.1 100 Continue\r\n\r\n"
    (resp,) = parse_responses(rig.feed(body))
    assert resp.status == 200


def test_chunked_request_body(make: Make) -> None:
    rig = make()
    body = orjson.dumps(CHAT)
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
           + b"%x\r\n%s\r\n" % (10, body[:10]) + b"%x\r\n%s\r\n" % (len(body) - 10, body[10:])
           + b"0\r\n\r\n")
    (resp,) = parse_responses(rig.feed(raw))
    assert resp.status == 200


def test_body_over_cap_is_413_before_reading_it(make: Make) -> None:
    rig = make(Config(max_body_bytes=2048))
    head = request_bytes("POST", "/chat/completions", None, [("content-length", "4096")])
    (resp,) = parse_responses(rig.feed(head))
    assert resp.status == 413 and resp.headers[b"connection"] == b"close"
    assert resp.json()["error"]["code"] == "request_too_large"
    assert rig.transport.closed


def test_chunked_body_over_cap_is_413(make: Make) -> None:
    rig = make(Config(max_body_bytes=2048))
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
           + (b"400\r\n" + b"x" * 1024 + b"\r\n") * 3)
    (resp,) = parse_responses(rig.feed(raw))
    assert resp.status == 413 and rig.transport.closed


def test_oversized_head_is_431(make: Make) -> None:
    rig = make(Config(max_header_bytes=2048))
    raw = b"GET /health HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n"
    (resp,) = parse_responses(rig.feed(raw))
    assert resp.status == 431 and rig.transport.closed
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_garbage_is_400_and_close(make: Make) -> None:
    rig = make()
    (resp,) = parse_responses(rig.feed(b"HELLO THERE\r\n\r\n"))
    assert resp.status == 400 and resp.headers[b"connection"] == b"close"
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert rig.transport.closed


def test_good_request_then_pipelined_garbage(make: Make) -> None:
    rig = make()
    out = rig.feed(request_bytes("GET", "/health") + b"\x00\x01garbage\r\n\r\n")
    ok, bad = parse_responses(out, 2, method=b"GET")
    assert (ok.status, bad.status) == (200, 400)
    assert rig.transport.closed


def test_head_request_has_no_body(make: Make) -> None:
    rig = make()
    out = rig.feed(request_bytes("HEAD", "/health"))
    assert out.endswith(b"\r\n\r\n") and b"content-length: 15" in out
    assert not rig.transport.closed


def test_paced_stream_then_pipelined_request(make: Make) -> None:
    rig = make(Config(ttft_ms=100, itl_ms=20, response_text="a b c"))
    out = rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True))
                   + request_bytes("GET", "/health"))
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\n")  # head only
    assert b"transfer-encoding: chunked" in out.lower()
    assert rig.advance(0.099) == b""
    first = rig.advance(0.001)
    assert b'"role":"assistant"' in first and b'"content":"a"' in first
    assert rig.advance(0.02).count(b"data:") == 1
    tail = rig.advance(0.02)
    # the last step carries the last token, finish_reason, [DONE] and the chunked terminator,
    # and the pipelined /health answer follows once the stream is done
    assert b"[DONE]" in tail and b"0\r\n\r\n" in tail and b'{"status":"ok"}' in tail
    stream, health = parse_responses(out + first + tail, 2)
    assert [e for e in sse_events(stream.body) if e != "[DONE]"][-1].endswith(
        '"finish_reason":"stop"}]}')
    assert health.status == 200
    assert rig.scheduler.pending() == 0


def test_stream_chunks_parse_and_zero_delay_is_one_write(make: Make) -> None:
    rig = make()
    rig.proto.data_received(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    assert len(rig.transport.written) == 1
    (resp,) = parse_responses(rig.transport.take())
    events = sse_events(resp.body)
    assert events[-1] == "[DONE]"
    text = "".join(ChatCompletionChunk.model_validate_json(e).choices[0].delta.content or ""
                   for e in events[:-1])
    assert text == Config().response_text


def test_delayed_nonstream_reply(make: Make) -> None:
    rig = make(Config(ttft_ms=50, itl_ms=10, response_text="a b c"))
    assert rig.feed(request_bytes("POST", "/chat/completions", CHAT)) == b""
    assert rig.advance(0.069) == b""
    (resp,) = parse_responses(rig.advance(0.001))
    assert ChatCompletion.model_validate_json(resp.body).choices[0].message.content == "a b c"


def test_disconnect_mid_stream_frees_it(make: Make) -> None:
    rig = make(Config(itl_ms=50))
    rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    rig.advance(0.0)
    assert rig.scheduler.pending() == 1
    rig.proto.connection_lost(ConnectionResetError())
    assert rig.scheduler.pending() == 0 and rig.scheduler.stats.cancelled == 1
    assert rig.advance(1.0) == b""
    assert not rig.connections.open


def test_eof_mid_stream_frees_it(make: Make) -> None:
    rig = make(Config(itl_ms=50))
    rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    assert rig.proto.eof_received() is False   # transport closes itself
    rig.proto.connection_lost(None)
    assert rig.scheduler.pending() == 0


def test_eof_after_pipelined_requests_answers_them(make: Make) -> None:
    rig = make()
    rig.proto.data_received(request_bytes("GET", "/health") + request_bytes("GET", "/healthz"))
    assert rig.proto.eof_received() is True
    assert len(parse_responses(rig.transport.take(), 2, method=b"GET")) == 2
    assert rig.transport.closed


def test_back_pressure_pauses_the_stream(make: Make) -> None:
    rig = make(Config(itl_ms=10, response_text="a b c d"))
    # No time to first token: step 0 goes with the head, in one write.
    first = rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    assert len(rig.transport.written) == 0 and b'"content":"a"' in first
    rig.proto.pause_writing()
    assert rig.advance(0.05) == b""            # nothing queued while paused
    rig.proto.resume_writing()
    rest = rig.advance(0.0)
    assert rest.count(b'"content":') == 3 and b"[DONE]" in rest
    assert rig.scheduler.stats.parked == 1 and rig.scheduler.stats.late_10ms >= 1


def test_paused_writing_stops_reading_pipelined_requests(make: Make) -> None:
    rig = make()
    rig.proto.pause_writing()
    assert rig.feed(request_bytes("GET", "/health") * 3) == b""
    assert rig.transport.reading_paused
    rig.proto.resume_writing()
    assert len(parse_responses(rig.transport.take(), 3, method=b"GET")) == 3
    assert not rig.transport.reading_paused


def test_head_that_never_ends_is_refused(make: Make) -> None:
    rig = make(Config(max_header_bytes=2048))
    out = rig.feed(b"GET /health HTTP/1.1\r\nhost: t\r\nx-endless: ")
    for _ in range(100):   # h11 stops at the limit; httptools' coarse guard by 2x + 64 KiB
        if rig.transport.closed:
            break
        out += rig.feed(b"a" * 1024)
    (resp,) = parse_responses(out, method=b"GET")
    assert resp.status == 431 and rig.transport.closed


def test_garbage_behind_a_paced_stream_waits_its_turn(make: Make) -> None:
    rig = make(Config(itl_ms=10, response_text="a b"))
    out = rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True))
                   + b"BAD REQUEST LINE\r\n\r\n")
    assert not rig.transport.closed
    while not rig.transport.closed:
        out += rig.advance(0.01)
    stream, bad = parse_responses(out, 2)
    assert sse_events(stream.body)[-1] == "[DONE]" and bad.status == 400


def test_connection_close_header_is_honoured(make: Make) -> None:
    rig = make()
    out = rig.feed(request_bytes("GET", "/health", headers=[("connection", "close")])
                   + request_bytes("GET", "/health"))
    (resp,) = parse_responses(out, 1, method=b"GET")
    assert resp.headers[b"connection"] == b"close"
    assert out.count(b"HTTP/1.1 200") == 1 and rig.transport.closed


def test_stats_reports_pacing_and_traffic(make: Make) -> None:
    rig = make(Config(itl_ms=10, response_text="a b c"))
    rig.feed(request_bytes("POST", "/chat/completions", dict(CHAT, stream=True)))
    rig.advance(0.0)
    rig.advance(0.025)   # step 1 is 15 ms late, step 2 5 ms late
    (resp,) = parse_responses(rig.feed(request_bytes("GET", "/stats")), method=b"GET")
    stats = resp.json()
    assert stats["requests"] == 2 and stats["connections"]["open"] == 1
    pacing = stats["pacing"]
    assert pacing["steps_sent"] == 3
    assert (pacing["late_over_1ms"], pacing["late_over_10ms"]) == (2, 1)
    assert pacing["worst_late_ms"] == pytest.approx(15.0)
    assert pacing["streams"]["finished"] == 1
