"""What agent frameworks and LLM load-test tools rely on: tool rules, output length, pace.

Through the official SDK against live servers (both HTTP handlers), streamed and not.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pydantic
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion import Completion
from openai.types.completion_usage import CompletionUsage
from openai.types.conversations import Conversation, ConversationItemList
from openai.types.responses import Response, ResponseItemList

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



@pytest.mark.parametrize("echo", [False, True])
def test_continuous_usage_stats_on_completions(client: OpenAI, echo: bool) -> None:
    chunks = list(client.completions.create(
        model="gpt-3.5-turbo", prompt="Say it", stream=True, max_tokens=30, echo=echo,
        extra_body={"ignore_eos": True},
        stream_options={"include_usage": True, "continuous_usage_stats": True}))  # type: ignore[typeddict-unknown-key]
    for chunk in chunks:
        assert chunk.usage is not None
        CompletionUsage.model_validate(chunk.usage.model_dump())
        if chunk.choices and chunk.choices[0].finish_reason:   # (null before: not in the type)
            Completion.model_validate(chunk.model_dump())
    texts = [c for c in chunks if c.choices and c.choices[0].text]
    counts = [c.usage.completion_tokens for c in texts]   # type: ignore[union-attr]
    assert counts == ([0] if echo else []) + list(range(1, 31))
    assert chunks[-1].usage.completion_tokens == 30   # type: ignore[union-attr]


# -- parallel tool calls, JSON from prompt schemas, reasoning summaries --------------------------

AGENT_TOML = """
parallel_tool_calls = 2
[models."gpt-oss-20b"]
kind = "reasoning"
reasoning_output = "text"
[models."fan-out"]
parallel_tool_calls = 3
"""

THREE_TOOLS: list[Any] = [*TOOLS, {"type": "function", "function": {
    "name": "fetch", "parameters": {"type": "object", "properties": {
        "url": {"type": "string"}}, "required": ["url"]}}}]


@pytest.fixture(scope="module", params=["h11", "httptools"])
def agent(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[OpenAI]:
    """A server whose models call up to 2 tools at once (``fan-out``: 3), and a reasoning model
    that shows raw reasoning text (``gpt-oss-20b``), per HTTP handler."""
    path = tmp_path_factory.mktemp("agent") / "fastmock.toml"
    path.write_text(AGENT_TOML)
    with running_server("--http", request.param, "--config", str(path)) as s:
        yield OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)


def streamed_calls(client: OpenAI, **kw: Any) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of every tool call of a streamed chat reply, put together by
    ``index`` as a client does."""
    calls: dict[int, list[str]] = {}
    finish = None
    for chunk in client.chat.completions.create(stream=True, **kw):
        ChatCompletionChunk.model_validate(chunk.model_dump())
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                entry = calls.setdefault(call.index, ["", "", ""])
                assert call.function is not None
                if call.id:
                    assert not entry[0], "a call's id comes once"
                    entry[0], entry[1] = call.id, call.function.name or ""
                entry[2] += call.function.arguments or ""
    assert finish == ("tool_calls" if calls else "stop")
    assert sorted(calls) == list(range(len(calls)))
    return [(i, n, a) for i, n, a in (calls[k] for k in sorted(calls))]


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls(agent: OpenAI, stream: bool) -> None:
    def calls(**kw: Any) -> list[tuple[str, str, str]]:
        kw = {"model": "gpt-4o-mini", "messages": USER, "tools": THREE_TOOLS, **kw}
        if stream:
            return streamed_calls(agent, **kw)
        reply = agent.chat.completions.create(**kw)
        ChatCompletion.model_validate(reply.model_dump())
        return [(c.id, c.function.name, c.function.arguments)   # type: ignore[union-attr]
                for c in reply.choices[0].message.tool_calls or []]

    two = calls()
    assert [name for _, name, _ in two] == ["search", "lookup"]
    assert len({ident for ident, _, _ in two}) == 2
    assert all(json.loads(args) == {"q": json.loads(args)["q"]} for _, _, args in two)
    assert [n for _, n, _ in calls(model="fan-out")] == ["search", "lookup", "fetch"]
    assert [n for _, n, _ in calls(parallel_tool_calls=False)] == ["search"]
    # required after a tool's result: the ones not called yet; a named function: that one
    assert [n for _, n, _ in calls(messages=after_calls("search"), tool_choice="required")] \
        == ["lookup", "fetch"]
    named = {"type": "function", "function": {"name": "fetch"}}
    assert [n for _, n, _ in calls(tool_choice=named)] == ["fetch"]
    assert calls(messages=after_calls("search", "lookup")) == []      # auto: text


