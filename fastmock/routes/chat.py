"""POST /v1/chat/completions: validation, then bytes assembled from precomputed pieces.

Per request only the id, ``created``, the model name and the usage numbers are formatted; the
choices of a non-streaming body and the tails of every SSE chunk are built once per
(model profile, reply length, n, include_usage) and cached on the profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .. import content, tokens
from ..frames import CLOCK, IDS, JSON_HEADERS, SSE_HEADERS
from ..reply import Reply
from ..state import App, Profile
from .common import (
    Request,
    invalid,
    json_object,
    want_bool,
    want_dict,
    want_int,
    want_number,
    want_str,
)

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_N = 128
MAX_TOKENS = 2**31 - 1
#: How many (length, n, usage) variants a profile keeps; real load uses a handful.
CACHE_LIMIT = 512

FINGERPRINT = b'"system_fingerprint":"fp_fastmock"'
USAGE = (b'{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,'
         b'"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},'
         b'"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
         b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}')
DONE = b"data: [DONE]\n\n"


def usage_bytes(prompt: int, completion: int) -> bytes:
    return USAGE % (prompt, completion, prompt + completion)


@dataclass(slots=True)
class ChatPieces:
    """Everything about one reply shape that does not depend on the request's identity."""

    completion_tokens: int
    choices: bytes
    #: One list per SSE step; each starts with b"" so ``head.join(tails)`` prefixes every tail.
    step_tails: list[list[bytes]]


def build_pieces(toks: list[str], finish: str, n: int, chunk: int,
                 include_usage: bool) -> ChatPieces:
    """Precompute the non-streaming choices and every SSE chunk tail for one reply shape."""
    text = orjson.dumps("".join(toks))
    fin = finish.encode()
    choices = b"[" + b",".join(
        b'{"index":%d,"message":{"role":"assistant","content":%s,"refusal":null,'
        b'"annotations":[]},"logprobs":null,"finish_reason":"%s"}' % (i, text, fin)
        for i in range(n)) + b"]"
    end = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
    pieces = ["".join(toks[i:i + chunk]) for i in range(0, len(toks), chunk)]
    steps: list[list[bytes]] = [[b""] for _ in range(max(1, len(pieces)))]
    for i in range(n):
        steps[0].append(b'{"index":%d,"delta":{"role":"assistant","content":"","refusal":null},'
                        b'"logprobs":null,"finish_reason":null}%s' % (i, end))
    for k, piece in enumerate(pieces):
        encoded = orjson.dumps(piece)
        for i in range(n):
            steps[k].append(b'{"index":%d,"delta":{"content":%s},"logprobs":null,'
                            b'"finish_reason":null}%s' % (i, encoded, end))
    for i in range(n):
        steps[-1].append(b'{"index":%d,"delta":{},"logprobs":null,"finish_reason":"%s"}%s'
                         % (i, fin, end))
    return ChatPieces(len(toks) * n, choices, steps)


def _pieces(profile: Profile, toks: list[str], limit: int | None, n: int,
            include_usage: bool, cacheable: bool) -> ChatPieces:
    cut = len(toks) if limit is None else min(limit, len(toks))
    key = ("chat", cut, n, include_usage)
    if cacheable:
        found: ChatPieces | None = profile.cache.get(key)
        if found is not None:
            return found
    finish = "length" if cut < len(toks) else "stop"
    pieces = build_pieces(toks[:cut], finish, n, profile.tokens_per_chunk, include_usage)
    if cacheable:
        if len(profile.cache) >= CACHE_LIMIT:
            profile.cache.clear()
        profile.cache[key] = pieces
    return pieces


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages",
                      "missing_required_parameter")
    if not isinstance(messages, list):
        raise invalid("Invalid type for 'messages': expected an array of objects.", "messages",
                      "invalid_type")
    if not messages:
        raise invalid("Invalid 'messages': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.", "messages", "empty_array")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(f"Invalid type for '{where}': expected an object.", where,
                          "invalid_type")
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
    return messages


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return tokens.estimate_chat_prompt(
        (content.message_text(m.get("content")) for m in messages), len(messages))


@dataclass(slots=True)
class Prepared:
    """What a chat request body decides, apart from the reply's identity and timing."""

    profile: Profile
    pieces: ChatPieces
    usage: bytes
    model_json: bytes
    stream: bool
    include_usage: bool


def prepare(raw: bytes, app: App) -> Prepared:
    """Parse and validate a chat body and pick its precomputed pieces (memoized per body)."""
    body = json_object(raw)
    model = want_str(body, "model", required=True)
    assert model is not None
    messages = _messages(body)
    stream = want_bool(body, "stream")
    n = want_int(body, "n", 1, MAX_N) or 1
    limit = want_int(body, "max_completion_tokens", 1, MAX_TOKENS)
    if limit is None:
        limit = want_int(body, "max_tokens", 1, MAX_TOKENS)
    want_number(body, "temperature", 0, 2)
    want_number(body, "top_p", 0, 1)
    options = want_dict(body, "stream_options")
    if options is not None and not stream:
        raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      "stream_options", "invalid_value")
    include_usage = want_bool(options, "include_usage", param="stream_options.include_usage") \
        if options else False

    profile = app.profile(model)
    if profile is None:
        raise invalid(f"The model '{model}' does not exist or you do not have access to it.",
                      "model", "model_not_found", status=404)
    if profile.mode == "echo":
        pieces = _pieces(profile, tokens.split(content.last_user_text(messages)), limit, n,
                         include_usage, cacheable=False)
    else:
        pieces = _pieces(profile, profile.text_tokens, limit, n, include_usage, cacheable=True)
    usage = usage_bytes(prompt_tokens(messages), pieces.completion_tokens)
    return Prepared(profile, pieces, usage, orjson.dumps(model), stream, include_usage)


def render(p: Prepared) -> Reply:
    """The reply for one request: a fresh id and ``created`` spliced into prepared bytes."""
    ident = IDS.new()
    if p.stream:
        head = (b'data: {"id":"chatcmpl-%s","object":"chat.completion.chunk","created":%s,'
                b'"model":%s,%s,"choices":[' % (ident, CLOCK.unix_bytes, p.model_json,
                                               FINGERPRINT))
        steps = [head.join(tails) for tails in p.pieces.step_tails]
        if p.include_usage:
            steps[-1] += head + b'],"usage":' + p.usage + b"}\n\n" + DONE
        else:
            steps[-1] += DONE
        return Reply(200, SSE_HEADERS, plan=p.profile.plan(steps))
    out = (b'{"id":"chatcmpl-%s","object":"chat.completion","created":%s,"model":%s,'
           b'"choices":%s,"usage":%s,"service_tier":"default",%s}'
           % (ident, CLOCK.unix_bytes, p.model_json, p.pieces.choices, p.usage, FINGERPRINT))
    if p.profile.paced:
        return Reply(200, JSON_HEADERS, out,
                     plan=p.profile.delayed(out, len(p.pieces.step_tails)))
    return Reply(200, JSON_HEADERS, out)


def handle(req: Request, app: App) -> Reply:
    prepared = app.prepared("chat", req.body, prepare)
    if type(prepared) is Reply:
        return prepared
    return render(prepared)
