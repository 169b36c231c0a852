"""POST /v1/chat/completions: validation, then bytes assembled from precomputed pieces.

What the model says comes from ``say.decide``; this module only formats it. The choices of a
non-streaming body and the tails of every SSE chunk are built once per reply shape (what is
said, n, include_usage) and cached on the model's profile; per request only the id,
``created``, the model name and the usage numbers are spliced in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .. import content, say, tokens
from ..frames import CHUNKS_ERROR, CLOCK, ID_STANDIN, ID_STANDIN_JSON, JSON_HEADERS, SSE_HEADERS
from ..reply import Prompt, Reply
from ..say import Said
from ..state import App, Profile
from .common import (
    continuous_usage,
    invalid,
    json_object,
    prepared_route,
    stream_flags,
    want_int,
    want_list,
    want_model,
    want_number,
    want_str,
)

if TYPE_CHECKING:
    from typing import Any

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_N = 128
MAX_TOKENS = 2**31 - 1

FINGERPRINT = b'"system_fingerprint":"fp_fastmock"'
USAGE = (b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,'
         b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
         b'"completion_tokens_details":{"reasoning_tokens":%d,"audio_tokens":0,'
         b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}')
DONE = b"data: [DONE]\n\n"
def call_id(k: int) -> str:
    """The id of the reply's tool call ``k`` (the request's id spliced in per request)."""
    return "call_" + ID_STANDIN + (f"_{k}" if k else "")


def usage_bytes(prompt: int, completion: int, reasoning: int = 0) -> bytes:
    return USAGE % (prompt, completion, prompt + completion, reasoning)


class ChatPieces:
    """Everything about one reply shape that does not depend on the request's identity."""

    __slots__ = ("completion_tokens", "reasoning_tokens", "choices", "step_tails", "has_call",
                 "step_counts")

    def __init__(self, completion_tokens: int, reasoning_tokens: int, choices: bytes,
                 step_tails: list[list[bytes]], has_call: bool,
                 step_counts: list[list[int]] | None = None) -> None:
        self.completion_tokens = completion_tokens
        self.reasoning_tokens = reasoning_tokens
        self.choices = choices
        #: One list per SSE step; each starts with b"" so ``head.join(tails)`` prefixes
        #: every tail.
        self.step_tails = step_tails
        #: The bytes hold the tool call's id stand-in (replaced per request).
        self.has_call = has_call
        #: The tokens each tail of ``step_tails`` carries (after its b""), for usage in
        #: every chunk (``continuous_usage_stats``).
        self.step_counts = step_counts or []


def _deltas(said: Said, chunk: int) -> list[tuple[bytes, int]]:
    """The JSON of every paced delta, in order (reasoning, then content or a tool call), and
    the tokens it carries."""
    out: list[tuple[bytes, int]] = []

    def pieces(template: bytes, tokens: tuple[str, ...]) -> None:
        for i in range(0, len(tokens), chunk):
            some = tokens[i:i + chunk]
            out.append((template % orjson.dumps("".join(some)), len(some)))

    field = b"reasoning" if said.style == "reasoning" else b"reasoning_content"
    pieces(b'{"' + field + b'":%s}', said.reasoning)
    if said.calls:
        pieces(b'{"content":%s}', said.answer)    # <think> text before a tool call
        for k, call in enumerate(said.calls):     # parallel calls one after the other
            out.append((b'{"tool_calls":[{"index":%d,"id":%s,"type":"function","function":'
                        b'{"name":%s,"arguments":""}}]}'
                        % (k, orjson.dumps(call_id(k)), orjson.dumps(call.name)), 0))
            pieces(b'{"tool_calls":[{"index":%d,"function":{"arguments":%%s}}]}' % k,
                   call.pieces)
    else:
        pieces(b'{"content":%s}', said.answer)
    return out