def test_parallel_function_calls_in_the_responses_api(agent: OpenAI) -> None:
    tools: list[Any] = [{"type": "function", "name": t["function"]["name"],
                         "parameters": t["function"]["parameters"]} for t in THREE_TOOLS]
    reply = agent.responses.create(model="gpt-4o-mini", input="Find it", tools=tools)
    Response.model_validate(reply.model_dump())
    calls = [o for o in reply.output if o.type == "function_call"]
    assert [c.name for c in calls] == ["search", "lookup"]
    assert len({c.call_id for c in calls}) == 2 and len({c.id for c in calls}) == 2
    assert reply.parallel_tool_calls is True
    events = list(agent.responses.create(model="gpt-4o-mini", input="Find it", tools=tools,
                                         stream=True))
    added = [e.output_index for e in events if e.type == "response.output_item.added"]
    done = [e.item.name for e in events if e.type == "response.output_item.done"
            and e.item.type == "function_call"]
    assert added == [0, 1] and done == ["search", "lookup"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    single = agent.responses.create(model="gpt-4o-mini", input="Find it", tools=tools,
                                    parallel_tool_calls=False)
    assert [o.type for o in single.output] == ["function_call"]
    assert single.parallel_tool_calls is False


class City(pydantic.BaseModel):
    name: str
    population: int
    tags: list[str]


class Trip(pydantic.BaseModel):
    cities: list[City]
    days: int = pydantic.Field(ge=1, le=30)


def langchain_instructions(schema: dict[str, Any]) -> str:
    """As LangChain's PydanticOutputParser words them: an example schema first (and an object
    with "properties" that is not a schema), the real one last."""
    return (
        "The output should be formatted as a JSON instance that conforms to the JSON schema "
        'below.\n\nAs an example, for the schema {"properties": {"foo": {"title": "Foo", '
        '"description": "a list of strings", "type": "array", "items": {"type": "string"}}}, '
        '"required": ["foo"]}\nthe object {"foo": ["bar", "baz"]} is a well-formatted instance '
        'of the schema. The object {"properties": {"foo": ["bar", "baz"]}} is not '
        "well-formatted.\n\nHere is the output schema:\n```\n" + json.dumps(schema) + "\n```")


@pytest.mark.parametrize("stream", [False, True])
def test_json_mode_follows_the_schema_written_in_the_prompt(client: OpenAI, stream: bool) -> None:
    schema = Trip.model_json_schema()   # with $defs and $ref, as pydantic writes it
    prompts = {
        "langchain": [{"role": "user", "content": "Plan a trip.\n" + langchain_instructions(
            schema)}],
        "pydantic-ai": [{"role": "system", "content": "Always respond with a JSON object "
                         "that's compatible with this schema:\n\n" + json.dumps(schema)},
                        {"role": "user", "content": "Plan a trip."}],
        "instructor": [{"role": "system", "content": "Return an instance of the JSON that "
                        "matches the following json_schema:\n\n" + json.dumps(schema, indent=2)},
                       {"role": "user", "content": [{"type": "text", "text": "Plan a trip."}]}],
    }
    for name, messages in prompts.items():
        kw: Any = {"model": "gpt-4o-mini", "messages": messages,
                   "response_format": {"type": "json_object"}}
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(stream=True, **kw) if c.choices)
        else:
            reply = client.chat.completions.create(**kw)
            ChatCompletion.model_validate(reply.model_dump())
            text = reply.choices[0].message.content or ""
        trip = Trip.model_validate_json(text)   # raises unless it is a valid instance
        assert trip.cities, name
    # without a schema in the prompt: an object, as before
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=USER,
                                           response_format={"type": "json_object"})
    assert set(json.loads(plain.choices[0].message.content or "")) == {"response"}
    # with the same prompt but no JSON mode: text, not an instance
    text = client.chat.completions.create(model="gpt-4o-mini", messages=prompts["langchain"])
    with pytest.raises(pydantic.ValidationError):
        Trip.model_validate_json(text.choices[0].message.content or "")


def test_responses_json_mode_with_a_prompt_schema(client: OpenAI) -> None:
    reply = client.responses.create(
        model="gpt-4o-mini", instructions=langchain_instructions(City.model_json_schema()),
        input="A city.", text={"format": {"type": "json_object"}})
    Response.model_validate(reply.model_dump())
    City.model_validate_json(reply.output_text)
    events = list(client.responses.create(
        model="gpt-4o-mini", instructions=langchain_instructions(City.model_json_schema()),
        input="A city.", text={"format": {"type": "json_object"}}, stream=True))
    City.model_validate_json("".join(e.delta for e in events
                                     if e.type == "response.output_text.delta"))


