"""Endpoints as pure functions: Request in, Reply out, no sockets."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fastmock import tokens
from fastmock.config import Config, ModelSpec
from fastmock.reply import Reply
from fastmock.routes import canonical_path, route
from fastmock.routes.common import Request
from fastmock.state import App


def call(app: App, method: str, path: str, body: Any = None) -> Reply:
    raw = body if isinstance(body, bytes) else (b"" if body is None else orjson.dumps(body))
    return route(Request(method.encode(), path.encode(), [], raw), app)


def chat(app: App, **fields: Any) -> Reply:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi there"}]}
    body.update(fields)
    return call(app, "POST", "/v1/chat/completions", body)


def stream_chunks(reply: Reply) -> list[str]:
    assert reply.steps is not None
    text = b"".join(reply.steps).decode()
    assert text.endswith("\n\n")
    return [block[len("data: "):] for block in text.split("\n\n")[:-1]]


@pytest.fixture
def app() -> App:
    return App(Config())


def test_canonical_path() -> None:
    assert canonical_path(b"/v1/chat/completions?x=1") == "/chat/completions"
    assert canonical_path(b"/chat/completions") == "/chat/completions"
    assert canonical_path(b"/v1x/models") == "/v1x/models"


def test_chat_nonstream_validates_with_sdk_types(app: App) -> None:
    reply = chat(app)
    assert reply.status == 200 and reply.steps is None
    completion = ChatCompletion.model_validate_json(reply.body)
    text = Config().response_text
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4o-mini"
    assert completion.id.startswith("chatcmpl-")
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == tokens.count(text)
    assert usage.prompt_tokens == tokens.count("Hi there") + 4 + 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_ids_are_unique(app: App) -> None:
    ids = {ChatCompletion.model_validate_json(chat(app).body).id for _ in range(50)}
    assert len(ids) == 50


def test_any_model_name_is_echoed(app: App) -> None:
    body = orjson.loads(chat(app, model='weird/"name"').body)
    assert body["model"] == 'weird/"name"'


def test_strict_models() -> None:
    app = App(Config(strict_models=True))
    reply = chat(app, model="nope")
    assert reply.status == 404
    assert orjson.loads(reply.body)["error"]["code"] == "model_not_found"
    assert chat(app, model="gpt-4o").status == 200


def test_max_tokens_cuts_and_sets_length(app: App) -> None:
    for field in ("max_tokens", "max_completion_tokens"):
        completion = ChatCompletion.model_validate_json(chat(app, **{field: 3}).body)
        choice = completion.choices[0]
        assert choice.finish_reason == "length"
        assert choice.message.content == "".join(tokens.split(Config().response_text)[:3])
        assert completion.usage is not None and completion.usage.completion_tokens == 3
    # A limit above the reply length changes nothing.
    completion = ChatCompletion.model_validate_json(chat(app, max_tokens=10_000).body)
    assert completion.choices[0].finish_reason == "stop"


def test_n_choices(app: App) -> None:
    completion = ChatCompletion.model_validate_json(chat(app, n=3).body)
    assert [c.index for c in completion.choices] == [0, 1, 2]
    per_choice = tokens.count(Config().response_text)
    assert completion.usage is not None and completion.usage.completion_tokens == 3 * per_choice


def test_stream_shape(app: App) -> None:
    reply = chat(app, stream=True)
    assert reply.headers[0] == (b"content-type", b"text/event-stream; charset=utf-8")
    events = stream_chunks(reply)
    assert events[-1] == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(e) for e in events[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == Config().response_text
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert all("usage" not in orjson.loads(e) for e in events[:-1])
    # one step per token; the role chunk travels with the first token
    assert reply.steps is not None
    assert len(reply.steps) == tokens.count(Config().response_text)


def test_stream_include_usage(app: App) -> None:
    events = stream_chunks(chat(app, stream=True, max_tokens=4,
                                stream_options={"include_usage": True}))
    raw = [orjson.loads(e) for e in events[:-1]]
    assert all(r["usage"] is None for r in raw[:-1])
    last = ChatCompletionChunk.model_validate(raw[-1])
    assert last.choices == [] and last.usage is not None
    assert last.usage.completion_tokens == 4
    content = [ChatCompletionChunk.model_validate(r) for r in raw[:-1]]
    assert sum(1 for c in content if c.choices[0].delta.content) == 4
    assert content[-1].choices[0].finish_reason == "length"


def test_stream_n_and_chunking() -> None:
    app = App(Config(tokens_per_chunk=4, response_text="one two three four five six"))
    reply = chat(app, stream=True, n=2)
    chunks = [ChatCompletionChunk.model_validate_json(e) for e in stream_chunks(reply)[:-1]]
    for index in (0, 1):
        mine = [c.choices[0] for c in chunks if c.choices[0].index == index]
        assert "".join(ch.delta.content or "" for ch in mine) == "one two three four five six"
        assert mine[-1].finish_reason == "stop"
    assert reply.steps is not None and len(reply.steps) == 2   # 6 tokens in chunks of 4


def test_echo_and_lorem_modes() -> None:
    echo = App(Config(mode="echo"))
    completion = ChatCompletion.model_validate_json(
        chat(echo, messages=[{"role": "user", "content": "say this back"}]).body)
    assert completion.choices[0].message.content == "say this back"
    lorem = App(Config(mode="lorem", lorem_tokens=40))
    a = ChatCompletion.model_validate_json(chat(lorem).body)
    b = ChatCompletion.model_validate_json(chat(lorem).body)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage is not None and a.usage.completion_tokens == 40


def test_per_model_settings_apply() -> None:
    spec = ModelSpec("slow", overrides={"itl_ms": 20.0, "ttft_ms": 100.0,
                                        "response_text": "a b c"})
    app = App(Config(models=(spec,)))
    reply = chat(app, model="slow", stream=True)
    assert reply.steps is not None and reply.pace is not None
    plan = reply.pace.plan(reply.steps)
    assert (plan.ttft, plan.itl, len(plan.steps)) == (0.1, 0.02, 3)
    # Non-streaming waits as long as the stream would have taken ...
    delayed = chat(app, model="slow")
    assert delayed.steps is None and delayed.pace is not None
    assert delayed.pace.delay(delayed.wait_steps) == pytest.approx(0.1 + 2 * 0.02)
    # ... unless delay_nonstream is off.
    fast = App(Config(models=(ModelSpec("slow", overrides={"itl_ms": 20.0,
                                                           "delay_nonstream": False}),)))

    def wait(reply: Reply) -> float:
        return reply.pace.delay(reply.wait_steps) if reply.pace is not None else 0.0

    assert wait(chat(fast, model="slow")) == 0.0
    assert wait(chat(app, model="other")) == 0.0   # unknown names use the global settings


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    (b"{not json", 400, None, None),
    (b"", 400, None, None),
    (b"[1, 2]", 400, None, None),
    ({"messages": [{"role": "user", "content": "x"}]}, 400, "model", "missing_required_parameter"),
    ({"model": 5, "messages": []}, 400, "model", "invalid_type"),
    ({"model": "m"}, 400, "messages", "missing_required_parameter"),
    ({"model": "m", "messages": "hi"}, 400, "messages", "invalid_type"),
    ({"model": "m", "messages": []}, 400, "messages", "empty_array"),
    ({"model": "m", "messages": ["hi"]}, 400, "messages[0]", "invalid_type"),
    ({"model": "m", "messages": [{"content": "x"}]}, 400, "messages[0].role",
     "missing_required_parameter"),
    ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, 400, "messages[0].role",
     "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content",
     "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": [1]}]}, 400,
     "messages[0].content[0]", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, 400,
     "stream", "invalid_type"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}, 400, "n",
     "integer_out_of_range"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "5"}, 400,
     "max_tokens", "invalid_type"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1e30}', 400,
     "max_tokens", "integer_out_of_range"),
    (b'{"model": "m", "messages": [], "x": 1e400}', 400, None, None),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400,
     "temperature", "decimal_out_of_range"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "stream_options": {"include_usage": True}}, 400, "stream_options", "invalid_value"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True,
      "stream_options": {"include_usage": 1}}, 400, "stream_options.include_usage",
     "invalid_type"),
])
def test_bad_chat_requests(app: App, body: Any, status: int, param: str | None,
                           code: str | None) -> None:
    reply = call(app, "POST", "/v1/chat/completions", body)
    assert reply.status == status
    error = orjson.loads(reply.body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert (error["param"], error["code"]) == (param, code)
    assert error["message"]


def test_models_list_and_retrieve(app: App) -> None:
    body = orjson.loads(call(app, "GET", "/v1/models").body)
    assert body["object"] == "list"
    models = [Model.model_validate(m) for m in body["data"]]
    assert "gpt-4o-mini" in {m.id for m in models}
    one = Model.model_validate_json(call(app, "GET", "/models/gpt-4o").body)
    assert one.id == "gpt-4o" and one.owned_by == "openai"
    missing = call(app, "GET", "/v1/models/none")
    assert missing.status == 404
    assert orjson.loads(missing.body)["error"]["code"] == "model_not_found"


def test_model_ids_with_slashes() -> None:
    app = App(Config(models=(ModelSpec("org/model-x"),)))
    assert Model.model_validate_json(call(app, "GET", "/v1/models/org%2Fmodel-x").body).id \
        == "org/model-x"
    assert Model.model_validate_json(call(app, "GET", "/v1/models/org/model-x").body).id \
        == "org/model-x"


def test_unknown_path_and_wrong_method(app: App) -> None:
    r = call(app, "GET", "/v1/nothing")
    assert r.status == 404 and "Invalid URL" in orjson.loads(r.body)["error"]["message"]
    r = call(app, "GET", "/v1/chat/completions")
    assert r.status == 405 and (b"allow", b"POST") in r.headers
    r = call(app, "POST", "/v1/models")
    assert r.status == 405 and (b"allow", b"GET") in r.headers


def test_health(app: App) -> None:
    for path in ("/health", "/healthz"):
        r = call(app, "GET", path)
        assert r.status == 200 and orjson.loads(r.body) == {"status": "ok"}


def test_a_bug_is_a_500_not_a_crash(app: App, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    from fastmock import routes

    def boom(*_: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setitem(routes.ROUTES, "/chat/completions", {b"POST": boom})
    r = chat(app)
    assert r.status == 500
    error = orjson.loads(r.body)["error"]
    assert error["type"] == "server_error" and "bug" not in error["message"]  # no internals
    assert "RuntimeError: bug" in caplog.text    # the traceback goes to the log
    assert call(app, "GET", "/v1/models").status == 200      # and the next request is fine
