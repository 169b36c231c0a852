"""Kept replies: a request seen before is answered from its framed parts, and nothing a client
sees differs from a reply routed afresh (apart from the id), on both HTTP handlers."""

from __future__ import annotations

import re

import orjson
import pytest
from openai.types.chat import ChatCompletion

from fastmock import tokens
from fastmock.config import Config
from fastmock.frames import Clock, Ids
from fastmock.routes import route
from fastmock.routes.common import Request
from helpers import FakeTransport, Make, parse_responses, request_bytes, sse_events

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
KEY = "sk-replay-key-1"
ID = re.compile(rb"[0-9a-f]{16}")


def post(body: object = CHAT, headers: list[tuple[str, str]] | None = None) -> bytes:
    return request_bytes("POST", "/v1/chat/completions", body, headers)


def without_ids(data: bytes) -> bytes:
    return ID.sub(b"<id>", data)


def test_second_request_is_replayed_with_the_same_bytes_and_a_new_id(make: Make) -> None:
    rig = make()
    first = rig.feed(post())
    assert len(rig.app.ready) == 1                      # kept after the first answer
    second = rig.feed(post())
    assert first != second and without_ids(first) == without_ids(second)
    a, b = (ChatCompletion.model_validate_json(parse_responses(x)[0].body)
            for x in (first, second))
    assert a.id != b.id and a.choices[0].message == b.choices[0].message
    # The same bytes as the router gives a direct caller (whose reply has no HTTP framing).
    direct = route(Request(b"POST", b"/v1/chat/completions", [], orjson.dumps(CHAT)), rig.app)
    assert without_ids(parse_responses(second)[0].body) == without_ids(direct.body)


def test_zero_delay_stream_is_replayed_whole(make: Make) -> None:
    rig = make()
    body = dict(CHAT, stream=True)
    first, second = rig.feed(post(body)), rig.feed(post(body))
    assert without_ids(first) == without_ids(second)
    events = sse_events(parse_responses(second)[0].body)
    assert events[-1] == "[DONE]" and len({orjson.loads(e)["id"] for e in events[:-1]}) == 1


def test_ids_stay_unique_across_many_replays(make: Make) -> None:
    rig = make()
    ids = {ChatCompletion.model_validate_json(parse_responses(rig.feed(post()))[0].body).id
           for _ in range(5000)}   # more than one batch of ids
    assert len(ids) == 5000


def test_ids_count_up_in_hex_across_batches() -> None:
    ids = Ids()
    got = [ids.new() for _ in range(3 * Ids.BATCH + 5)]
    assert all(re.fullmatch(rb"[0-9a-f]{16}", i) for i in got)
    numbers = [int(i, 16) for i in got]
    assert numbers == list(range(numbers[0], numbers[0] + len(got)))
    assert numbers[0] % Ids.BATCH == 0
    assert Ids().new() != got[0]   # another process (or server) starts elsewhere


def test_a_new_second_rebuilds_date_and_created(make: Make, clock: Clock) -> None:
    rig = make()
    rig.feed(post())
    clock.tick(clock.unix + 3600.0)
    (resp,) = parse_responses(rig.feed(post()))
    assert resp.headers[b"date"] == clock.date
    assert orjson.loads(resp.body)["created"] == clock.unix


def test_models_changing_drops_kept_replies(make: Make) -> None:
    rig = make()
    rig.feed(post())
    load = request_bytes("POST", "/admin/models/load",
                         {"model_id": "gpt-4o-mini", "response_text": "changed"})
    assert parse_responses(rig.feed(load))[0].status == 200
    (resp,) = parse_responses(rig.feed(post()))
    assert orjson.loads(resp.body)["choices"][0]["message"]["content"] == "changed"


def test_request_variants_are_not_served_a_kept_keep_alive_reply(make: Make) -> None:
    rig = make()
    rig.feed(post())
    out = rig.feed(post(headers=[("connection", "close")]))
    assert parse_responses(out)[0].headers[b"connection"] == b"close" and rig.transport.closed


@pytest.mark.parametrize("name", ["Authorization", "authorization", "AUTHORIZATION", "Api-Key",
                                  "x-api-key", "X-API-KEY"])
def test_keys_in_any_spelling_and_never_a_wrong_one(make: Make, name: str) -> None:
    rig = make(Config(api_keys=(KEY,)))
    value = f"Bearer {KEY}" if name.lower() == "authorization" else KEY
    for _ in range(3):   # the first is routed, the next ones are replayed
        assert parse_responses(rig.feed(post(headers=[(name, value)])))[0].status == 200
    wrong = value.replace(KEY, KEY + "x")
    for headers in ([(name, wrong)], [], [("x-other", value)]):
        (resp,) = parse_responses(rig.feed(post(headers=headers)))
        assert resp.status == 401, headers
    assert not rig.transport.closed
    # A second connection, whose client spells the header as the server has seen before.
    other = FakeTransport()
    second = rig.handler(rig.app, rig.scheduler, rig.connections)
    second.connection_made(other)  # type: ignore[arg-type]
    for _ in range(2):
        second.data_received(post(headers=[(name, value)]))
        assert parse_responses(other.take())[0].status == 200


