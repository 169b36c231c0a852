"""Trouble on demand: faults, rate limits, admission, the latency model, per-request control and
runtime changes, on both HTTP handlers (fake clock) and through the official SDK (live)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
import urllib.request
from typing import Any

import openai
import orjson
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fastmock import tokens
from fastmock.config import Config, ConfigError, load
from fastmock.frames import Clock
from fastmock.reply import Plan
from fastmock.state import App
from fastmock.trouble import (
    Bucket,
    FaultError,
    Limits,
    duration,
    parse_fault_header,
    parse_fault_list,
)
from helpers import (
    FakeTransport,
    Make,
    Rig,
    parse_responses,
    request_bytes,
    running_server,
    sse_events,
)

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM = dict(CHAT, stream=True)


def chat(headers: list[tuple[str, str]] | None = None, body: Any = CHAT) -> bytes:
    return request_bytes("POST", "/v1/chat/completions", body, headers)


def drain(rig: Rig, step: float = 0.005, limit: float = 60.0) -> bytes:
    """Run the fake clock until the scheduler is idle; everything written meanwhile."""
    out = b""
    waited = 0.0
    while rig.scheduler.pending() and waited < limit:
        out += rig.advance(step)
        waited += step
    return out + rig.transport.take()


# -- pure ----------------------------------------------------------------------------------

def test_fault_lists(tmp_path: Any) -> None:
    assert parse_fault_list("429:0.05, 500:0.01,drop:0.01") == (
        ("429", 0.05), ("500", 0.01), ("drop", 0.01))
    assert parse_fault_list("429:0,400:0") == ()          # rate 0: never, so not kept at all
    for bad, why in (("418:0.1", "unknown fault"), ("429", "needs a rate"),
                     ("429:x", "must be a number"), ("500:2", "between 0 and 1"),
                     ("500:0.6,503:0.6", "more than 1")):
        with pytest.raises(FaultError, match=why):
            parse_fault_list(bad)
    with pytest.raises(ConfigError, match="faults: unknown fault"):
        load({"faults": "bogus:0.1"})
    toml = tmp_path / "fastmock.toml"
    toml.write_text('[models."m"]\nfaults = "x:1"\n')
    with pytest.raises(ConfigError, match="model m: faults: unknown fault"):
        load({}, environ={}, config_file=str(toml))


def test_fault_headers() -> None:
    assert parse_fault_header("429", 5000).status == 429
    drop = parse_fault_header("drop:5", 5000)
    assert (drop.kind, drop.at) == ("drop", 5)
    assert parse_fault_header("stall:3000", 5000).pause == 3.0
    assert parse_fault_header("slow", 2500).pause == 2.5
    for bad in ("418", "explode", "drop:x", "stall:-1"):
        with pytest.raises(FaultError):
            parse_fault_header(bad, 5000)


def test_durations_are_openai_s() -> None:
    assert [duration(s) for s in (0.02, 0.1004, 1.5, 20.0, 360.0, 3723.0)] == [
        b"20ms", b"100ms", b"1.5s", b"20s", b"6m0s", b"1h2m3s"]


def test_bucket_is_a_second_of_a_per_minute_limit() -> None:
    bucket = Bucket(600, b"requests")          # 10 a second
    granted = [bucket.take(100.0, 1.0) == 0.0 for _ in range(15)]
    assert granted == [True] * 10 + [False] * 5
    wait = bucket.take(100.0, 1.0)
    assert wait == pytest.approx(0.1)            # one unit comes back every 100 ms
    assert bucket.take(100.0 + wait, 1.0) == 0.0
    lines = bucket.header_lines(100.0 + wait)
    assert b"x-ratelimit-limit-requests: 600\r\n" in lines
    assert b"x-ratelimit-remaining-requests: 0\r\n" in lines
    tokens_bucket = Bucket(6000, b"tokens")     # 100 a second
    assert tokens_bucket.take(0.0, 500.0) == 0.0   # bigger than a second's worth: once full
    assert tokens_bucket.take(0.0, 1.0) > 4.0      # then it pays for it
    assert tokens_bucket.take(0.0, 7000.0) == math.inf   # more than a minute: never


class _Kept:
    """What Limits.grant reads of a kept reply (fastmock.ready.Ready)."""

    def __init__(self, model: str, tokens: int) -> None:
        self.tokens = tokens
        self.now = (b"HTTP/1.1 200 OK\r\nx-request-id: req_", b"\r\n\r\n{}")
        self.limited_as: str | None = model
        self.credit = 0.0
        self.spliced: tuple[bytes, ...] = ()
        self.trouble: Any = "trouble"
        self.gate: Any = "trouble"


def test_roomy_buckets_lend_the_reply_its_lines_for_the_turn() -> None:
    turn_ends: list[Any] = []
    sent: list[Any] = []
    limits = Limits(6_000_000, 0, turn_ends.append, sent)   # 100,000 requests a second
    kept, other = _Kept("m", 50), _Kept("m", 50)
    own = kept.now
    parts = limits.grant("m", kept, room=50_000)          # type: ignore[arg-type]
    assert parts is not None and b"remaining-requests: 99999\r\n" in parts[1]
    # The reply's parts are the ones with the lines now, and its gate is open: the protocol
    # replays it as it would on a server without trouble, counting nothing.
    assert kept.now is parts and kept.gate is None and kept.credit == 0
    sent.append(kept)                                     # the request that was granted
    sent += [kept, other, kept, kept]                     # the turn: 3 more of it, 1 other
    pair = limits.buckets["m"]
    assert pair.requests is not None
    before = pair.requests.full_at
    turn_ends.pop()()                                     # the turn ends
    assert kept.now is own and kept.gate == "trouble" and not pair.lent
    assert pair.requests.full_at == pytest.approx(before + 3 * 1e-5, abs=1e-9)
    # Not roomy enough for the turn: credit counted down, as before.
    tight = _Kept("m", 50)
    limits.grant("m", tight, room=10**6)                  # type: ignore[arg-type]
    assert tight.gate == "trouble" and tight.credit == 256
    turn_ends.pop()()
    # The metrics' fold settles first (its records are what counts), and a reply framed again
    # for a new second meanwhile keeps its new parts.
    limits.grant("m", kept, room=1)                       # type: ignore[arg-type]
    mark = len(sent)
    sent += [kept, kept]
    kept.now = fresh = (b"new second: x-request-id: req_", b"")
    before = pair.requests.full_at
    limits.settle_lent()
    assert kept.now is fresh and kept.gate == "trouble" and limits.lent == []
    assert pair.requests.full_at == pytest.approx(before + 1e-5, abs=1e-9)
    assert len(sent) == mark + 2
    turn_ends.pop()()                                     # (already settled: nothing)
    assert pair.requests.full_at == pytest.approx(before + 1e-5, abs=1e-9)


def test_buckets_roomier_than_a_second_lend_the_reply_its_lines_until_the_tick() -> None:
    turn_ends: list[Any] = []
    sent: list[Any] = []
    limits = Limits(120_000_000, 0, turn_ends.append, sent)   # 2,000,000 requests a second
    kept = _Kept("m", 50)
    own = kept.now
    parts = limits.grant("m", kept, room=10**9)           # type: ignore[arg-type]
    assert parts is not None and b"remaining-requests: 1999999\r\n" in parts[1]
    assert kept.now is parts and kept.gate is None
    assert turn_ends == []                                # nothing to do when the turn ends
    pair = limits.buckets["m"]
    assert pair.requests is not None
    before = pair.requests.full_at
    sent += [kept] * 5001                                 # many turns of the same second
    limits.settle_lent()                                  # the tick: the metrics' fold
    assert kept.now is own and kept.gate == "trouble" and not pair.lent
    assert pair.requests.full_at == pytest.approx(before + 5000 * 5e-7, abs=1e-9)   # 0.5 us each
    # Less room than a second can use (but more than the turn's): lent for the turn only.
    limits2 = Limits(6_000_000, 0, turn_ends.append, sent)
    limits2.grant("m", kept, room=1000)                   # type: ignore[arg-type]
    assert kept.gate is None and len(turn_ends) == 1
    turn_ends.pop()()
    assert kept.gate == "trouble"


def test_credit_for_one_turn_is_settled_into_the_buckets() -> None:
    turn_ends: list[Any] = []
    limits = Limits(600, 60000, turn_ends.append)     # 10 requests, 1000 tokens a second
    kept = _Kept("m", 50)
    parts = limits.grant("m", kept)                   # type: ignore[arg-type]
    assert parts is not None and parts[0].endswith(b"x-request-id: req_")
    assert b"\r\nx-ratelimit-remaining-requests: 9\r\n" in parts[1]
    assert b"\r\nx-ratelimit-remaining-tokens: 950\r\n" in parts[1]
    assert kept.credit == 9 and kept.spliced == parts and len(turn_ends) == 1
    kept.credit -= 4                                  # four more, as the protocol counts them
    pair = limits.buckets["m"]
    requests, tokens = pair.requests, pair.tokens
    assert requests is not None and tokens is not None
    before = requests.full_at, tokens.full_at
    turn_ends.pop()()                                 # the turn ends
    assert kept.credit == 0 and pair.ready is None
    assert requests.full_at == pytest.approx(before[0] + 4 * 0.1, abs=1e-9)
    assert tokens.full_at == pytest.approx(before[1] + 4 * 50 * 0.001, abs=1e-9)
    # Five of ten taken: five more go (each through grant now, then on credit), none beyond.
    granted = 0
    for _ in range(8):
        if kept.credit:
            kept.credit -= 1
            granted += 1
        elif limits.grant("m", kept) is not None:  # type: ignore[arg-type]
            granted += 1
    assert granted <= 5 + 1                           # (a tenth of a second may have passed)
    # A bucket that is full again shows the same figures: the same bytes, not formatted again.
    roomy = Limits(60000, 0, turn_ends.append)        # one comes back every millisecond
    again = _Kept("m", 50)
    shown = roomy.grant("m", again)                   # type: ignore[arg-type]
    assert shown is not None and b"remaining-requests: 999\r\n" in shown[1]
    turn_ends.pop()()
    time.sleep(0.005)
    assert roomy.grant("m", again) is shown           # type: ignore[arg-type]
    turn_ends.pop()()
    # Counted by key, the credit stays on the pair and the reply is untouched.
    keyed = Limits(600, 0, turn_ends.append)
    other = _Kept("m", 50)
    first = keyed.grant("key-1", other)               # type: ignore[arg-type]
    assert first is not None and other.credit == 0
    assert keyed.grant("key-1", other) is first       # type: ignore[arg-type]
    assert keyed.buckets["key-1"].credit == 8
    # A reset of a second or more (here: over the limit) is the long way's: None, nothing taken.
    tight = Limits(120, 0)                            # two a second, no credit without a loop
    grants = [tight.grant("m", _Kept("m", 1)) for _ in range(3)]  # type: ignore[arg-type]
    assert grants[0] is not None and grants[2] is None
    bucket = tight.buckets["m"].requests
    assert bucket is not None
    full_at = bucket.full_at
    assert tight.grant("m", _Kept("m", 1)) is None   # type: ignore[arg-type]
    assert bucket.full_at == full_at


# -- faults through the protocol -------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 503, 404])
def test_injected_status_faults(make: Make, status: int) -> None:
    rig = make(Config(faults=f"{status}:1", retry_after_ms=1500))
    (resp,) = parse_responses(rig.feed(chat()))
    assert resp.status == status and resp.headers[b"x-fastmock-fault"] == b"%d" % status
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if status == 429:
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    if status in (429, 503):
        assert resp.headers[b"retry-after"] == b"2" and resp.headers[b"retry-after-ms"] == b"1500"
    assert rig.app.counters.faults == {str(status): 1} and not rig.transport.closed
    health = request_bytes("GET", "/health")     # not a model's reply: never befallen
    assert parse_responses(rig.feed(health), method=b"GET")[0].status == 200


def test_a_dropped_stream_ends_without_its_end(make: Make) -> None:
    rig = make(Config(itl_ms=10, mode="lorem", lorem_tokens=20))
    out = rig.feed(chat([("x-fastmock-fault", "drop:5")], STREAM)) + drain(rig)
    assert rig.transport.closed and b"[DONE]" not in out and not out.endswith(b"0\r\n\r\n")
    assert out.count(b'"content":') - out.count(b'"content":""') == 5   # (the role chunk's "")


def test_an_error_ends_a_stream_with_an_error_event(make: Make) -> None:
    rig = make(Config(itl_ms=10, mode="lorem", lorem_tokens=20))
    out = rig.feed(chat([("x-fastmock-fault", "error:4")], STREAM)) + drain(rig)
    (resp,) = parse_responses(out)
    events = sse_events(resp.body)
    assert [ChatCompletionChunk.model_validate_json(e) for e in events[:4]]
    assert orjson.loads(events[-1])["error"]["type"] == "server_error"
    assert "[DONE]" not in events and not rig.transport.closed


def test_an_error_in_a_responses_stream_fails_the_response(make: Make) -> None:
    rig = make(Config(itl_ms=10, mode="lorem", lorem_tokens=20))
    body = {"model": "gpt-4o-mini", "input": "hi", "stream": True}
    out = rig.feed(request_bytes("POST", "/v1/responses", body,
                                 [("x-fastmock-fault", "error:3")])) + drain(rig)
    (resp,) = parse_responses(out)
    events = [orjson.loads(e) for e in sse_events(resp.body)]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1]["response"]["status"] == "failed"


def test_stall_and_slow_move_the_steps(make: Make) -> None:
    rig = make(Config(itl_ms=10, mode="lorem", lorem_tokens=20))
    rig.feed(chat([("x-fastmock-fault", "slow:200")], STREAM))
    assert rig.advance(0.19) == b""                       # the first token waits 200 ms
    assert b'"content":' in rig.advance(0.011)
    drain(rig)
    head = rig.feed(chat([("x-fastmock-fault", "stall:300")], STREAM))
    times = [rig.clock.now] if b'"content":' in head else []
    while rig.scheduler.pending():
        got = rig.advance(0.005)
        if b'"content":' in got:
            times.append(rig.clock.now)
    gaps = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert max(gaps) == pytest.approx(0.31, abs=0.006)    # one gap: 10 ms + 300 ms
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(0.01, abs=0.006)


def test_whole_replies_suffer_too(make: Make) -> None:
    rig = make(Config(ttft_ms=50))
    (resp,) = parse_responses(rig.feed(chat([("x-fastmock-fault", "error")])))
    assert resp.status == 500
    rig.feed(chat([("x-fastmock-fault", "stall:100")]))
    assert rig.advance(0.14) == b""
    assert parse_responses(rig.advance(0.011))[0].status == 200
    rig.feed(chat([("x-fastmock-fault", "drop")]))
    assert rig.transport.closed and rig.transport.take() == b""


def test_fault_seed_repeats_the_sequence() -> None:
    def sequence() -> list[int]:
        rig = Rig(Config(faults="500:0.3,503:0.2", fault_seed=7))
        return [parse_responses(rig.feed(chat()))[0].status for _ in range(60)]
    first = sequence()
    assert first == sequence() and 15 < first.count(500) + first.count(503) < 45


def test_bad_override_headers_are_400(make: Make) -> None:
    rig = make()
    for name, value in (("x-fastmock-ttft-ms", "soon"), ("x-fastmock-tokens", "0"),
                        ("x-fastmock-fault", "418"), ("x-fastmock-bogus", "1")):
        (resp,) = parse_responses(rig.feed(chat([(name, value)])))
        assert resp.status == 400 and resp.json()["error"]["code"] == "invalid_fastmock_header"


def test_overrides_pace_and_length(make: Make) -> None:
    rig = make(Config(itl_ms=10))
    headers = [("x-fastmock-ttft-ms", "100"), ("x-fastmock-itl-ms", "50"),
               ("x-fastmock-tokens", "12")]
    head = rig.feed(chat(headers, STREAM))
    assert rig.advance(0.099) == b""
    out = head + rig.advance(0.001)
    assert b'"content":' in out
    assert rig.advance(0.049) == b""
    second = rig.advance(0.001)
    assert b'"content":' in second
    (resp,) = parse_responses(out + second + drain(rig))
    text = "".join(ChatCompletionChunk.model_validate_json(e).choices[0].delta.content or ""
                   for e in sse_events(resp.body)[:-1])
    assert tokens.count(text) == 12
    (whole,) = parse_responses(rig.feed(chat([("x-fastmock-tokens", "300")])) + drain(rig))
    usage = ChatCompletion.model_validate_json(whole.body).usage
    assert usage is not None and usage.completion_tokens == 300


def test_overrides_can_be_turned_off(make: Make) -> None:
    rig = make(Config(request_overrides=False))
    (resp,) = parse_responses(rig.feed(chat([("x-fastmock-fault", "500")])))
    assert resp.status == 200 and rig.app.counters.faults == {}
    rig.feed(chat([("x-fastmock-fault", "500")]))
    assert len(rig.app.ready) == 1                       # and they do not stop replays


def test_token_limits_count_prompt_and_reply(make: Make) -> None:
    # 41 tokens a reply (8 in, 33 out); 3000 a minute is a bucket of 50: one fits, not two.
    rig = make(Config(rpm=600, tpm=3000))
    (first,) = parse_responses(rig.feed(chat()))
    assert first.status == 200 and first.headers[b"x-ratelimit-remaining-tokens"] == b"9"
    assert first.headers[b"x-ratelimit-remaining-requests"] == b"9"
    (second,) = parse_responses(rig.feed(chat()))
    error = second.json()["error"]
    assert second.status == 429 and (error["type"], error["code"]) == ("tokens",
                                                                       "rate_limit_exceeded")
    assert second.headers[b"x-ratelimit-remaining-requests"] == b"9"   # given back
    assert 0.6 < int(second.headers[b"retry-after-ms"]) / 1000 <= 0.7  # 32 tokens at 50/s
    assert rig.app.trouble is not None
    assert rig.app.trouble.counts == {"rate_limited_tokens": 1}


def test_a_turn_of_replays_on_lent_parts_is_counted_in_full(
        make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastmock import protocol

    monkeypatch.setattr(protocol, "TURN_MOST", 1)         # lend at once (a bucket of 100)
    rig = make(Config(rpm=6000, tpm=600_000_000))
    turn_ends: list[Any] = []
    rig.app.soon, rig.app.trouble = turn_ends.append, None
    rig.app.rebuild_trouble()                             # (limits settled by a loop's turns)
    rig.feed(chat())                                      # (the long way, then kept)
    while turn_ends:
        turn_ends.pop()()
    replies = parse_responses(rig.feed(chat() * 6), 6)    # one turn: six replays
    assert rig.app.trouble is not None and rig.app.trouble.limits is not None
    pair = rig.app.trouble.limits.buckets["gpt-4o-mini"]
    assert pair.lent and len(turn_ends) == 1
    remaining = {r.headers[b"x-ratelimit-remaining-requests"] for r in replies}
    assert len(replies) == 6 and remaining == {replies[0].headers[
        b"x-ratelimit-remaining-requests"]}               # the first one's figures, six times
    assert len({r.json()["id"] for r in replies}) == 6
    assert pair.requests is not None
    before = pair.requests.full_at
    turn_ends.pop()()
    assert pair.requests.full_at == pytest.approx(before + 5 * 0.01, abs=1e-9)  # five more, counted
    (after,) = parse_responses(rig.feed(chat()))         # the next turn asks the buckets
    assert int(after.headers[b"x-ratelimit-remaining-requests"]) < int(remaining.pop()) - 4


def test_replays_on_parts_lent_for_the_second_are_counted_at_the_tick(make: Make) -> None:
    rig = make(Config(rpm=120_000_000))                   # 2,000,000 requests a second
    turn_ends: list[Any] = []
    rig.app.soon, rig.app.trouble = turn_ends.append, None
    rig.app.rebuild_trouble()
    rig.feed(chat())                                      # (the long way, then kept)
    while turn_ends:
        turn_ends.pop()()
    replies = [r for _ in range(3) for r in parse_responses(rig.feed(chat() * 4), 4)]
    assert turn_ends == []                                # three turns, nothing due at their end
    assert rig.app.trouble is not None and rig.app.trouble.limits is not None
    pair = rig.app.trouble.limits.buckets["gpt-4o-mini"]
    assert pair.lent and pair.requests is not None
    assert len({r.headers[b"x-ratelimit-remaining-requests"] for r in replies}) == 1
    before = pair.requests.full_at
    rig.app.meter.fold()                                  # the clock's tick
    assert not pair.lent
    assert pair.requests.full_at == pytest.approx(before + 11 * 5e-7, abs=1e-9)


def test_rate_limited_replies_still_get_a_new_second(make: Make, clock: Clock) -> None:
    # Limits far above the load: every bucket is full again by the next request, so the header
    # lines stay the same, and the kept parts with them must still follow the clock.
    rig = make(Config(rpm=60_000_000, tpm=60_000_000_000))
    rig.feed(chat())   # (the long way, then kept)
    start = clock.unix
    for step in (0, 3600, 7200):
        if step:
            clock.tick(start + step)
        for _ in range(2):
            (resp,) = parse_responses(rig.feed(chat()))
            assert resp.headers[b"date"] == clock.date
            assert resp.json()["created"] == clock.unix
            assert resp.headers[b"x-ratelimit-remaining-requests"] == b"999999"


def test_a_waiting_client_that_leaves_gives_up_its_place(make: Make) -> None:
    rig = make(Config(itl_ms=10, response_text="a b c", max_concurrency=1))
    rig.feed(chat(body=STREAM))
    waiting = []
    for _ in range(2):
        proto = rig.handler(rig.app, rig.scheduler, rig.connections)
        transport = FakeTransport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        proto.data_received(chat(body=STREAM))
        waiting.append((proto, transport))
    trouble = rig.app.trouble
    assert trouble is not None and trouble.admission is not None
    assert len(trouble.admission.waiting) == 2
    waiting[0][0].connection_lost(None)
    assert len(trouble.admission.waiting) == 1
    drain(rig)
    assert b"[DONE]" in b"".join(waiting[1][1].written) and waiting[0][1].written == []
    assert (trouble.admission.active, trouble.admission.admitted) == (0, 2)


# -- the latency model -----------------------------------------------------------------------

def test_prefill_and_slowdown(make: Make) -> None:
    rig = make(Config(ttft_ms=10, itl_ms=10, prefill_ms_per_1k_tokens=100))
    prompt = "word " * 1000                              # 1000 tokens, plus framing
    body = {"model": "m", "messages": [{"role": "user", "content": prompt}], "stream": True}
    rig.feed(request_bytes("POST", "/v1/chat/completions", body))
    want = 0.010 + 0.1 * (tokens.count(prompt) + 4 + 3) / 1000
    assert rig.advance(want - 0.002) == b"" and b'"content":' in rig.advance(0.003)
    app = App(Config(itl_ms=10, itl_slowdown_ms_per_100_streams=20, slowdown_knee_streams=100))
    profile = app.default_profiles["chat"]
    assert profile.timing(streams=50)[1] == pytest.approx(0.010)
    assert profile.timing(streams=300)[1] == pytest.approx(0.010 + 0.040)


@pytest.mark.parametrize("dist", ["normal", "lognormal", "uniform"])
def test_ttft_spreads(dist: str) -> None:
    app = App(Config(ttft_ms=100, ttft_jitter_ms=20, ttft_jitter_dist=dist))
    profile = app.default_profiles["chat"]
    draws = [profile.timing()[0] for _ in range(4000)]
    assert min(draws) >= 0 and abs(sum(draws) / len(draws) - 0.1) < 0.005
    if dist == "uniform":
        assert 0.08 <= min(draws) and max(draws) <= 0.12
    assert len({round(d, 6) for d in draws}) > 100


# -- admission ---------------------------------------------------------------------------

def test_admission_queues_in_order_and_refuses_beyond_the_queue(make: Make) -> None:
    rig = make(Config(itl_ms=10, response_text="a b c d e", max_concurrency=2, max_queue=2))
    others = []
    for _ in range(4):
        proto = rig.handler(rig.app, rig.scheduler, rig.connections)
        transport = FakeTransport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        others.append((proto, transport))
    rig.feed(chat(body=STREAM))
    for proto, _ in others:
        proto.data_received(chat(body=STREAM))
    trouble = rig.app.trouble
    assert trouble is not None and trouble.admission is not None
    assert (trouble.admission.active, len(trouble.admission.waiting)) == (2, 2)
    (refused,) = parse_responses(others[3][1].take())
    assert refused.status == 503 and refused.json()["error"]["code"] == "server_is_overloaded"
    assert others[1][1].take() == b"" and others[2][1].take() == b""   # waiting
    viewer = rig.handler(rig.app, rig.scheduler, rig.connections)
    viewer_transport = FakeTransport()
    viewer.connection_made(viewer_transport)  # type: ignore[arg-type]
    viewer.data_received(request_bytes("GET", "/stats"))
    (view,) = parse_responses(viewer_transport.take(), method=b"GET")
    shown = view.json()["trouble"]["admission"]
    assert (shown["active"], shown["queued"], shown["refused_queue_full"]) == (2, 2, 1)
    started: dict[int, float] = {}
    start = rig.clock.now
    while rig.scheduler.pending() or trouble.admission.waiting:
        rig.advance(0.005)
        for i in (1, 2):
            if others[i][1].written and i not in started:
                started[i] = rig.clock.now - start
    # Both waited for a place: one stream's length (5 tokens at 10 ms), not more.
    assert sorted(started) == [1, 2] and all(0.035 <= t <= 0.08 for t in started.values()), started
    assert trouble.admission.active == 0


def test_max_concurrency_in_stats_and_runtime_changes(make: Make) -> None:
    rig = make(Config(max_concurrency=3))
    (view,) = parse_responses(rig.feed(request_bytes("GET", "/stats")), method=b"GET")
    assert view.json()["trouble"]["admission"]["max_concurrency"] == 3
    patch = request_bytes("PATCH", "/admin/config", {"max_concurrency": 0, "itl_ms": 25,
                                                     "models": {"gpt-4o": {"ttft_ms": 200}}})
    (changed,) = parse_responses(rig.feed(patch), method=b"PATCH")
    body = changed.json()
    assert changed.status == 200 and body["settings"]["itl_ms"] == 25
    assert body["models"]["gpt-4o"]["ttft_ms"] == 200 and body["changes"] == 1
    assert rig.app.trouble is None and rig.app.profiles["gpt-4o"].ttft == 0.2
    for bad, param in (({"port": 1}, "port"), ({"itl_ms": -1}, "itl_ms"),
                       ({"models": {"nope": {}}}, "models.nope")):
        (resp,) = parse_responses(rig.feed(request_bytes("PATCH", "/admin/config", bad)),
                                  method=b"PATCH")
        assert resp.status in (400, 404) and resp.json()["error"]["param"] == param, bad


def test_faults_change_at_run_time(make: Make) -> None:
    rig = make()
    assert parse_responses(rig.feed(chat()))[0].status == 200
    patch = request_bytes("PATCH", "/admin/config", {"faults": "503:1"})
    assert parse_responses(rig.feed(patch), method=b"PATCH")[0].status == 200
    assert parse_responses(rig.feed(chat()))[0].status == 503   # (the kept reply is dropped)
    patch = request_bytes("PATCH", "/admin/config", {"faults": ""})
    assert parse_responses(rig.feed(patch), method=b"PATCH")[0].status == 200
    assert parse_responses(rig.feed(chat()))[0].status == 200


def test_admin_config_survives_a_restart(tmp_path: Any) -> None:
    from fastmock import statefile
    from fastmock.server import restore_state

    path = str(tmp_path / "state.json")
    first = Rig(Config(state_file=path))
    restore_state(first.app, path)
    patch = request_bytes("PATCH", "/admin/config", {"rpm": 120, "faults": "429:0.5"})
    assert parse_responses(first.feed(patch), method=b"PATCH")[0].status == 200
    assert statefile.read(path).settings == {"rpm": 120, "faults": "429:0.5"}
    second = App(Config(state_file=path))
    restore_state(second, path)
    assert (second.config.rpm, second.config.faults) == (120, "429:0.5")


def test_plan_offsets_from_a_fault_keep_their_order() -> None:
    plan = Plan([b"s"] * 5, 0.0, 0.01)
    assert [round(plan.due(k), 3) for k in range(5)] == [0.0, 0.01, 0.02, 0.03, 0.04]


# -- live, through the official SDK ----------------------------------------------------------

def stats(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/stats") as r:
        return dict(json.loads(r.read()))


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_sdk_retries_429_then_raises(http: str) -> None:
    with running_server("--http", http, "--faults", "429:1.0", "--retry-after-ms", "20") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=2)
        with pytest.raises(openai.RateLimitError) as raised:
            client.chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"])
        assert raised.value.body["type"] == "requests"  # type: ignore[index]
        assert stats(s.base)["faults_injected"] == {"429": 3}   # one try and two retries


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_sdk_sees_stream_faults(http: str) -> None:
    with running_server("--http", http, "--itl-ms", "5") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0, timeout=10)

        def stream(fault: str) -> list[ChatCompletionChunk]:
            got = []
            for chunk in client.chat.completions.create(
                    model="gpt-4o-mini", messages=CHAT["messages"], stream=True,
                    extra_headers={"x-fastmock-fault": fault}):
                got.append(chunk)
            return got
        started = time.monotonic()
        with pytest.raises(openai.APIConnectionError):
            stream("drop:3")
        with pytest.raises(openai.APIError, match="The server had an error"):
            stream("error:3")
        assert time.monotonic() - started < 5        # an error, never a hang
        assert len(stream("stall:50")) > 10


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_rate_limit_headers_and_the_bucket(http: str) -> None:
    with running_server("--http", http, "--rpm", "600", "--tpm", "1000000") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=CHAT["messages"])
        headers = raw.headers
        assert headers["x-ratelimit-limit-requests"] == "600"
        assert headers["x-ratelimit-limit-tokens"] == "1000000"
        assert int(headers["x-ratelimit-remaining-requests"]) == 9
        assert headers["x-ratelimit-reset-requests"].endswith(("ms", "s"))
        assert headers["x-request-id"] == "req_" + raw.parse().id.removeprefix("chatcmpl-")
        time.sleep(1.1)                             # the bucket is full again
        started = time.monotonic()
        ok, refused = 0, []
        for _ in range(100):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"])
                ok += 1
            except openai.RateLimitError as exc:
                refused.append(exc)
        elapsed = time.monotonic() - started
        assert 10 <= ok <= 10 + math.ceil(elapsed * 10) + 1, (ok, elapsed)
        # The wait a refusal names holds from then: take the freshest one (a request granted
        # after the loop's last refusal took what that refusal's wait counted on).
        for _ in range(20):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"])
            except openai.RateLimitError as exc:
                last = exc
                break
        else:
            raise AssertionError("20 requests in a row granted at 10 per second")
        wait = int(last.response.headers["retry-after-ms"])
        assert 0 < wait <= 100 and last.response.headers["retry-after"] == "1"
        assert last.response.headers["x-ratelimit-remaining-requests"] == "0"
        assert last.response.headers["x-ratelimit-limit-tokens"] == "1000000"
        assert refused[-1].response.headers["x-ratelimit-remaining-requests"] == "0"
        time.sleep(wait / 1000.0)
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT["messages"])


def test_saturation_grows_ttft_in_steps() -> None:
    # 50 streams at once, 10 at a time, each 20 tokens at 10 ms: about 200 ms apiece.
    with running_server("--max-concurrency", "10", "--itl-ms", "10", "--mode", "lorem",
                        "--lorem-tokens", "20") as s:
        async def one(client: openai.AsyncOpenAI) -> float:
            started = time.monotonic()
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=CHAT["messages"], stream=True)
            first = None
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.monotonic() - started
            assert first is not None
            return first

        async def all_of_them() -> list[float]:
            client = openai.AsyncOpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
            async with client:
                return await asyncio.gather(*(one(client) for _ in range(50)))

        ttfts = sorted(asyncio.run(all_of_them()))
        duration_s = 19 * 0.010
        for wave in range(5):
            group = ttfts[wave * 10:(wave + 1) * 10]
            assert min(group) >= wave * duration_s * 0.9 - 0.02, (wave, group)
        assert ttfts[-1] >= 4 * duration_s * 0.9
        admission = stats(s.base)["trouble"]["admission"]
        assert admission["most_queued"] >= 30 and admission["admitted"] == 50
