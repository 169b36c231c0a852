"""What a new user hit (issue 13): error messages that name the right field, the CLI and the
environment, /stats for unpaced streams, the admin API's gaps, strict mode."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import openai
import orjson
import pytest
from openai import OpenAI

from fastmock.config import Config, ConfigError, load
from fastmock.reply import Reply
from fastmock.routes import route
from fastmock.routes.common import Request
from fastmock.state import App
from helpers import Make, parse_responses, request_bytes, running_server

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
BAD_SCHEMA = {"type": "object", "properties": {"x": {"type": "string", "minLength": 5,
                                                     "maxLength": 2}}}


def call(app: App, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Reply:
    data = raw if raw is not None else (b"" if body is None else orjson.dumps(body))
    return route(Request(method.encode(), path.encode(), [], data), app)


def error(reply: Reply) -> dict[str, Any]:
    return dict(orjson.loads(reply.body)["error"])


def test_a_bad_schema_names_the_field_that_carried_it() -> None:
    app = App(Config())
    chat = error(call(app, "POST", "/v1/chat/completions", {**CHAT, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": BAD_SCHEMA}}}))
    assert chat["param"] == "response_format.json_schema.schema"
    assert "'response_format.json_schema.schema'" in chat["message"]
    responses = error(call(app, "POST", "/v1/responses", {
        "model": "gpt-4o-mini", "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "x", "schema": BAD_SCHEMA}}}))
    assert responses["param"] == "text.format.schema"
    assert "response_format" not in responses["message"]
    tool = error(call(app, "POST", "/v1/chat/completions", {**CHAT, "tools": [
        {"type": "function", "function": {"name": "f", "parameters": BAD_SCHEMA}}]}))
    assert tool["param"] == "tools" and "function 'f'" in tool["message"]


def test_messages_said_once_and_in_english(make: Make) -> None:
    rig = make(Config(max_body_bytes=2048))
    (resp,) = parse_responses(rig.feed(request_bytes("POST", "/v1/chat/completions", None,
                                                     [("content-length", "4096")])))
    message = resp.json()["error"]["message"]
    assert message.count("larger than") == 1 and "2048" in message
    app = App(Config())
    wrong = error(call(app, "POST", "/v1/chat/completions",
                       {**CHAT, "model": "text-embedding-3-small"}))
    assert "is an embedding model" in wrong["message"]
    raw = b'{"model": "m",\n "messages": [{"role": "user", "content": "\xff"}]}'
    bad = error(call(app, "POST", "/v1/chat/completions", raw=raw))
    assert "not valid UTF-8" in bad["message"] and "0xff" in bad["message"]
    column = raw.index(b"\xff") - raw.index(b"\n")
    assert f"line 2 column {column}" in bad["message"] and "surrogates" not in bad["message"]


def test_admin_model_errors_name_the_field() -> None:
    app = App(Config())
    bad = error(call(app, "POST", "/admin/models/load",
                     {"model_id": "m1", "model_type": "chat", "itl_ms": 5, "ttft_ms": -1}))
    assert bad["param"] == "ttft_ms"
    patch = error(call(app, "PATCH", "/admin/config",
                       {"models": {"gpt-4o-mini": {"itl_ms": 5, "ttft_ms": -1}}}))
    assert patch["param"] == "models.gpt-4o-mini.ttft_ms"


def test_admin_keys_chosen_and_deleted_by_id_name_or_prefix() -> None:
    app = App(Config())
    made = orjson.loads(call(app, "POST", "/admin/auth/keys",
                             {"name": "ci", "key": "sk-ci-known-key"}).body)
    assert made["key"] == "sk-ci-known-key" and made["id"].startswith("key_")
    assert call(app, "POST", "/admin/auth/keys", {"key": "sk-ci-known-key"}).status == 409
    assert error(call(app, "POST", "/admin/auth/keys", {"key": "short"}))["param"] == "key"
    ok = [(b"authorization", b"Bearer sk-ci-known-key")]
    assert route(Request(b"POST", b"/v1/chat/completions", ok, orjson.dumps(CHAT)),
                 app).status == 200
    listed = orjson.loads(call(app, "GET", "/admin/auth/keys").body)["data"]
    assert [k["id"] for k in listed] == [made["id"]]
    # by name, by id, by the listed prefix, by the key itself
    for handle in ("ci", made["id"], listed[0]["key_prefix"], "sk-ci-known-key"):
        call(app, "POST", "/admin/auth/keys", {"name": "ci", "key": "sk-ci-known-key"})
        gone = call(app, "DELETE", f"/admin/auth/keys/{handle}")
        assert gone.status == 200, handle
        assert orjson.loads(gone.body)["id"] == made["id"]
    assert call(app, "DELETE", "/admin/auth/keys/ci").status == 404
    call(app, "POST", "/admin/auth/keys", {"name": "twin"})
    call(app, "POST", "/admin/auth/keys", {"name": "twin"})
    twins = call(app, "DELETE", "/admin/auth/keys/twin")
    assert twins.status == 409 and error(twins)["message"].count("key_") == 2


def test_admin_models_lists_effective_settings() -> None:
    app = App(Config(itl_ms=7.0))
    call(app, "POST", "/admin/models/load", {"model_id": "fast", "ttft_ms": 1})
    models = {m["id"]: m for m in orjson.loads(call(app, "GET", "/admin/models").body)["data"]}
    assert models["fast"]["source"] == "admin" and models["fast"]["settings"]["ttft_ms"] == 1
    assert models["fast"]["settings"]["itl_ms"] == 7.0            # the global value
    assert models["o4-mini"]["model_type"] == "reasoning"
    assert models["gpt-4o-mini"]["source"] == "config"


def test_cli_errors_are_one_line_and_help_lists_choices() -> None:
    for args in (["--mode", "foo"], ["--http", "foo"], ["--log-level", "verbose"]):
        done = subprocess.run([sys.executable, "-m", "fastmock", *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "invalid choice" in lines[0], done.stderr
    shown = subprocess.run([sys.executable, "-m", "fastmock", "--help"], capture_output=True,
                           text=True, timeout=30).stdout
    flat = " ".join(shown.split())
    assert "one of canned, echo, lorem;" in flat and "one of auto, h11, httptools;" in flat


def test_an_unknown_fastmock_variable_is_an_error() -> None:
    with pytest.raises(ConfigError, match="FASTMOCK_TTFTMS: unknown environment variable; "
                                          "did you mean FASTMOCK_TTFT_MS"):
        load({}, environ={"FASTMOCK_TTFTMS": "5"})
    assert load({}, environ={"FASTMOCK_TTFT_MS": "5"}).ttft_ms == 5.0
    done = subprocess.run([sys.executable, "-m", "fastmock"], capture_output=True, text=True,
                          timeout=30, env={"PATH": "/usr/bin:/bin", "FASTMOCK_ITLMS": "3"})
    assert done.returncode == 2 and "FASTMOCK_ITL_MS" in done.stderr


def test_unpaced_streams_are_counted_in_stats(make: Make) -> None:
    rig = make()
    body = {**CHAT, "stream": True}
    for _ in range(3):     # the first answered the long way, the next from the kept reply
        rig.feed(request_bytes("POST", "/v1/chat/completions", body))
    (resp,) = parse_responses(rig.feed(request_bytes("GET", "/stats")))
    pacing = resp.json()["pacing"]
    assert pacing["streams"]["started"] == pacing["streams"]["finished"] == 3
    assert pacing["streams"]["sent_whole_unpaced"] == 3
    assert pacing["steps_sent"] >= 3 * 10


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_strict_requests_reject_what_openai_rejects(http: str) -> None:
    with running_server("--http", http, "--strict-requests") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        cases: list[tuple[dict[str, Any], str | None, str]] = [
            ({"extra_body": {"foo": 1}}, None, "Unrecognized request argument supplied: foo"),
            ({"extra_body": {"ignore_eos": True}}, None, "supplied: ignore_eos"),
            ({"model": ""}, "model", "empty string"),
            ({"extra_body": {"n": 1.0}}, "n", "expected an integer, but got a decimal"),
            ({"messages": [{"role": "user", "content": None}]}, "messages[0].content",
             "got null instead"),
        ]
        for kw, param, words in cases:
            with pytest.raises(openai.BadRequestError) as bad:
                client.chat.completions.create(**{**CHAT, **kw})
            body = bad.value.body
            assert isinstance(body, dict) and body["param"] == param and words in body["message"]
        assert client.chat.completions.create(**CHAT).choices   # a proper request still works
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="text-embedding-3-small", input="x",
                                     extra_body={"truncate": True})
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="gpt-4o-mini", input="x", extra_body={"foo": 1})
    with running_server("--http", http) as s:   # lenient by default
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        assert client.chat.completions.create(**CHAT, extra_body={"foo": 1, "n": 1.0}).choices