def test_a_deleted_key_is_not_replayed(make: Make) -> None:
    rig = make(Config(api_keys=(KEY,)))
    auth = [("Authorization", f"Bearer {KEY}")]
    assert parse_responses(rig.feed(post(headers=auth)))[0].status == 200
    gone = request_bytes("DELETE", f"/admin/auth/keys/{KEY}")
    assert parse_responses(rig.feed(gone))[0].status == 200
    rig.app.keys.add("sk-another-key-2", "other", "config")   # keys still required
    assert parse_responses(rig.feed(post(headers=auth)))[0].status == 401


def test_a_connection_forgets_its_accepted_key_when_the_keys_change(make: Make) -> None:
    # A connection takes the key it had accepted last by identity (BaseProtocol.known): every
    # change of the keys must undo that, on the connection that made it and on idle ones.
    rig = make(Config(api_keys=(KEY,)))
    auth = [("Authorization", f"Bearer {KEY}")]
    other = FakeTransport()
    idle = rig.handler(rig.app, rig.scheduler, rig.connections)
    idle.connection_made(other)  # type: ignore[arg-type]
    for _ in range(3):   # routed, then replayed: the key is known on both connections
        assert parse_responses(rig.feed(post(headers=auth)))[0].status == 200
        idle.data_received(post(headers=auth))
        assert parse_responses(other.take())[0].status == 200
    assert rig.proto.known is not None and rig.proto.known[1] == f"Bearer {KEY}".encode()
    # A connection that has accepted no key yet, on the replay path: nothing passes for one.
    fresh_out = FakeTransport()
    fresh = rig.handler(rig.app, rig.scheduler, rig.connections)
    fresh.connection_made(fresh_out)  # type: ignore[arg-type]
    for headers in ([("Authorization", "")], [], [("x-api-key", "")]):
        fresh.data_received(post(headers=headers))
        assert parse_responses(fresh_out.take())[0].status == 401, headers
    for value in ("", "Bearer", f"Bearer {KEY}x"):   # near misses, on a connection that knows
        (resp,) = parse_responses(rig.feed(post(headers=[("Authorization", value)])))
        assert resp.status == 401, value
    assert parse_responses(rig.feed(post()))[0].status == 401   # no key header at all
    # The key is deleted and another one exists: refused on both connections.
    gone = request_bytes("DELETE", f"/admin/auth/keys/{KEY}")
    assert parse_responses(rig.feed(gone))[0].status == 200
    rig.app.keys.add("sk-another-key-2", "other", "config")
    assert parse_responses(rig.feed(post(headers=auth)))[0].status == 401
    idle.data_received(post(headers=auth))
    assert parse_responses(other.take())[0].status == 401
    # No key left: the API is open, to requests without a key too (replayed alike) ...
    assert parse_responses(rig.feed(request_bytes("DELETE", "/admin/auth/keys")))[0].status \
        == 200
    assert not rig.app.keys.active
    for _ in range(3):
        assert parse_responses(rig.feed(post()))[0].status == 200
        idle.data_received(post())
        assert parse_responses(other.take())[0].status == 200
    # ... until a key is created: then a request without one is refused again, everywhere.
    create = request_bytes("POST", "/admin/auth/keys", {"name": "new", "key": KEY})
    assert parse_responses(rig.feed(create))[0].status == 200
    assert parse_responses(rig.feed(post()))[0].status == 401
    idle.data_received(post())
    assert parse_responses(other.take())[0].status == 401
    for _ in range(2):
        assert parse_responses(rig.feed(post(headers=auth)))[0].status == 200


def test_the_admin_key_is_read_without_api_keys(make: Make) -> None:
    rig = make(Config(admin_key="admin-secret-1"), peer=("10.0.0.9", 5000))
    listing = request_bytes("GET", "/admin/auth/keys",
                            headers=[("Authorization", "Bearer admin-secret-1")])
    assert parse_responses(rig.feed(listing), method=b"GET")[0].status == 200
    bare = request_bytes("GET", "/admin/auth/keys")
    assert parse_responses(rig.feed(bare), method=b"GET")[0].status == 401


# -- requests that differ only in their last message's text (ready.Shapes) ------------------

