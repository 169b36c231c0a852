"""Every route through the official openai SDK against a live server (both HTTP handlers)."""

from __future__ import annotations

import json
import math
import urllib.request

import jsonschema
import pytest
from openai import OpenAI
from openai.types import Completion, CreateEmbeddingResponse
from openai.types.responses import Response

from fastmock.config import DEFAULT_REASONING_TEXT, DEFAULT_RESPONSE_TEXT
from helpers import Server

WEATHER = {"type": "object", "properties": {"city": {"type": "string"},
                                            "unit": {"type": "string", "enum": ["c", "f"]}},
           "required": ["city", "unit"], "additionalProperties": False}


@pytest.fixture
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.base + "/v1", api_key="sk-test", max_retries=0)


def test_embeddings_default_base64(client: OpenAI) -> None:
    out = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert isinstance(out, CreateEmbeddingResponse)
    CreateEmbeddingResponse.model_validate(out.model_dump())
    vec = out.data[0].embedding
    assert len(vec) == 1536 and math.isclose(sum(v * v for v in vec), 1.0, abs_tol=1e-5)
    plain = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"],
                                     encoding_format="float")
    assert plain.data[0].embedding == vec
    small = client.embeddings.create(model="text-embedding-3-small", input="a", dimensions=64)
    assert len(small.data[0].embedding) == 64


def test_completions(client: OpenAI) -> None:
    out = client.completions.create(model="gpt-4o-mini", prompt="Hi", max_tokens=100, n=2)
    Completion.model_validate(out.model_dump())
    assert [c.text for c in out.choices] == [DEFAULT_RESPONSE_TEXT] * 2
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="gpt-4o-mini", prompt="Hi", max_tokens=100, stream=True) if c.choices)
    assert text == DEFAULT_RESPONSE_TEXT


def test_responses_create_stream_and_retrieve(client: OpenAI) -> None:
    out = client.responses.create(model="gpt-4o-mini", input="Hello", instructions="short")
    Response.model_validate(out.model_dump())
    assert out.output_text == DEFAULT_RESPONSE_TEXT
    assert client.responses.retrieve(out.id).output_text == DEFAULT_RESPONSE_TEXT
    with client.responses.stream(model="deepseek-reasoner", input="Hello",
                                 previous_response_id=out.id) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    Response.model_validate(final.model_dump())
    assert "".join(deltas) == final.output_text == DEFAULT_RESPONSE_TEXT
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.previous_response_id == out.id


def test_responses_function_call(client: OpenAI) -> None:
    tools = [{"type": "function", "name": "get_weather", "parameters": WEATHER,
              "strict": True}]
    with client.responses.stream(model="gpt-4o", input="weather?", tools=tools,  # type: ignore
                                 tool_choice="required") as stream:
        final = stream.get_final_response()
    (call,) = final.output
    assert call.type == "function_call"
    jsonschema.validate(json.loads(call.arguments), WEATHER)


def test_chat_stream_helper_accumulates_tool_arguments(client: OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
    with client.chat.completions.stream(model="gpt-4o", tools=tools,  # type: ignore[arg-type]
                                        tool_choice="required",
                                        messages=[{"role": "user", "content": "weather?"}]) \
            as stream:
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls and final.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(calls[0].function.arguments), WEATHER)  # type: ignore


def test_reasoning_field_in_stream_deltas(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="deepseek-reasoner", stream=True, messages=[{"role": "user", "content": "x"}]))
    thinking = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                       for c in chunks if c.choices)
    assert thinking == DEFAULT_REASONING_TEXT
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert answer == DEFAULT_RESPONSE_TEXT


def test_rerank_over_http(server: Server) -> None:
    req = urllib.request.Request(server.base + "/v1/rerank", data=json.dumps({
        "model": "mock-rerank-v1", "query": "red fox", "documents": ["blue sky", "a red fox"],
    }).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        out = json.loads(r.read())
    assert [x["index"] for x in out["results"]] == [1, 0]
