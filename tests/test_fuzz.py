"""Property-based fuzzing: random bytes at both protocols, random JSON at every route.

No exception escapes, every response is well-formed HTTP with an OpenAI-style error body, and
the connection is either alive or closed on purpose. ``make fuzz`` runs the same properties
with many more examples (FASTMOCK_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import h11
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmock.config import Config
from fastmock.protocol_h11 import H11Protocol
from fastmock.protocol_httptools import HttpToolsProtocol
from fastmock.routes import route
from fastmock.routes.common import Request
from fastmock.state import App
from helpers import Rig, request_bytes

EXAMPLES = int(os.environ.get("FASTMOCK_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/rerank",
         "/v1/responses", "/admin/models/load", "/admin/auth/keys"]
APP = App(Config(max_body_bytes=4096, max_header_bytes=2048))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["model", "messages", "role", "content", "input",
                                       "prompt", "stream", "n", "tools", "type", "function",
                                       "parameters", "documents", "query", "max_tokens",
                                       "stop", "seed", "response_format", "tool_choice",
                                       "model_id", "model_type", "text"]) | st.text(max_size=8),
                      children, max_size=5),
    max_leaves=25)


def well_formed(data: bytes) -> int:
    """Parse every response in ``data``; return how many. Fails on malformed HTTP."""
    if not data:
        return 0
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    count = 0
    while True:
        if client.our_state is h11.IDLE:
            client.send(h11.Request(method="POST", target="/", headers=[("host", "x")]))
            client.send(h11.EndOfMessage())
        event = client.next_event()
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return count
        if isinstance(event, h11.Response) and event.status_code >= 400:
            # an error body follows: check it is the OpenAI shape
            body = b""
            while not isinstance(event, h11.EndOfMessage):
                event = client.next_event()
                if event is h11.NEED_DATA:
                    return count
                if isinstance(event, h11.Data):
                    body += event.data
            assert set(orjson.loads(body)["error"]) == {"message", "type", "param", "code"}
            count += 1
        elif isinstance(event, h11.EndOfMessage):
            count += 1
        if client.our_state is h11.DONE and client.their_state is h11.DONE:
            client.start_next_cycle()
        elif client.their_state is h11.MUST_CLOSE and isinstance(event, h11.EndOfMessage):
            return count


@FUZZ
@given(st.lists(st.binary(max_size=300), max_size=6), st.booleans(),
       st.sampled_from([H11Protocol, HttpToolsProtocol]))
def test_random_bytes_at_the_protocol(chunks: list[bytes], good_first: bool,
                                      handler: Any) -> None:
    rig = Rig(Config(max_body_bytes=4096, max_header_bytes=2048), handler=handler)
    out = rig.feed(request_bytes("GET", "/health")) if good_first else b""
    for chunk in chunks:
        if rig.transport.closed:
            break
        out += rig.feed(chunk)
    rig.proto.eof_received()
    out += rig.transport.take()
    assert well_formed(out) >= (1 if good_first else 0)


@FUZZ
@given(st.sampled_from(PATHS), json_values)
def test_random_json_at_every_route(path: str, value: Any) -> None:
    try:
        raw = orjson.dumps(value)
    except TypeError:            # ints beyond 64 bits: send their text as the body
        raw = repr(value).encode()
    app = App(APP.config) if path.startswith("/admin/") else APP   # admin calls change state
    reply = route(Request(b"POST", path.encode(), [], raw), app)
    assert 200 <= reply.status < 600 and reply.status != 500, reply.body
    if reply.status >= 400:
        assert set(orjson.loads(reply.body)["error"]) == {"message", "type", "param", "code"}
    elif reply.steps is None:
        orjson.loads(reply.body)


@FUZZ
@given(st.dictionaries(st.sampled_from(["type", "properties", "required", "items", "enum",
                                        "minimum", "maximum", "anyOf", "minItems", "maxItems",
                                        "$ref", "const", "format", "minLength"]),
                       json_values, max_size=5))
def test_random_tool_schemas(params: dict[str, Any]) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": params}}]}
    try:
        raw = orjson.dumps(body)
    except TypeError:
        return
    reply = route(Request(b"POST", b"/v1/chat/completions", [], raw), APP)
    assert reply.status in (200, 400), reply.body
    if reply.status == 200:
        args = orjson.loads(reply.body)["choices"][0]["message"]["tool_calls"][0]
        orjson.loads(args["function"]["arguments"])