def test_reasoning_summaries_as_o_series_models_show_them(client: OpenAI) -> None:
    # Asked for a summary: the reasoning item carries it, and the stream sends it.
    events = list(client.responses.create(model="o4-mini", input="Why?", stream=True,
                                          reasoning={"effort": "high", "summary": "auto"}))
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_summary_part.added") \
        < kinds.index("response.reasoning_summary_text.delta") \
        < kinds.index("response.reasoning_summary_text.done") \
        < kinds.index("response.reasoning_summary_part.done") \
        < kinds.index("response.output_text.delta")
    assert "response.reasoning_text.delta" not in kinds
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    final = events[-1]
    assert final.type == "response.completed"
    item = final.response.output[0]
    assert item.type == "reasoning" and item.content is None
    assert [s.text for s in item.summary] == [deltas] and deltas
    assert final.response.reasoning is not None
    assert (final.response.reasoning.effort, final.response.reasoning.summary) == ("high", "auto")
    assert final.response.usage is not None
    assert final.response.usage.output_tokens_details.reasoning_tokens > 0
    # Not asked: the reasoning is hidden (its tokens still counted), the effort a default.
    quiet = client.responses.create(model="o4-mini", input="Why?")
    Response.model_validate(quiet.model_dump())
    assert quiet.output[0].type == "reasoning" and quiet.output[0].summary == []
    assert quiet.output[0].content is None and quiet.output[0].encrypted_content is None
    assert quiet.reasoning is not None and quiet.reasoning.effort == "medium"
    assert quiet.usage is not None and quiet.usage.output_tokens_details.reasoning_tokens > 0
    hidden = [e.type for e in client.responses.create(model="o4-mini", input="Why?",
                                                      stream=True)]
    assert not [k for k in hidden if "reasoning" in k]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="o4-mini", input="Why?",
                                reasoning={"summary": "short"})  # type: ignore[typeddict-item]
    assert bad.value.body["param"] == "reasoning.summary"  # type: ignore[index]


def test_encrypted_reasoning_goes_back_as_input(client: OpenAI) -> None:
    first = client.responses.create(model="o4-mini", input="Why?", store=False,
                                    include=["reasoning.encrypted_content"])
    item = first.output[0]
    assert item.type == "reasoning" and item.encrypted_content
    again = client.responses.create(model="o4-mini", store=False, input=[
        {"role": "user", "content": "Why?"}, item.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "user", "content": "And then?"}], include=["reasoning.encrypted_content"])
    Response.model_validate(again.model_dump())
    assert again.status == "completed"


