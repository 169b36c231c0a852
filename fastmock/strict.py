"""``--strict-requests``: reject what the OpenAI API rejects, with its messages.

By default fastmock is lenient, as proxies add fields of their own (and vLLM's extensions are
welcome). A client tested for what OpenAI itself will accept turns this on: an unknown field,
an empty ``model``, a whole number written as a decimal (``"n": 1.0``) or a user message with
``content: null`` is then a 400, as at OpenAI. It runs once per distinct body (prepared replies
are memoized), so it costs nothing per request on a repeated body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .errors import invalid

if TYPE_CHECKING:
    from typing import Any

_COMMON = frozenset({"model", "user", "metadata", "service_tier", "store", "stream",
                     "stream_options", "temperature", "top_p", "safety_identifier",
                     "prompt_cache_key", "prompt_cache_retention"})

#: The fields each route's OpenAI endpoint knows (rerank: Cohere's and Jina's).
FIELDS: dict[str, frozenset[str]] = {
    "chat": _COMMON | {"messages", "audio", "frequency_penalty", "function_call", "functions",
                       "logit_bias", "logprobs", "max_completion_tokens", "max_tokens",
                       "modalities", "n", "parallel_tool_calls", "prediction",
                       "presence_penalty", "reasoning_effort", "response_format", "seed",
                       "stop", "tool_choice", "tools", "top_logprobs", "verbosity",
                       "web_search_options"},
    "completions": _COMMON | {"prompt", "best_of", "echo", "frequency_penalty", "logit_bias",
                              "logprobs", "max_tokens", "n", "presence_penalty", "seed",
                              "stop", "suffix"},
    "embeddings": frozenset({"model", "input", "dimensions", "encoding_format", "user"}),
    "responses": _COMMON | {"input", "background", "conversation", "include", "instructions",
                            "max_output_tokens", "max_tool_calls", "parallel_tool_calls",
                            "previous_response_id", "prompt", "reasoning", "text",
                            "tool_choice", "tools", "top_logprobs", "truncation"},
    "rerank": frozenset({"model", "query", "documents", "top_n", "return_documents",
                         "max_chunks_per_doc", "rank_fields", "max_tokens_per_doc"}),
}

#: Fields that are integers: a decimal there (even 1.0) is refused.
INTEGERS = frozenset({"n", "max_tokens", "max_completion_tokens", "seed", "top_logprobs",
                      "best_of", "max_output_tokens", "dimensions", "top_n", "max_tool_calls"})


def check(route: str, raw: bytes) -> None:
    """Raise the error OpenAI would give this body on ``route``, if any."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return   # the route words that error
    if not isinstance(body, dict):
        return
    known = FIELDS.get(route)
    if known is not None:
        for key in body:
            if key not in known:
                raise invalid(f"Unrecognized request argument supplied: {key}")
    if body.get("model") == "":
        raise invalid("Invalid 'model': empty string. Expected a string with minimum length 1, "
                      "but got an empty string instead.", "model", "empty_string")
    for key in INTEGERS & body.keys():
        if isinstance(body[key], float):
            raise invalid(f"Invalid type for '{key}': expected an integer, but got a decimal "
                          "number instead.", key, "invalid_type")
    if route == "chat" and isinstance(body.get("messages"), list):
        _messages(body["messages"])


def _messages(messages: list[Any]) -> None:
    for i, message in enumerate(messages):
        if isinstance(message, dict) and message.get("content", 0) is None \
                and message.get("role") != "assistant":
            raise invalid(f"Invalid type for 'messages[{i}].content': expected one of a string "
                          "or an array of objects, but got null instead.",
                          f"messages[{i}].content", "invalid_type")
