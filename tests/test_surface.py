"""The whole OpenAI surface as pure endpoint calls, validated with the openai SDK's types."""

from __future__ import annotations

import base64
import json
from array import array
from typing import Any

import jsonschema
import orjson
import pytest
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from fastmock import tokens
from fastmock.config import DEFAULT_REASONING_TEXT, Config, ModelSpec, load
from fastmock.reply import Reply
from fastmock.routes import route
from fastmock.routes.common import Request
from fastmock.state import App

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "unit"]}}},
    {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}}}]
USER = [{"role": "user", "content": "What is the weather in Paris?"}]


def call(app: App, path: str, body: Any, method: str = "POST") -> Reply:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return route(Request(method.encode(), path.encode(), [], raw), app)


def ok(reply: Reply) -> Any:
    assert reply.status == 200, reply.body
    return orjson.loads(reply.body)


def sse(reply: Reply) -> list[str]:
    assert reply.steps is not None
    text = b"".join(reply.steps).decode()
    return [b.split("data: ", 1)[1] for b in text.split("\n\n") if b]


def error(reply: Reply) -> dict[str, Any]:
    assert reply.status >= 400
    err: dict[str, Any] = orjson.loads(reply.body)["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.fixture
def app() -> App:
    return App(Config())


# -- completions -----------------------------------------------------------------------------

def test_completions_default_max_tokens_and_echo(app: App) -> None:
    done = Completion.model_validate(ok(call(app, "/v1/completions",
                                             {"model": "gpt-4o-mini", "prompt": "Say: "})))
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    choice = done.choices[0]
    assert choice.finish_reason == "length"              # 16 tokens, as at OpenAI
    assert choice.text == "".join(tokens.split(Config().response_text)[:16])
    echoed = Completion.model_validate(ok(call(app, "/v1/completions", {
        "model": "m", "prompt": "Say: ", "echo": True, "max_tokens": 200})))
    assert echoed.choices[0].text == "Say: " + Config().response_text
    assert echoed.choices[0].finish_reason == "stop"


def test_completions_many_prompts_n_and_usage(app: App) -> None:
    done = Completion.model_validate(ok(call(app, "/v1/completions", {
        "model": "m", "prompt": ["one", "two three"], "n": 2, "max_tokens": 3})))
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    assert done.usage is not None
    assert done.usage.prompt_tokens == 1 + 2 and done.usage.completion_tokens == 4 * 3
    ids = Completion.model_validate(ok(call(app, "/v1/completions", {
        "model": "m", "prompt": [[1, 2, 3], [4]], "max_tokens": 2})))
    assert ids.usage is not None and ids.usage.prompt_tokens == 4


def test_completions_stream_and_stop(app: App) -> None:
    reply = call(app, "/v1/completions", {"model": "m", "prompt": "x", "stream": True,
                                          "max_tokens": 500, "stop": [" mock"],
                                          "stream_options": {"include_usage": True}})
    events = sse(reply)
    assert events[-1] == "[DONE]"
    # Stream chunks carry finish_reason null until the last, as OpenAI's do (the SDK builds
    # them without validation); the chunk that finishes and the usage chunk validate strictly.
    raw = [orjson.loads(e) for e in events[:-1]]
    assert all(r["object"] == "text_completion" and r["id"] == raw[0]["id"] for r in raw)
    text = "".join(r["choices"][0]["text"] for r in raw if r["choices"])
    assert text == Config().response_text.split(" mock")[0]
    assert Completion.model_validate(raw[-2]).choices[0].finish_reason == "stop"
    last = Completion.model_validate(raw[-1])
    assert last.choices == [] and last.usage is not None


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "m"}, "prompt"), ({"model": "m", "prompt": 5}, "prompt"),
    ({"model": "m", "prompt": ["a", 5]}, "prompt[1]"),
    ({"model": "m", "prompt": "a", "stop": [1]}, "stop"),
    ({"model": "m", "prompt": "a", "max_tokens": 0}, "max_tokens"),
    ({"model": "text-embedding-3-small", "prompt": "a"}, "model"),
])
def test_completions_errors(app: App, body: dict[str, Any], param: str) -> None:
    assert error(call(app, "/v1/completions", body))["param"] == param


