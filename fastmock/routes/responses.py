"""POST /v1/responses and GET /v1/responses/{id}: the Responses API.

The body's decision (see ``say``) is turned once into the response object and the whole event
sequence, with placeholders where the ids and ``created_at`` go; per request those are replaced
in C (``bytes.replace``), and the steps are paced like any stream. Stream events are sent as
``event: <type>`` plus ``data: {...}``, with ``sequence_number`` rising from 0, and no
``[DONE]``. Responses created with ``store`` (the default) are kept in memory, the oldest
evicted first beyond ``max_stored_responses``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson

from .. import content, say, tokens
from ..frames import (
    CLOCK,
    ID_MARK,
    ID_STANDIN,
    ID_STANDIN_JSON,
    JSON_HEADERS,
    SEQ_MARK,
    SSE_HEADERS,
    STREAM_ERROR,
)
from ..reply import Reply
from ..state import App, Profile
from ..store import StoredResponse, as_items, page
from .common import (
    Invalid,
    Request,
    invalid,
    json_object,
    prepared_route,
    query,
    want_bool,
    want_dict,
    want_int,
    want_model,
    want_number,
    want_str,
)

if TYPE_CHECKING:
    from typing import Any

#: Stand-ins spliced per request (see frames.ID_STANDIN).
ID = ID_STANDIN
TIME = "\0fmtime\0"
_ID_B = ID_STANDIN_JSON
_TIME_B = orjson.dumps(TIME)
_SEQ = "\0seq\0"
_SEQ_B = orjson.dumps(_SEQ)


class Prepared:
    __slots__ = ("profile", "body", "steps", "stream", "store", "previous", "volatile",
                 "prompt_tokens", "tokens", "error_tail", "inputs", "background", "shell",
                 "conversation")

    def __init__(self, profile: Profile, body: bytes, steps: list[bytes], stream: bool,
                 store: bool, previous: str | None, volatile: bool = False,
                 prompt_tokens: int = 0, tokens: int = 0, error_tail: bytes = b"") -> None:
        self.profile = profile
        self.body = body            # the final response object, with stand-ins
        self.steps = steps          # the event stream, with stand-ins
        self.stream = stream
        self.store = store
        self.previous = previous
        self.volatile = volatile    # a random tool choice: never memoized
        self.prompt_tokens = prompt_tokens
        self.tokens = tokens
        #: The stream's end when an error befalls it: error, then response.failed.
        self.error_tail = error_tail
        #: The input items as stored (a JSON array with stand-ins), for input_items.
        self.inputs = b"[]"
        #: ``background: true``: the reply is the object as queued (``shell``), at once.
        self.background = False
        self.shell = b""
        #: The conversation the response belongs to (its items are added to it).
        self.conversation: str | None = None


def read_input(body: dict[str, Any], key: str = "input") -> tuple[list[str], str, bool, int]:
    """(texts for the prompt count, the last user text, follow-up?, message count) of the
    input items ``body[key]``."""
    value = body.get(key)
    if value is None:
        raise invalid(f"Missing required parameter: '{key}'.", key,
                      "missing_required_parameter")
    if isinstance(value, str):
        return [value], value, False, 1
    if not isinstance(value, list):
        raise invalid(f"Invalid type for '{key}': expected a string or an array of input items.",
                      key, "invalid_type")
    texts: list[str] = []
    last_user = ""
    followup = False
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid(f"Invalid type for '{key}[{i}]': expected an object.", f"{key}[{i}]",
                          "invalid_type")
        kind = item.get("type", "message")
        followup = kind == "function_call_output"
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise invalid(f"Invalid value for '{key}[{i}].role': expected one of 'user', "
                              "'assistant', 'system' or 'developer'.", f"{key}[{i}].role",
                              "invalid_value")
            value_i = item.get("content")
            if not isinstance(value_i, (str, list)):
                raise invalid(f"Invalid type for '{key}[{i}].content': expected a string or an "
                              "array of content parts.", f"{key}[{i}].content", "invalid_type")
            text = content.message_text(value_i)
            texts.append(text)
            if role == "user":
                last_user = text
        elif kind == "function_call_output":
            output = item.get("output")
            texts.append(output if isinstance(output, str) else "")
        elif kind == "function_call":
            texts.append(str(item.get("arguments", "")))
    if not value:
        raise invalid(f"Invalid '{key}': empty array.", key, "empty_array")
    return texts, last_user, followup, len(value)


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def _pieces(toks: tuple[str, ...], chunk: int) -> list[str]:
    return ["".join(toks[i:i + chunk]) for i in range(0, len(toks), chunk)]


def _encode(event: dict[str, Any], seq: int) -> bytes:
    event["sequence_number"] = seq
    return b"event: %s\ndata: %s\n\n" % (event["type"].encode(), orjson.dumps(event))


if TYPE_CHECKING:
    Items = tuple[list[tuple[bytes, bool]], list[dict[str, Any]]]


def _reasoning(events: list[tuple[dict[str, Any] | None, bool]],
               output: list[dict[str, Any]], profile: Profile, said: say.Said,
               summary: str | None, encrypted: bool) -> None:
    """The reasoning item. As o-series models show it (``reasoning_output = "summary"``): a
    summary when the request asks for one, else nothing but the time the reasoning takes;
    or the raw ``reasoning_text`` (``"text"``, as gpt-oss on vLLM)."""
    index = len(output)
    text = "".join(said.reasoning)
    rid = "rs_" + ID
    item: dict[str, Any] = {"id": rid, "type": "reasoning", "summary": [],
                            "status": "in_progress"}
    if encrypted:
        item["encrypted_content"] = _sealed(text)
    events.append((_event("response.output_item.added", output_index=index, item=item), False))
    place = {"item_id": rid, "output_index": index}
    if profile.reasoning_output == "text":
        item["content"] = []
        for piece in _pieces(said.reasoning, profile.tokens_per_chunk):
            events.append((_event("response.reasoning_text.delta", **place, content_index=0,
                                  delta=piece), True))
        events.append((_event("response.reasoning_text.done", **place, content_index=0,
                              text=text), False))
        done = dict(item, status="completed", content=[{"type": "reasoning_text", "text": text}])
    elif summary is not None:
        part = {"type": "summary_text", "text": text}
        events.append((_event("response.reasoning_summary_part.added", **place, summary_index=0,
                              part=dict(part, text="")), False))
        for piece in _pieces(said.reasoning, profile.tokens_per_chunk):
            events.append((_event("response.reasoning_summary_text.delta", **place,
                                  summary_index=0, delta=piece), True))
        events.append((_event("response.reasoning_summary_text.done", **place, summary_index=0,
                              text=text), False))
        events.append((_event("response.reasoning_summary_part.done", **place, summary_index=0,
                              part=part), False))
        done = dict(item, status="completed", summary=[part])
    else:   # hidden: the reasoning takes its time, and shows nothing
        events.extend((None, True) for _ in range(0, len(said.reasoning),
                                                   profile.tokens_per_chunk))
        done = dict(item, status="completed")
    events.append((_event("response.output_item.done", output_index=index, item=done), False))
    output.append(done)


def _sealed(text: str) -> str:
    """An opaque ``encrypted_content`` for a reasoning item (the same for the same text)."""
    import base64
    import hashlib

    digest = hashlib.sha256(b"fastmock reasoning\0" + text.encode()).digest()
    return "gAAAAA" + base64.urlsafe_b64encode(digest * 4).decode()


def _items(profile: Profile, said: say.Said, summary: str | None = None,
           encrypted: bool = False) -> Items:
    """The output items' events (sequence numbers from 2, after created and in_progress; each
    marked when it is a paced token delta) and the output list of the final response. They
    depend only on what is said (and how reasoning is shown), so they are encoded once per
    reply shape, on the profile."""
    key = ("responses", said.key, summary, encrypted)
    found: Items | None = profile.cache.get(key)
    if found is not None:
        return found
    chunk = profile.tokens_per_chunk
    events: list[tuple[dict[str, Any] | None, bool]] = []
    output: list[dict[str, Any]] = []
    if said.reasoning:
        _reasoning(events, output, profile, said, summary, encrypted)
    for k, call in enumerate(said.calls):    # parallel calls: one item each, in turn
        index = len(output)
        suffix = f"_{k}" if k else ""
        item_id = "fc_" + ID + suffix
        item: dict[str, Any] = {"id": item_id, "type": "function_call", "status": "in_progress",
                "call_id": "call_" + ID + suffix, "name": call.name, "arguments": ""}
        events.append((_event("response.output_item.added", output_index=index, item=item),
                       False))
        for piece in _pieces(call.pieces, chunk):
            events.append((_event("response.function_call_arguments.delta", item_id=item_id,
                                  output_index=index, delta=piece), True))
        events.append((_event("response.function_call_arguments.done", item_id=item_id,
                              output_index=index, name=call.name, arguments=call.arguments),
                       False))
        done = dict(item, status="completed", arguments=call.arguments)
        events.append((_event("response.output_item.done", output_index=index, item=done),
                       False))
        output.append(done)
    if not said.calls:
        index = len(output)
        text = said.text
        item = {"id": "msg_" + ID, "type": "message", "status": "in_progress",
                "role": "assistant", "content": []}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.append((_event("response.output_item.added", output_index=index, item=item),
                       False))
        events.append((_event("response.content_part.added", item_id="msg_" + ID,
                              output_index=index, content_index=0, part=part), False))
        for piece in _pieces(said.answer, chunk):
            events.append((_event("response.output_text.delta", item_id="msg_" + ID,
                                  output_index=index, content_index=0, delta=piece,
                                  logprobs=[]), True))
        full = dict(part, text=text)
        events.append((_event("response.output_text.done", item_id="msg_" + ID,
                              output_index=index, content_index=0, text=text, logprobs=[]),
                       False))
        events.append((_event("response.content_part.done", item_id="msg_" + ID,
                              output_index=index, content_index=0, part=full), False))
        status = "incomplete" if said.finish == "length" else "completed"
        done = dict(item, status=status, content=[full])
        events.append((_event("response.output_item.done", output_index=index, item=done),
                       False))
        output.append(done)
    encoded: list[tuple[bytes, bool]] = []
    seq = 2
    for event, delta in events:
        if event is None:
            encoded.append((b"", delta))    # a paced step that shows nothing
        else:
            encoded.append((_encode(event, seq), delta))
            seq += 1
    found = (encoded, output)
    return profile.keep(key, found)


EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
SUMMARIES = ("auto", "concise", "detailed")


def _reasoning_asked(body: dict[str, Any], profile: Profile) -> tuple[str | None, str | None]:
    """The ``reasoning`` option's effort and summary, as the response echoes them (a reasoning
    model's effort is ``medium`` unless asked otherwise)."""
    asked = want_dict(body, "reasoning") or {}
    effort = want_str(asked, "effort", param="reasoning.effort")
    if effort is not None and effort not in EFFORTS:
        raise invalid(f"Invalid value: '{effort}'. Supported values are: "
                      + ", ".join(f"'{e}'" for e in EFFORTS) + ".", "reasoning.effort",
                      "invalid_value")
    summary = want_str(asked, "summary", param="reasoning.summary") \
        or want_str(asked, "generate_summary", param="reasoning.generate_summary")
    if summary is not None and summary not in SUMMARIES:
        raise invalid(f"Invalid value: '{summary}'. Supported values are: 'auto', 'concise' "
                      "and 'detailed'.", "reasoning.summary", "invalid_value")
    if profile.kind == "reasoning" and effort is None:
        effort = "medium"
    return effort, summary


