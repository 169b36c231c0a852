"""What agent frameworks and LLM load-test tools rely on: tool rules, output length, pace.

Through the official SDK against live servers (both HTTP handlers), streamed and not.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion
from openai.types.responses import Response

from helpers import Server, running_server

TOOLS: list[Any] = [
    {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    for name in ("search", "lookup")]
USER = [{"role": "user", "content": "Find it"}]


@pytest.fixture
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.base + "/v1", api_key="sk-test", max_retries=0)


def after_calls(*names: str) -> list[Any]:
    """A conversation in which the assistant called ``names``, each answered by its tool."""
    messages: list[Any] = list(USER)
    for i, name in enumerate(names):
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{i}", "type": "function",
             "function": {"name": name, "arguments": '{"q": "x"}'}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{i}", "content": "found"})
    return messages


def called(client: OpenAI, messages: list[Any], choice: Any, stream: bool = False) -> str | None:
    """The function the reply calls (None: a text reply), streamed or not."""
    if not stream:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                               tools=TOOLS, tool_choice=choice)
        ChatCompletion.model_validate(reply.model_dump())
        calls = reply.choices[0].message.tool_calls
        if not calls:
            assert reply.choices[0].finish_reason == "stop"
            return None
        assert reply.choices[0].finish_reason == "tool_calls"
        return calls[0].function.name   # type: ignore[union-attr]
    name = None
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages,
                                                tools=TOOLS, tool_choice=choice, stream=True):
        ChatCompletionChunk.model_validate(chunk.model_dump())
        for call in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            if call.function is not None and call.function.name:
                name = call.function.name
    return name


@pytest.mark.parametrize("stream", [False, True])
def test_required_and_named_always_call_a_tool(client: OpenAI, stream: bool) -> None:
    assert called(client, USER, "required", stream) == "search"
    # after a tool's result: the first function not called yet, then the last one
    assert called(client, after_calls("search"), "required", stream) == "lookup"
    assert called(client, after_calls("search", "lookup"), "required", stream) == "lookup"
    named = {"type": "function", "function": {"name": "lookup"}}
    assert called(client, after_calls("lookup"), named, stream) == "lookup"
    # auto: a user message gets a call by default, a tool's result an answer in text
    assert called(client, USER, "auto", stream) == "search"
    assert called(client, after_calls("search"), "auto", stream) is None
    assert called(client, USER, "none", stream) is None


def test_responses_required_after_a_function_output(client: OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": "Find it"},
        {"type": "function_call", "call_id": "c1", "name": "search", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "found"}]
    tools: list[Any] = [{"type": "function", "name": t["function"]["name"],
                         "parameters": t["function"]["parameters"]} for t in TOOLS]
    reply = client.responses.create(model="gpt-4o-mini", input=items, tools=tools,
                                    tool_choice="required")
    Response.model_validate(reply.model_dump())
    assert [o.name for o in reply.output if o.type == "function_call"] == ["lookup"]
    reply = client.responses.create(model="gpt-4o-mini", input=items, tools=tools)
    assert [o.type for o in reply.output] == ["message"]


def test_the_default_tool_probability_can_be_turned_down() -> None:
    with running_server("--tool-call-probability", "0") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        assert called(client, USER, "auto") is None
        assert called(client, after_calls("search"), "required") == "lookup"


def stream_tokens(client: OpenAI, **kw: Any) -> tuple[int, int]:
    """(content chunks, the usage's completion tokens) of a streamed chat reply."""
    chunks = 0
    usage = None
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=USER, stream=True,
                                                stream_options={"include_usage": True}, **kw):
        ChatCompletionChunk.model_validate(chunk.model_dump())
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
        if chunk.usage is not None:
            usage = chunk.usage.completion_tokens
    assert usage is not None
    return chunks, usage


def test_ignore_eos_and_min_tokens_fix_the_length(client: OpenAI) -> None:
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=128)
    assert plain.usage is not None and plain.usage.completion_tokens < 128   # the canned text
    exact = client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=128,
                                           extra_body={"ignore_eos": True})
    assert exact.usage is not None and exact.usage.completion_tokens == 128
    assert exact.choices[0].finish_reason == "length"   # as vLLM: stopped by the limit
    assert exact.choices[0].message.content is not None
    assert exact.choices[0].message.content.startswith(plain.choices[0].message.content or "")
    assert stream_tokens(client, max_tokens=128, extra_body={"ignore_eos": True}) == (128, 128)
    at_least = client.chat.completions.create(model="gpt-4o-mini", messages=USER,
                                              max_tokens=500, extra_body={"min_tokens": 300})
    assert at_least.usage is not None and at_least.usage.completion_tokens == 300
    assert at_least.choices[0].finish_reason == "stop"
    assert stream_tokens(client, extra_body={"min_tokens": 77}) == (77, 77)
    completion = client.completions.create(model="gpt-4o-mini", prompt="Say", max_tokens=64,
                                           extra_body={"ignore_eos": True})
    Completion.model_validate(completion.model_dump())
    assert completion.usage is not None and completion.usage.completion_tokens == 64
    response = client.responses.create(model="gpt-4o-mini", input="Say", max_output_tokens=50,
                                       extra_body={"ignore_eos": True})
    assert response.usage is not None and response.usage.output_tokens == 50
    for bad in ({"min_tokens": 900}, {"min_tokens": -1}, {"ignore_eos": "yes"}):
        with pytest.raises(openai.BadRequestError) as err:
            client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=500,
                                           extra_body=bad)
        assert err.value.body["param"] == next(iter(bad))   # type: ignore[index]


def test_exact_max_tokens_and_ms_per_token() -> None:
    with running_server("--exact-max-tokens", "--ms-per-token", "2", "--tokens-per-chunk", "4",
                        "--mode", "lorem") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=USER, max_tokens=300)
        assert reply.usage is not None and reply.usage.completion_tokens == 300
        free = client.chat.completions.create(model="gpt-4o-mini", messages=USER)
        assert free.usage is not None and free.usage.completion_tokens == 128   # lorem_tokens
        with urllib.request.urlopen(s.base + "/stats") as r:
            stats = json.loads(r.read())
        assert stats["pace"]["itl_ms"] == 8.0 and stats["pace"]["ms_per_token"] == 2.0


def test_continuous_usage_stats_in_every_chunk(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, max_tokens=40,
        extra_body={"ignore_eos": True},
        stream_options={"include_usage": True, "continuous_usage_stats": True}))  # type: ignore[typeddict-unknown-key]
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
        assert chunk.usage is not None
    seen = [c.usage.completion_tokens for c in chunks]   # type: ignore[union-attr]
    assert seen == sorted(seen) and seen[-1] == 40
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert [c.usage.completion_tokens for c in content] == list(range(1, 41))  # type: ignore[union-attr]
    prompt = chunks[-1].usage.prompt_tokens   # type: ignore[union-attr]
    assert all(c.usage.total_tokens == prompt + c.usage.completion_tokens  # type: ignore[union-attr]
               for c in chunks)