# -- embeddings ------------------------------------------------------------------------------

def floats(item: Any) -> list[float]:
    if isinstance(item, str):
        return list(array("f", base64.b64decode(item)))
    return list(item)


def test_embeddings_deterministic_unit_vectors(app: App) -> None:
    body = {"model": "text-embedding-3-small", "input": ["hello world", "another"]}
    first = CreateEmbeddingResponse.model_validate(ok(call(app, "/v1/embeddings", body)))
    again = CreateEmbeddingResponse.model_validate(ok(call(App(Config()), "/v1/embeddings",
                                                            body)))
    assert [d.embedding for d in first.data] == [d.embedding for d in again.data]
    a, b = (d.embedding for d in first.data)
    assert len(a) == 1536 and a != b
    assert sum(x * x for x in a) == pytest.approx(1.0, abs=1e-5)
    assert first.usage.prompt_tokens == tokens.count("hello world") + tokens.count("another")
    other = ok(call(app, "/v1/embeddings", {"model": "mock-embedding-ada-002",
                                            "input": "hello world"}))
    assert other["data"][0]["embedding"] != a          # vectors depend on the model too


def test_embeddings_base64_matches_float(app: App) -> None:
    plain = ok(call(app, "/v1/embeddings", {"model": "m", "input": "x"}))["data"][0]
    b64 = ok(call(app, "/v1/embeddings", {"model": "m", "input": "x",
                                          "encoding_format": "base64"}))["data"][0]
    assert isinstance(b64["embedding"], str)
    assert floats(b64["embedding"]) == plain["embedding"]


def test_embeddings_dimensions_tokens_and_sizes(app: App) -> None:
    cut = ok(call(app, "/v1/embeddings", {"model": "text-embedding-3-large", "input": "x",
                                          "dimensions": 256}))["data"][0]["embedding"]
    assert len(cut) == 256 and sum(v * v for v in cut) == pytest.approx(1.0, abs=1e-5)
    large = ok(call(app, "/v1/embeddings", {"model": "text-embedding-3-large", "input": "x"}))
    assert len(large["data"][0]["embedding"]) == 3072
    ids = ok(call(app, "/v1/embeddings", {"model": "m", "input": [[1, 2, 3], [4, 5]]}))
    assert ids["usage"]["prompt_tokens"] == 5 and len(ids["data"]) == 2
    single = ok(call(app, "/v1/embeddings", {"model": "m", "input": [7, 8]}))
    assert len(single["data"]) == 1


@pytest.mark.parametrize(("body", "param", "status"), [
    ({"model": "m"}, "input", 400), ({"model": "m", "input": []}, "input", 400),
    ({"model": "m", "input": [""]}, "input[0]", 400),
    ({"model": "m", "input": [{"x": 1}]}, "input[0]", 400),
    ({"model": "m", "input": "x", "encoding_format": "hex"}, "encoding_format", 400),
    ({"model": "m", "input": "x", "dimensions": 5000}, "dimensions", 400),
    ({"model": "gpt-4o", "input": "x"}, "model", 400),
])
def test_embeddings_errors(app: App, body: dict[str, Any], param: str, status: int) -> None:
    reply = call(app, "/v1/embeddings", body)
    assert reply.status == status and error(reply)["param"] == param