def test_raw_reasoning_text_for_models_configured_so(agent: OpenAI) -> None:
    events = list(agent.responses.create(model="gpt-oss-20b", input="Why?", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    final = events[-1].response   # type: ignore[union-attr]
    assert deltas and final.output[0].content[0].text == deltas
    assert final.output[0].summary == []


# -- the rest of the Responses surface: input items, delete, background and cancel, ------------
# -- conversations ------------------------------------------------------------------------------

def test_input_items_and_delete(client: OpenAI) -> None:
    reply = client.responses.create(model="gpt-4o-mini", input=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Again"}])
    listed = client.responses.input_items.list(reply.id, order="asc")
    ResponseItemList.model_validate(listed.model_dump())
    texts = [item.content[0].text for item in listed.data]   # type: ignore[union-attr]
    assert texts == ["Be brief.", "Hi", "Hello", "Again"]
    assert len({item.id for item in listed.data}) == 4
    newest = client.responses.input_items.list(reply.id, limit=2)   # default order: desc
    assert [i.content[0].text for i in newest.data] == ["Again", "Hello"]  # type: ignore[union-attr]
    assert newest.has_more and newest.last_id == newest.data[-1].id
    rest = client.responses.input_items.list(reply.id, limit=2, after=newest.last_id)
    assert [i.content[0].text for i in rest.data] == ["Hi", "Be brief."]  # type: ignore[union-attr]
    assert not rest.has_more
    client.responses.delete(reply.id)
    for call in (lambda: client.responses.retrieve(reply.id),
                 lambda: client.responses.input_items.list(reply.id),
                 lambda: client.responses.delete(reply.id)):
        with pytest.raises(openai.NotFoundError) as gone:
            call()
        assert reply.id in gone.value.message


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_background_responses_run_and_can_be_cancelled(http: str) -> None:
    with running_server("--http", http, "--ttft-ms", "400", "--itl-ms", "20") as s:
        client = OpenAI(base_url=s.base + "/v1", api_key="x", max_retries=0)
        started = time.monotonic()
        queued = client.responses.create(model="gpt-4o-mini", input="Hi", background=True)
        assert time.monotonic() - started < 0.3          # answered at once, not paced
        Response.model_validate(queued.model_dump())
        assert queued.status == "queued" and queued.background and queued.output == []
        assert client.responses.retrieve(queued.id).status == "in_progress"
        while (done := client.responses.retrieve(queued.id)).status == "in_progress":
            assert time.monotonic() - started < 5
            time.sleep(0.05)
        Response.model_validate(done.model_dump())
        assert done.status == "completed" and done.output_text and done.usage is not None
        assert time.monotonic() - started >= 0.4
        # cancel: a running one ends cancelled; an ended one stays as it is
        other = client.responses.create(model="gpt-4o-mini", input="Hi", background=True)
        cancelled = client.responses.cancel(other.id)
        Response.model_validate(cancelled.model_dump())
        assert cancelled.status == "cancelled"
        time.sleep(0.6)
        assert client.responses.retrieve(other.id).status == "cancelled"
        assert client.responses.cancel(queued.id).status == "completed"
        plain = client.responses.create(model="gpt-4o-mini", input="Hi")
        with pytest.raises(openai.BadRequestError):
            client.responses.cancel(plain.id)
        with pytest.raises(openai.BadRequestError) as bad:
            client.responses.create(model="gpt-4o-mini", input="Hi", background=True,
                                    store=False)
        assert bad.value.body["param"] == "background"   # type: ignore[index]


def test_conversations_as_the_agents_sdk_session_uses_them(client: OpenAI) -> None:
    # What OpenAIConversationsSession does: create, add items, list them, pop the last, clear.
    conv = client.conversations.create(items=[{"role": "user", "content": "Hi"}],
                                       metadata={"topic": "demo"})
    Conversation.model_validate(conv.model_dump())
    assert conv.id.startswith("conv_") and conv.metadata == {"topic": "demo"}
    added = client.conversations.items.create(conv.id, items=[
        {"type": "message", "role": "assistant", "content": "Hello"},
        {"type": "message", "role": "user", "content": "Again"}])
    ConversationItemList.model_validate(added.model_dump())
    assert len(added.data) == 2
    items = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.content[0].text for i in items] == ["Hi", "Hello", "Again"]  # type: ignore[union-attr]
    one = client.conversations.items.retrieve(items[1].id, conversation_id=conv.id)
    assert one.id == items[1].id
    client.conversations.items.delete(items[-1].id, conversation_id=conv.id)
    assert len(list(client.conversations.items.list(conv.id))) == 2
    updated = client.conversations.update(conv.id, metadata={"topic": "other"})
    assert client.conversations.retrieve(conv.id).metadata == updated.metadata == {
        "topic": "other"}
    # a response in the conversation adds its input and output to it
    reply = client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="More")
    Response.model_validate(reply.model_dump())
    assert reply.conversation is not None and reply.conversation.id == conv.id
    kinds = [(i.type, getattr(i, "role", None)) for i in
             client.conversations.items.list(conv.id, order="asc")]
    assert kinds == [("message", "user"), ("message", "assistant"), ("message", "user"),
                     ("message", "assistant")]
    # under "required", the functions called earlier in the conversation count
    tools: list[Any] = [{"type": "function", "name": t["function"]["name"],
                         "parameters": t["function"]["parameters"]} for t in TOOLS]
    first = client.responses.create(model="gpt-4o-mini", conversation={"id": conv.id},
                                    input="Find it", tools=tools, tool_choice="required")
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "search"
    second = client.responses.create(
        model="gpt-4o-mini", conversation=conv.id, tools=tools, tool_choice="required",
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "found"}])
    assert [o.name for o in second.output if o.type == "function_call"] == ["lookup"]
    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted and deleted.id == conv.id
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError) as gone:
        client.responses.create(model="gpt-4o-mini", conversation=conv.id, input="Hi")
    assert gone.value.body["param"] == "conversation_id"   # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.conversations.items.create(client.conversations.create().id,
                                          items=[{"role": "robot", "content": "x"}])  # type: ignore[list-item, typeddict-item]
    assert bad.value.body["param"] == "items[0].role"   # type: ignore[index]