def _message(said: Said) -> bytes:
    extra = b""
    if said.reasoning:
        field = b"reasoning" if said.style == "reasoning" else b"reasoning_content"
        extra = b',"%s":%s' % (field, orjson.dumps("".join(said.reasoning)))
    if said.calls:
        call = orjson.dumps([{"id": call_id(k), "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for k, c in enumerate(said.calls)])
        text = orjson.dumps(said.text) if said.answer else b"null"
        return (b'{"role":"assistant","content":%s,"refusal":null,"annotations":[],'
                b'"tool_calls":%s%s}' % (text, call, extra))
    return (b'{"role":"assistant","content":%s,"refusal":null,"annotations":[]%s}'
            % (orjson.dumps(said.text), extra))


def build_pieces(said: Said, n: int, chunk: int, include_usage: bool) -> ChatPieces:
    """Precompute the non-streaming choices and every SSE chunk tail for one reply shape."""
    fin = said.finish.encode()
    message = _message(said)
    choices = b"[" + b",".join(
        b'{"index":%d,"message":%s,"logprobs":null,"finish_reason":"%s"}' % (i, message, fin)
        for i in range(n)) + b"]"
    end = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
    deltas = _deltas(said, chunk)
    steps: list[list[bytes]] = [[b""] for _ in range(max(1, len(deltas)))]
    counts: list[list[int]] = [[] for _ in steps]
    role = b'{"role":"assistant","content":null,"refusal":null}' \
        if said.calls and not said.answer \
        else b'{"role":"assistant","content":"","refusal":null}'
    for i in range(n):
        steps[0].append(b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":null}%s'
                        % (i, role, end))
        counts[0].append(0)
    for k, (delta, carried) in enumerate(deltas):
        for i in range(n):
            steps[k].append(b'{"index":%d,"delta":%s,"logprobs":null,"finish_reason":null}%s'
                            % (i, delta, end))
            counts[k].append(carried)
    for i in range(n):
        steps[-1].append(b'{"index":%d,"delta":{},"logprobs":null,"finish_reason":"%s"}%s'
                         % (i, fin, end))
        counts[-1].append(0)
    return ChatPieces(said.completion_tokens * n, said.reasoning_tokens * n, choices, steps,
                      bool(said.calls), counts)


#: How a chunk's tail ends when the usage is asked for, and with the usage so far in it.
NO_USAGE_END = b'],"usage":null}\n\n'
USAGE_SO_FAR_END = b'],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'


def usage_so_far(step_tails: list[list[bytes]], step_counts: list[list[int]],
                 prompt: int) -> list[list[bytes]]:
    """The tails with the usage so far in every chunk (vLLM's continuous_usage_stats)."""
    done = 0
    out = []
    cut = len(NO_USAGE_END)
    for tails, counts in zip(step_tails, step_counts, strict=True):
        step = [b""]
        for tail, carried in zip(tails[1:], counts, strict=True):
            done += carried
            step.append(tail[:-cut] + USAGE_SO_FAR_END % (prompt, done, prompt + done))
        out.append(step)
    return out


def _pieces(profile: Profile, said: Said, n: int, include_usage: bool) -> ChatPieces:
    key = ("chat", said.key, n, include_usage)
    found: ChatPieces | None = profile.cache.get(key)
    if found is None:
        found = profile.keep(key, build_pieces(said, n, profile.tokens_per_chunk,
                                               include_usage))
    return found


def read_messages(body: dict[str, Any]) -> tuple[list[dict[str, Any]], int, int]:
    """The validated ``messages``, the prompt's token count and the last message's share of
    it, in one pass.

    A message with a known role and string content (nearly all of them) is checked and
    counted inline; any other goes through ``_checked_message``, which accepts a list of parts and
    words the error for anything else.
    """
    messages = body.get("messages")
    if type(messages) is not list or not messages:
        want_list(body, "messages", "an array of objects", min_items=1)   # raises
        assert isinstance(messages, list)
    count = tokens.count_cached
    total = tokens.REPLY_PRIMER_TOKENS + tokens.PER_MESSAGE_TOKENS * len(messages)
    last = 0
    for i, message in enumerate(messages):
        if type(message) is dict:
            role = message.get("role")
            text = message.get("content")
            if type(text) is str and type(role) is str and role in ROLES:
                last = count(text)
                total += last
                continue
        last = _checked_message(i, message)
        total += last
    return messages, total, last


def called_functions(messages: list[dict[str, Any]]) -> frozenset[str]:
    """The names of the functions the assistant called in these (validated) messages."""
    names = set()
    for message in messages:
        calls = message.get("tool_calls") if message.get("role") == "assistant" else None
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.add(function["name"])
    return frozenset(names)


def _checked_message(i: int, message: Any) -> int:
    """Check message ``i`` the long way; its tokens, or raise the error that says why not."""
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    role = want_str(message, "role", required=True, param=f"{where}.role")
    if role not in ROLES:
        raise invalid(f"Invalid value: '{role}'. Supported values are: 'system', "
                      "'developer', 'user', 'assistant', 'tool' and 'function'.",
                      f"{where}.role", "invalid_value")
    value = message.get("content")
    if value is not None and not isinstance(value, (str, list)):
        raise invalid(f"Invalid type for '{where}.content': expected one of a string or "
                      "an array of objects.", f"{where}.content", "invalid_type")
    if isinstance(value, list):
        for j, part in enumerate(value):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise invalid(f"Invalid '{where}.content[{j}]': expected an object with a "
                              "'type'.", f"{where}.content[{j}]", "invalid_type")
    return tokens.count_cached(content.message_text(value))


class Prepared:
    """What a chat request body decides, apart from the reply's identity and timing."""

    __slots__ = ("profile", "pieces", "usage", "model_json", "stream", "include_usage",
                 "volatile", "prompt", "prompt_tokens", "step_tails")

    def __init__(self, profile: Profile, pieces: ChatPieces, usage: bytes, model_json: bytes,
                 stream: bool, include_usage: bool, volatile: bool = False,
                 prompt: Prompt | None = None, prompt_tokens: int = 0) -> None:
        self.profile = profile
        self.pieces = pieces
        self.usage = usage
        self.model_json = model_json
        self.stream = stream
        self.include_usage = include_usage
        self.volatile = volatile   # a random tool choice: never memoized
        #: Set when the reply depends on the last message's text only through its tokens.
        self.prompt = prompt
        self.prompt_tokens = prompt_tokens
        #: The stream's tails (the pieces' own, or with the usage so far in every chunk).
        self.step_tails = pieces.step_tails


def prepare(raw: bytes, app: App, fill_to: int | None = None) -> Prepared:
    """Parse and validate a chat body and pick its precomputed pieces (memoized per body).

    Optional fields are looked at only when present: a body of just ``model`` and
    ``messages`` (what load tests send, a new prompt each time) costs no call per field.
    """
    body = json_object(raw)
    model, profile = want_model(body, app, "chat")
    messages, prompt, last_tokens = read_messages(body)
    followup = messages[-1].get("role") in ("tool", "function")
    stream = include_usage = continuous = False
    n = 1
    if len(body) == 2 and profile.mode != "echo" and fill_to is None:
        ask = say.PLAIN[followup]
    else:
        ask = say.Ask(followup=followup, fill_to=fill_to)
        if profile.mode == "echo":
            ask.echo_text = content.last_user_text(messages)
        if "stream" in body or "stream_options" in body:
            stream, include_usage = stream_flags(body)
            continuous = include_usage and continuous_usage(body)
        if "n" in body:
            n = want_int(body, "n", 1, MAX_N) or 1
        if "max_completion_tokens" in body:
            ask.limit = want_int(body, "max_completion_tokens", 1, MAX_TOKENS)
        if ask.limit is None and "max_tokens" in body:
            ask.limit = want_int(body, "max_tokens", 1, MAX_TOKENS)
        if "temperature" in body:
            want_number(body, "temperature", 0, 2)
        if "top_p" in body:
            want_number(body, "top_p", 0, 1)
        say.read_options(body, ask)
        if ask.response_format is not None and ask.response_format["type"] == "json_object":
            ask.prompt_texts = tuple(content.message_text(m.get("content")) for m in messages)
        if ask.tool_choice == "required" and ask.tools:
            ask.called = called_functions(messages)
        if fill_to is not None:
            ask.limit = fill_to if ask.limit is None else min(ask.limit, fill_to)
        else:
            ask.fill_to = say.fill_for(body, ask.limit, profile)
    said = say.decide(profile, ask)
    pieces = _pieces(profile, said, n, include_usage)
    usage = usage_bytes(prompt, pieces.completion_tokens, pieces.reasoning_tokens)
    last = messages[-1].get("content")
    blind = None
    if type(last) is str and profile.mode != "echo" and not said.volatile:
        blind = Prompt(last, prompt - last_tokens, pieces.completion_tokens,
                       include_usage or not stream)
    prepared = Prepared(profile, pieces, usage, profile.json_name(model), stream,
                        include_usage, said.volatile, None if continuous else blind, prompt)
    if continuous:
        prepared.step_tails = usage_so_far(pieces.step_tails, pieces.step_counts, prompt)
    return prepared


def sse_steps(head: bytes, step_tails: list[list[bytes]], usage: bytes | None) -> list[bytes]:
    """Every SSE step of a chunk stream: ``head`` before each precomputed tail; then the usage
    chunk (``"choices": []``) when asked for, and ``[DONE]``, with the last step."""
    steps = [head.join(tails) for tails in step_tails]
    if usage is not None:
        steps[-1] += head + b'],"usage":' + usage + b"}\n\n" + DONE
    else:
        steps[-1] += DONE
    return steps


def render(app: App, p: Prepared, ident: bytes) -> Reply:
    """The reply for one request: its id and ``created`` spliced into prepared bytes."""
    pieces = p.pieces
    if p.stream:
        head = (b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%s,'
                b'"model":%s,%s,"choices":[' % (ident, CLOCK.unix_bytes, p.model_json,
                                               FINGERPRINT))
        steps = sse_steps(head, p.step_tails, p.usage if p.include_usage else None)
        if pieces.has_call:
            steps = [s.replace(ID_STANDIN_JSON, ident) for s in steps]
        return Reply(200, SSE_HEADERS, steps=steps, pace=p.profile, cacheable=not p.volatile,
                     prompt=p.prompt, model=p.profile,
                     tokens=p.prompt_tokens + pieces.completion_tokens,
                     prompt_tokens=p.prompt_tokens, error_step=CHUNKS_ERROR)
    choices = pieces.choices.replace(ID_STANDIN_JSON, ident) if pieces.has_call \
        else pieces.choices
    out = (b'{"id":"chatcmpl-%s","object":"chat.completion","created":%s,"model":%s,'
           b'"choices":%s,"usage":%s,"service_tier":"default",%s}'
           % (ident, CLOCK.unix_bytes, p.model_json, choices, p.usage, FINGERPRINT))
    return Reply(200, JSON_HEADERS, out, pace=p.profile, wait_steps=len(pieces.step_tails),
                 cacheable=not p.volatile, prompt=p.prompt, model=p.profile,
                 tokens=p.prompt_tokens + pieces.completion_tokens,
                 prompt_tokens=p.prompt_tokens)


handle = prepared_route("chat", prepare, render)