# -- rerank ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
def test_rerank_orders_by_overlap(app: App, path: str) -> None:
    docs = ["The engine of a car", "A recipe for apple pie", {"text": "apple trees"}]
    out = ok(call(app, path, {"model": "mock-rerank-v1", "query": "apple pie recipe",
                              "documents": docs, "return_documents": True}))
    assert [r["index"] for r in out["results"]] == [1, 2, 0]
    scores = [r["relevance_score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True) and scores[-1] == 0.0 < scores[-2]
    assert out["results"][0]["document"] == {"text": "A recipe for apple pie"}
    assert out["id"].startswith("rerank-") and out["usage"]["total_tokens"] > 0
    top = ok(call(app, path, {"model": "mock-rerank-v1", "query": "apple", "documents": docs,
                              "top_n": 1}))
    assert len(top["results"]) == 1 and "document" not in top["results"][0]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "mock-rerank-v1", "documents": ["a"]}, "query"),
    ({"model": "mock-rerank-v1", "query": "q"}, "documents"),
    ({"model": "mock-rerank-v1", "query": "q", "documents": [1]}, "documents[0]"),
    ({"model": "mock-rerank-v1", "query": "q", "documents": ["a"], "top_n": 0}, "top_n"),
    ({"model": "gpt-4o-mini", "query": "q", "documents": ["a"]}, "model"),
])
def test_rerank_errors(app: App, body: dict[str, Any], param: str) -> None:
    assert error(call(app, "/v1/rerank", body))["param"] == param


# -- responses -------------------------------------------------------------------------------

def test_responses_nonstream_and_store(app: App) -> None:
    out = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "gpt-4o-mini", "input": "Hi", "instructions": "be kind"})))
    assert out.status == "completed" and out.output_text == Config().response_text
    assert out.id.startswith("resp_") and out.instructions == "be kind"
    assert out.usage is not None and out.usage.total_tokens == \
        out.usage.input_tokens + out.usage.output_tokens
    got = Response.model_validate(ok(call(app, f"/v1/responses/{out.id}", b"", "GET")))
    assert got.id == out.id and got.output_text == out.output_text
    follow = call(app, "/v1/responses", {"model": "m", "input": "more",
                                         "previous_response_id": out.id})
    assert Response.model_validate(ok(follow)).previous_response_id == out.id
    missing = call(app, "/v1/responses", {"model": "m", "input": "x",
                                          "previous_response_id": "resp_nope"})
    assert missing.status == 404 and error(missing)["code"] == "previous_response_not_found"
    assert call(app, "/v1/responses/resp_nope", b"", "GET").status == 404
    unstored = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "m", "input": "x", "store": False})))
    assert call(app, f"/v1/responses/{unstored.id}", b"", "GET").status == 404


def test_response_store_is_bounded() -> None:
    app = App(Config(max_stored_responses=3))
    ids = [ok(call(app, "/v1/responses", {"model": "m", "input": "x"}))["id"]
           for _ in range(5)]
    assert [call(app, f"/v1/responses/{i}", b"", "GET").status for i in ids] == \
        [404, 404, 200, 200, 200]


def test_responses_stream_event_sequence(app: App) -> None:
    reply = call(app, "/v1/responses", {"model": "m", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}], "stream": True})
    assert reply.steps is not None
    raw = b"".join(reply.steps).decode()
    assert "[DONE]" not in raw
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("event: ") for b in blocks)
    events = [EVENTS.validate_json(b.split("data: ", 1)[1]) for b in blocks]
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert kinds == (["response.created", "response.in_progress", "response.output_item.added",
                      "response.content_part.added"] + ["response.output_text.delta"] * deltas
                     + ["response.output_text.done", "response.content_part.done",
                        "response.output_item.done", "response.completed"])
    assert [e.sequence_number for e in events] == list(range(len(events)))
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert len(item_ids) == 1 and next(iter(item_ids)).startswith("msg_")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == Config().response_text
    assert all(e.logprobs == [] for e in events if e.type == "response.output_text.delta")
    final = events[-1].response
    assert final.output_text == text and final.usage.output_tokens == deltas
    # one paced step per delta: the opening events ride with the first, the closing with the last
    assert len(reply.steps) == deltas