def chat_body(text: str, **extra: object) -> bytes:
    return orjson.dumps({"model": "gpt-4o-mini",
                         "messages": [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": text}], **extra})


def answer(rig: object, body: bytes) -> ChatCompletion:
    out = rig.feed(request_bytes("POST", "/v1/chat/completions", body))  # type: ignore[attr-defined]
    (resp,) = parse_responses(out)
    assert resp.status == 200, resp.body
    return ChatCompletion.model_validate_json(resp.body)


def routed(rig: object, body: bytes) -> bytes:
    req = Request(b"POST", b"/v1/chat/completions", [], body)
    return route(req, rig.app).body  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["request 3 of many", "x", "words " * 40 + "end",
                                  "über 10 €", 'tab\tand quote " inside',
                                  # after the learned lead ("warm up"): counted by the tail
                                  "warm up 12345", "warm up 7 and more!", "warm up über",
                                  "warm up back\\slash", "warm up\ttab", "warm up"])
def test_a_new_prompt_gets_its_own_usage_and_the_same_reply(make: Make, text: str) -> None:
    rig = make()
    for i in range(3):   # seen twice: the shape is learned
        answer(rig, chat_body(f"warm up {i}"))
    assert rig.app.shapes.table
    body = chat_body(text)
    got = answer(rig, body)
    want = ChatCompletion.model_validate_json(routed(rig, body))
    assert got.usage == want.usage and got.choices == want.choices
    assert got.usage is not None
    assert got.usage.prompt_tokens == 2 * 4 + 3 + tokens.count("Be brief.") + tokens.count(text)
    assert without_ids(parse_responses(rig.feed(request_bytes(
        "POST", "/v1/chat/completions", body)))[0].body) == without_ids(routed(rig, body))


def test_tails_of_one_kind_share_a_reply_and_their_counts(make: Make) -> None:
    rig = make()
    for i in range(3):
        answer(rig, chat_body(f"warm up {i}"))
    for text in ("warm up 11", "warm up 99", "warm up 1234567", "warm up 7654321",
                 "warm up ab!", "warm up xy?", "warm up 1,2", "warm up 3.4"):
        got = answer(rig, chat_body(text))
        assert got.usage is not None
        assert got.usage.prompt_tokens == 2 * 4 + 3 + tokens.count("Be brief.") \
            + tokens.count(text), text
    (shape,) = rig.app.shapes.table.values()
    # (" 0" is the third warm-up's, the first answered from the shape)
    assert set(shape.by_tail) == {b" 0", b" 00", b" 0000000", b" aa.", b" 0.0"}


def test_what_the_text_cannot_be_goes_the_long_way(make: Make) -> None:
    rig = make()
    for i in range(3):
        answer(rig, chat_body(f"warm up {i}"))
    raw = chat_body("PLACEHOLDER")
    bad_control = raw.replace(b"PLACEHOLDER", b"a\x01b")        # JSON forbids it
    (resp,) = parse_responses(rig.feed(request_bytes("POST", "/v1/chat/completions",
                                                     bad_control)))
    assert resp.status == 400
    bad_utf8 = raw.replace(b"PLACEHOLDER", b"a\xffb")
    (resp,) = parse_responses(rig.feed(request_bytes("POST", "/v1/chat/completions", bad_utf8)))
    assert resp.status == 400
    for tail in (b"warm up a\x01b", b"warm up \x1f", b"warm up \xff", b"warm up \\x"):
        bad = raw.replace(b"PLACEHOLDER", tail)     # after the lead, as a counter would be
        (resp,) = parse_responses(rig.feed(request_bytes("POST", "/v1/chat/completions", bad)))
        assert resp.status == 400, tail


def test_other_fields_are_never_taken_for_the_prompt(make: Make) -> None:
    rig = make()
    for n in (1, 2, 3):   # the same text, another max_tokens each time
        got = answer(rig, chat_body("same text", max_tokens=n))
        assert got.usage is not None and got.usage.completion_tokens == n
    # A "content" key after the messages is the last one in the body: no shape from it.
    for meta in ("a", "b", "c"):
        answer(rig, chat_body("fixed", metadata={"content": meta}))
    assert all(b"metadata" not in key[3] for key in rig.app.shapes.table)


def test_echo_replies_depend_on_the_text(make: Make) -> None:
    rig = make(Config(mode="echo"))
    for text in ("one", "two", "three", "four"):
        assert answer(rig, chat_body(text)).choices[0].message.content == text
    assert not rig.app.shapes.table


def test_streams_without_usage_share_their_bytes(make: Make) -> None:
    rig = make()
    bodies = [chat_body(f"prompt {i}", stream=True) for i in range(4)]
    outs = [rig.feed(request_bytes("POST", "/v1/chat/completions", b)) for b in bodies]
    assert rig.app.shapes.table
    assert len({without_ids(o) for o in outs}) == 1
    assert sse_events(parse_responses(outs[-1])[0].body)[-1] == "[DONE]"


def test_keys_are_checked_on_the_shape_path(make: Make) -> None:
    rig = make(Config(api_keys=(KEY,)))
    auth = [("Authorization", f"Bearer {KEY}")]
    for i in range(3):
        out = rig.feed(request_bytes("POST", "/v1/chat/completions", chat_body(f"p {i}"), auth))
        assert parse_responses(out)[0].status == 200
    assert rig.app.shapes.table
    out = rig.feed(request_bytes("POST", "/v1/chat/completions", chat_body("p 9")))
    assert parse_responses(out)[0].status == 401
