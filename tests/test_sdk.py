"""End to end with the official openai SDK against a live server, validated by its types."""

from __future__ import annotations

import openai
import pytest
from openai import OpenAI
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from fastmock import tokens
from fastmock.config import DEFAULT_RESPONSE_TEXT
from helpers import Server, running_server

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Hello there"}]


@pytest.fixture
def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.base + "/v1", api_key="sk-test", max_retries=0)


def test_chat_nonstream(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    ChatCompletion.model_validate(completion.model_dump())
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == DEFAULT_RESPONSE_TEXT
    assert completion.choices[0].message.role == "assistant"
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == tokens.count("be brief") + tokens.count("Hello there") + 11
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_chat_stream_with_usage(client: OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_RESPONSE_TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == tokens.count(DEFAULT_RESPONSE_TEXT)
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_helper_accumulates(client: OpenAI) -> None:
    with client.chat.completions.stream(model="x", messages=MESSAGES, n=2) as stream:
        final = stream.get_final_completion()
    assert [c.message.content for c in final.choices] == [DEFAULT_RESPONSE_TEXT] * 2


def test_n_and_max_tokens(client: OpenAI) -> None:
    completion = client.chat.completions.create(model="any-name", messages=MESSAGES, n=3,
                                                max_tokens=4)
    assert len(completion.choices) == 3
    assert {c.finish_reason for c in completion.choices} == {"length"}
    assert completion.usage is not None and completion.usage.completion_tokens == 12
    stream = client.chat.completions.create(model="x", messages=MESSAGES, stream=True,
                                            max_completion_tokens=2)
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "length"
    assert sum(1 for c in chunks if c.choices[0].delta.content) == 2


def test_models(client: OpenAI) -> None:
    models = list(client.models.list())
    assert all(isinstance(m, Model) for m in models)
    assert "gpt-4o-mini" in {m.id for m in models}
    assert client.models.retrieve("gpt-4o").owned_by == "openai"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


def test_errors_become_sdk_exceptions(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="x", messages=[])
    assert info.value.param == "messages" and info.value.code == "empty_array"


def test_strict_models_and_paced_stream() -> None:
    with running_server("--strict-models", "--itl-ms", "5", "--ttft-ms", "20") as server:
        client = OpenAI(base_url=server.base + "/v1", api_key="k", max_retries=0)
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope", messages=MESSAGES)
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES,
                                                     stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == DEFAULT_RESPONSE_TEXT


def test_base_url_without_v1(server: Server) -> None:
    client = OpenAI(base_url=server.base, api_key="k", max_retries=0)
    assert client.chat.completions.create(model="m", messages=MESSAGES).object == \
        "chat.completion"