def test_responses_incomplete_at_max_output_tokens(app: App) -> None:
    out = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "m", "input": "x", "max_output_tokens": 5})))
    assert out.status == "incomplete" and out.incomplete_details is not None
    assert out.incomplete_details.reason == "max_output_tokens"
    assert out.usage is not None and out.usage.output_tokens == 5
    events = sse(call(app, "/v1/responses", {"model": "m", "input": "x", "stream": True,
                                             "max_output_tokens": 5}))
    assert EVENTS.validate_json(events[-1]).type == "response.incomplete"


def test_responses_reasoning_and_function_call(app: App) -> None:
    out = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "deepseek-reasoner", "input": "x"})))
    assert [o.type for o in out.output] == ["reasoning", "message"]
    assert out.usage is not None
    assert out.usage.output_tokens_details.reasoning_tokens == tokens.count(
        DEFAULT_REASONING_TEXT)
    tools = [{"type": "function", "name": "get_weather",
              "parameters": TOOLS[0]["function"]["parameters"]}]   # type: ignore[index]
    fc = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "m", "input": "weather?", "tools": tools, "tool_choice": "required"})))
    (item,) = fc.output
    assert item.type == "function_call" and item.name == "get_weather"
    jsonschema.validate(json.loads(item.arguments), tools[0]["parameters"])
    events = [EVENTS.validate_json(e) for e in sse(call(app, "/v1/responses", {
        "model": "m", "input": "weather?", "tools": tools, "tool_choice": "required",
        "stream": True}))]
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == item.arguments
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done[0].arguments == args
    # the tool's result comes back: under auto a normal text answer; "required" still calls
    items = [{"role": "user", "content": "weather?"},
             {"type": "function_call", "call_id": "c1", "name": "get_weather",
              "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]
    after = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "m", "tools": tools, "tool_choice": "auto", "input": items})))
    assert after.output[0].type == "message"
    again = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "m", "tools": tools, "tool_choice": "required", "input": items})))
    assert [o.type for o in again.output][-1] == "function_call"


# -- reasoning in chat ------------------------------------------------------------------------

def chat(app: App, **fields: Any) -> Reply:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": USER}
    body.update(fields)
    return call(app, "/v1/chat/completions", body)


@pytest.mark.parametrize("style", ["reasoning_content", "reasoning"])
def test_reasoning_field_styles(style: str) -> None:
    app = App(Config(reasoning_style=style))  # type: ignore[arg-type]
    done = ChatCompletion.model_validate(ok(chat(app, model="deepseek-reasoner")))
    message = done.choices[0].message
    assert message.model_extra == {style: DEFAULT_REASONING_TEXT}
    assert message.content == Config().response_text
    assert done.usage is not None and done.usage.completion_tokens_details is not None
    reasoning = tokens.count(DEFAULT_REASONING_TEXT)
    assert done.usage.completion_tokens_details.reasoning_tokens == reasoning
    assert done.usage.completion_tokens == reasoning + tokens.count(Config().response_text)
    chunks = [ChatCompletionChunk.model_validate_json(e)
              for e in sse(chat(app, model="deepseek-reasoner", stream=True))[:-1]]
    deltas = [c.choices[0].delta for c in chunks]
    thinking = "".join((d.model_extra or {}).get(style) or "" for d in deltas)
    assert thinking == DEFAULT_REASONING_TEXT
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(i for i, d in enumerate(deltas) if (d.model_extra or {}).get(style))
    assert last_reasoning < first_content            # reasoning first, then the answer


def test_think_tags_and_enable_reasoning_env() -> None:
    assert load({}, environ={"ENABLE_REASONING": "false"}).reasoning_style == "think_tags"
    assert load({}, environ={"ENABLE_REASONING": "true"}).reasoning_style == "reasoning_content"
    assert load({}, environ={"ENABLE_REASONING": "false", "FASTMOCK_REASONING_STYLE":
                             "reasoning"}).reasoning_style == "reasoning"
    app = App(load({}, environ={"ENABLE_REASONING": "false"}))
    message = ChatCompletion.model_validate(ok(chat(app, model="deepseek-reasoner"))) \
        .choices[0].message
    assert message.content == (f"<think>{DEFAULT_REASONING_TEXT}</think>\n\n"
                               f"{Config().response_text}")
    assert not message.model_extra