def _includes(body: dict[str, Any], what: str) -> bool:
    """Whether the ``include`` list names ``what``."""
    include = body.get("include")
    if include is None:
        return False
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise invalid("Invalid type for 'include': expected an array of strings.", "include",
                      "invalid_type")
    return what in include


def prepare(raw: bytes, app: App, fill_to: int | None = None) -> Prepared:
    body = json_object(raw)
    model, profile = want_model(body, app, "responses")
    texts, last_user, followup, count = read_input(body)
    instructions = want_str(body, "instructions")
    limit = want_int(body, "max_output_tokens", 1, 2**31 - 1)
    if fill_to is not None:
        limit = fill_to if limit is None else min(limit, fill_to)
    else:
        fill_to = say.fill_for(body, limit, profile, "max_output_tokens")
    stream = want_bool(body, "stream")
    store = want_bool(body, "store", default=True)
    previous = want_str(body, "previous_response_id")
    temperature = want_number(body, "temperature", 0, 2)
    top_p = want_number(body, "top_p", 0, 1)
    text_cfg = body.get("text")
    fmt_value = text_cfg.get("format") if isinstance(text_cfg, dict) else None
    tools = say.function_tools(body.get("tools"))
    ask = say.Ask(echo_text=last_user, seed=say.want_seed(body), limit=limit,
                  tools=tools, tool_choice=say.tool_choice(body.get("tool_choice")),
                  followup=followup, response_format=say.response_format(fmt_value, "text.format"),
                  fill_to=fill_to)
    if ask.response_format is not None and ask.response_format["type"] == "json_object":
        ask.prompt_texts = (instructions or "", *texts)
    if "parallel_tool_calls" in body:
        ask.parallel = say.parallel_calls(body)
    conversation = _conversation(body)
    if conversation is not None and previous is not None:
        raise invalid("Only one of 'previous_response_id' and 'conversation' may be given.",
                      "conversation", "invalid_value")
    if ask.tool_choice == "required" and tools:
        ask.called = frozenset(
            item["name"] for item in body["input"] if isinstance(item, dict)
            and item.get("type") == "function_call" and isinstance(item.get("name"), str))
        conv = app.store.conversations.get(conversation) if conversation else None
        if conv is not None:
            ask.called |= conv.called()
    background = want_bool(body, "background")
    if background and not store:
        raise invalid("A background response must be stored: 'background' needs 'store' "
                      "to be true.", "background", "invalid_value")
    said = say.decide(profile, ask, style="reasoning_content")   # reasoning: its own item
    effort, summary = _reasoning_asked(body, profile)
    encrypted = "include" in body and _includes(body, "reasoning.encrypted_content")

    prompt = tokens.estimate_chat_prompt(texts + ([instructions] if instructions else []),
                                         count + (1 if instructions else 0))
    completion = said.completion_tokens
    usage = {"input_tokens": prompt,
             "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
             "output_tokens": completion,
             "output_tokens_details": {"reasoning_tokens": said.reasoning_tokens},
             "total_tokens": prompt + completion}
    incomplete = said.finish == "length"
    shell: dict[str, Any] = {
        "id": "resp_" + ID, "object": "response", "created_at": TIME, "status": "in_progress",
        "error": None, "incomplete_details": None, "instructions": instructions,
        "max_output_tokens": limit, "model": model, "output": [],
        "parallel_tool_calls": ask.parallel,
        "previous_response_id": previous, "reasoning": {"effort": effort, "summary": summary},
        "store": store, "temperature": 1.0 if temperature is None else temperature,
        "text": {"format": fmt_value if isinstance(fmt_value, dict) else {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [],
        "top_p": 1.0 if top_p is None else top_p, "truncation": "disabled", "usage": None,
        "user": None, "metadata": body.get("metadata") or {}, "background": background,
    }
    if conversation is not None:
        shell["conversation"] = {"id": conversation}

    items, output = _items(profile, said, summary, encrypted)
    final = dict(shell, status="incomplete" if incomplete else "completed", output=output,
                 usage=usage,
                 incomplete_details={"reason": "max_output_tokens"} if incomplete else None)
    last = sum(1 for data, _ in items if data) + 2
    events = [(_encode(_event("response.created", response=shell), 0), False),
              (_encode(_event("response.in_progress", response=shell), 1), False),
              *items,
              (_encode(_event("response.incomplete" if incomplete else "response.completed",
                              response=final), last), False)]
    # Pacing: a step per token delta; the opening events ride with the first, the closing
    # ones with the last.
    steps: list[bytes] = []
    current: list[bytes] = []
    seen_delta = False
    for data, is_delta in events:
        if is_delta and seen_delta:
            steps.append(b"".join(current))
            current = []
        seen_delta = seen_delta or is_delta
        current.append(data)
    steps.append(b"".join(current))
    failed = dict(shell, status="failed", error={"code": "server_error", "message": STREAM_ERROR})
    error_tail = b"".join(
        b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(
            dict(e, sequence_number=_SEQ)).replace(_SEQ_B, SEQ_MARK))
        for e in (_event("error", code="server_error", message=STREAM_ERROR, param=None),
                  _event("response.failed", response=failed)))
    # A reply in a conversation reads the conversation's state: it is prepared anew each time.
    prepared = Prepared(profile, orjson.dumps(final), steps, stream, store, previous,
                        said.volatile or conversation is not None, prompt, prompt + completion,
                        error_tail)
    if store or conversation is not None:
        prepared.inputs = orjson.dumps(as_items(body["input"], ID))
    prepared.conversation = conversation
    if background:
        prepared.background = True
        prepared.shell = orjson.dumps(shell)
    return prepared


def render(app: App, p: Prepared, ident: bytes) -> Reply:
    store = app.store
    if p.previous is not None and p.previous.encode() not in store.responses:
        return invalid(f"Previous response with id '{p.previous}' not found.",
                       "previous_response_id", "previous_response_not_found", status=404).reply
    conv = None
    if p.conversation is not None:
        try:
            conv = store.conversation(p.conversation)
        except Invalid as exc:
            return exc.reply
    created = CLOCK.unix_bytes

    def fill(data: bytes) -> bytes:
        return data.replace(_ID_B, ident).replace(_TIME_B, created)

    body = fill(p.body)
    after = None
    if p.store or conv is not None:
        inputs = fill(p.inputs)
        pending = fill(p.shell) if p.background else None
        ready_at = time.monotonic() + _duration(p) if p.background else 0.0

        def after(real: bytes) -> None:
            final = body.replace(ID_MARK, real)
            stored = StoredResponse(final, inputs.replace(ID_MARK, real),
                                    pending and pending.replace(ID_MARK, real), ready_at)
            if p.store:
                store.keep_response(b"resp_" + real, stored)
            if conv is not None:
                conv.add([*orjson.loads(stored.inputs), *orjson.loads(final)["output"]])
    # A reply that follows a stored response depends on the store: it is never replayed.
    cacheable = not p.volatile and p.previous is None and not p.background
    if p.stream:
        return Reply(200, SSE_HEADERS, steps=[fill(s) for s in p.steps], pace=p.profile,
                     after=after, cacheable=cacheable, model=p.profile, tokens=p.tokens,
                     prompt_tokens=p.prompt_tokens, error_step=fill(p.error_tail))
    if p.background:    # answered at once, as queued; GET shows it run and end
        queued = fill(p.shell).replace(b'"status":"in_progress"', b'"status":"queued"', 1)
        return Reply(200, JSON_HEADERS, queued, after=after, model=p.profile, tokens=p.tokens,
                     prompt_tokens=p.prompt_tokens)
    return Reply(200, JSON_HEADERS, body, pace=p.profile, wait_steps=len(p.steps), after=after,
                 cacheable=cacheable, model=p.profile, tokens=p.tokens,
                 prompt_tokens=p.prompt_tokens)


def _duration(p: Prepared) -> float:
    """How long the reply takes to generate, as its model paces it (a background one)."""
    return p.profile.ttft + p.profile.itl * max(0, len(p.steps) - 1)


handle = prepared_route("responses", prepare, render)


def _conversation(body: dict[str, Any]) -> str | None:
    """The ``conversation`` a response belongs to: its id, given alone or as ``{"id": ...}``."""
    value = body.get("conversation")
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("id")
        if not isinstance(value, str):
            raise invalid("Missing required parameter: 'conversation.id'.", "conversation.id",
                          "missing_required_parameter")
    if not isinstance(value, str) or not value:
        raise invalid("Invalid type for 'conversation': expected a conversation id or an "
                      "object with an 'id'.", "conversation", "invalid_type")
    return value


def _stored(response_id: str, app: App) -> StoredResponse:
    found = app.store.responses.get(response_id.encode())
    if found is None:
        raise invalid(f"Response with id '{response_id}' not found.", "response_id",
                      "response_not_found", status=404)
    return found


def retrieve(req: Request, app: App, rest: str) -> Reply:
    """GET /v1/responses/{id} and /v1/responses/{id}/input_items."""
    response_id, _, tail = rest.partition("/")
    if tail == "input_items":
        stored = _stored(response_id, app)
        return Reply(200, JSON_HEADERS, page(orjson.loads(stored.inputs), query(req)))
    if tail:
        raise _not_found(req)
    return Reply(200, JSON_HEADERS, _stored(response_id, app).current())


def delete(req: Request, app: App, rest: str) -> Reply:
    """DELETE /v1/responses/{id}."""
    if "/" in rest:
        raise _not_found(req)
    _stored(rest, app)
    del app.store.responses[rest.encode()]
    return Reply(200, JSON_HEADERS, orjson.dumps({"id": rest, "object": "response",
                                                   "deleted": True}))


def cancel(req: Request, app: App, rest: str) -> Reply:
    """POST /v1/responses/{id}/cancel: a background response that still runs ends cancelled;
    one that has ended is returned as it is."""
    response_id, _, tail = rest.partition("/")
    if tail != "cancel":
        raise _not_found(req)
    stored = _stored(response_id, app)
    if not stored.background:
        raise invalid("Only a response created with 'background': true can be cancelled.",
                      None, "invalid_value")
    return Reply(200, JSON_HEADERS, stored.cancel())


def _not_found(req: Request) -> Invalid:
    return invalid(f"Invalid URL ({req.method.decode('latin-1')} "
                   f"{req.target.decode('latin-1')})", status=404)