def test_any_model_can_be_configured_as_reasoning() -> None:
    app = App(Config(models=(ModelSpec("qwq", kind="reasoning",
                                       overrides={"reasoning_text": "hmm"}),)))
    assert ok(chat(app, model="qwq"))["choices"][0]["message"]["reasoning_content"] == "hmm"


# -- tools in chat -----------------------------------------------------------------------------

def args_of(done: ChatCompletion) -> dict[str, Any]:
    calls = done.choices[0].message.tool_calls
    assert calls is not None and done.choices[0].finish_reason == "tool_calls"
    return dict(json.loads(calls[0].function.arguments))  # type: ignore[union-attr]


@pytest.mark.parametrize("choice", ["required", {"type": "function",
                                                 "function": {"name": "get_weather"}}])
def test_tool_call_arguments_match_the_schema(app: App, choice: Any) -> None:
    done = ChatCompletion.model_validate(ok(chat(app, tools=TOOLS, tool_choice=choice)))
    jsonschema.validate(args_of(done), TOOLS[0]["function"]["parameters"])  # type: ignore[index]
    assert done.choices[0].message.content is None
    call_id = done.choices[0].message.tool_calls[0].id  # type: ignore[index]
    assert call_id.startswith("call_") and "\\u0000" not in call_id
    named = ChatCompletion.model_validate(ok(chat(app, tools=TOOLS, tool_choice={
        "type": "function", "function": {"name": "noop"}})))
    assert named.choices[0].message.tool_calls[0].function.name == "noop"  # type: ignore


def test_tool_choice_auto_uses_the_probability() -> None:
    never = App(Config(tool_call_probability=0.0))
    assert ok(chat(never, tools=TOOLS))["choices"][0]["finish_reason"] == "stop"
    always = App(Config())   # (the default: an agent sees its tools called)
    assert ok(chat(always, tools=TOOLS))["choices"][0]["finish_reason"] == "tool_calls"
    assert ok(chat(always, tools=TOOLS, tool_choice="none"))["choices"][0][
        "finish_reason"] == "stop"
    half = App(Config(tool_call_probability=0.5))
    seen = {ok(chat(half, tools=TOOLS))["choices"][0]["finish_reason"] for _ in range(60)}
    assert seen == {"stop", "tool_calls"}            # random per request: never memoized
    seeded = {ok(chat(half, tools=TOOLS, seed=7))["choices"][0]["finish_reason"]
              for _ in range(10)}
    assert len(seeded) == 1                          # a seed makes it reproducible


def test_tool_call_stream_deltas(app: App) -> None:
    chunks = [ChatCompletionChunk.model_validate_json(e)
              for e in sse(chat(app, tools=TOOLS, tool_choice="required", stream=True))[:-1]]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    head = calls[0]
    assert head.index == 0 and head.id and head.type == "function"
    assert head.function is not None and head.function.name == "get_weather"
    args = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    jsonschema.validate(json.loads(args), TOOLS[0]["function"]["parameters"])  # type: ignore
    assert all(tc.index == 0 for tc in calls) and all(tc.id is None for tc in calls[1:])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_result_followup_gets_text(app: App) -> None:
    messages = [*USER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    done = ChatCompletion.model_validate(ok(chat(app, messages=messages, tools=TOOLS,
                                                 tool_choice="auto")))
    assert done.choices[0].finish_reason == "stop" and done.choices[0].message.content
    # "required" always calls: the first function not called yet, else the last one
    again = ChatCompletion.model_validate(ok(chat(app, messages=messages, tools=TOOLS,
                                                  tool_choice="required")))
    assert again.choices[0].finish_reason == "tool_calls"
    assert again.choices[0].message.tool_calls[0].function.name == \
        TOOLS[-1]["function"]["name"]  # type: ignore[index,union-attr]


def test_bad_tools(app: App) -> None:
    assert error(chat(app, tools="x"))["param"] == "tools"
    assert error(chat(app, tools=[{"type": "function", "function": {}}]))["param"] == \
        "tools[0].function.name"
    assert error(chat(app, tools=TOOLS, tool_choice={"type": "function", "function": {
        "name": "missing"}}))["param"] == "tool_choice"
    assert error(chat(app, tools=TOOLS, tool_choice="sometimes"))["param"] == "tool_choice"


# -- formats, stop, seed ---------------------------------------------------------------------

def test_response_format_json(app: App) -> None:
    obj = ok(chat(app, response_format={"type": "json_object"}))
    assert json.loads(obj["choices"][0]["message"]["content"]) == {
        "response": Config().response_text}
    schema = {"type": "object", "properties": {"answer": {"type": "string"},
                                               "score": {"type": "number", "minimum": 0,
                                                         "maximum": 1}},
              "required": ["answer", "score"], "additionalProperties": False}
    out = ok(chat(app, response_format={"type": "json_schema", "json_schema": {
        "name": "result", "strict": True, "schema": schema}}))
    jsonschema.validate(json.loads(out["choices"][0]["message"]["content"]), schema)
    streamed = "".join(ChatCompletionChunk.model_validate_json(e).choices[0].delta.content or ""
                       for e in sse(chat(app, stream=True, response_format={
                           "type": "json_schema", "json_schema": {"schema": schema}}))[:-1])
    jsonschema.validate(json.loads(streamed), schema)
    assert error(chat(app, response_format={"type": "yaml"}))["param"] == "response_format.type"


def test_stop_sequences_cut(app: App) -> None:
    done = ChatCompletion.model_validate(ok(chat(app, stop=["fastmock", "zzz"])))
    assert done.choices[0].message.content == "Hello! This is "
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens == tokens.count(
        "Hello! This is ")
    assert error(chat(app, stop=["a", "b", "c", "d", "e"]))["param"] == "stop"


def test_seed_makes_lorem_reproducible() -> None:
    app = App(Config(mode="lorem", lorem_tokens=30))
    a = ok(chat(app, seed=1))["choices"][0]["message"]["content"]
    assert a == ok(chat(App(Config(mode="lorem", lorem_tokens=30)), seed=1))["choices"][0][
        "message"]["content"]
    assert a != ok(chat(app, seed=2))["choices"][0]["message"]["content"]
    assert error(chat(app, seed="1"))["param"] == "seed"


def test_kind_mismatch_is_a_clear_400(app: App) -> None:
    err = error(chat(app, model="text-embedding-3-small"))
    assert err["code"] == "model_not_supported" and "/v1/embeddings" in err["message"]
    err = error(call(app, "/v1/responses", {"model": "mock-rerank-v1", "input": "x"}))
    assert "/v1/rerank" in err["message"]


def test_think_tags_tool_call_and_responses_reasoning_item() -> None:
    app = App(Config(reasoning_style="think_tags"))
    done = ChatCompletion.model_validate(ok(chat(app, model="deepseek-reasoner", tools=TOOLS,
                                                 tool_choice="required")))
    message = done.choices[0].message
    assert message.content == f"<think>{DEFAULT_REASONING_TEXT}</think>"
    assert message.tool_calls and not message.model_extra
    chunks = [ChatCompletionChunk.model_validate_json(e) for e in sse(chat(
        app, model="deepseek-reasoner", tools=TOOLS, tool_choice="required", stream=True))[:-1]]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == message.content
    assert done.usage is not None and done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens == tokens.count(
        DEFAULT_REASONING_TEXT)
    # The Responses API keeps the reasoning as its own item whatever chat's style is.
    out = Response.model_validate(ok(call(app, "/v1/responses", {
        "model": "deepseek-reasoner", "input": "x"})))
    assert [o.type for o in out.output] == ["reasoning", "message"]
    assert "<think>" not in out.output_text
