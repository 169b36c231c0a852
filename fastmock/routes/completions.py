"""POST /v1/completions: legacy text completions, streaming and not, with echo, n and stop.

``prompt`` may be a string, an array of strings, or token ids (one array, or an array of
arrays); each prompt gets ``n`` choices, indexed ``prompt * n + j``. ``max_tokens`` defaults to
16, as at OpenAI. With ``echo`` the prompt precedes the completion in ``text`` (token-id
prompts echo as nothing: fastmock has no vocabulary to decode them).
"""

from __future__ import annotations

import orjson

from .. import say
from ..frames import CHUNKS_ERROR, CLOCK, JSON_HEADERS, SSE_HEADERS
from ..reply import Reply
from ..state import App, Profile
from .chat import FINGERPRINT, MAX_N, MAX_TOKENS, sse_steps, usage_bytes, usage_so_far
from .common import (
    continuous_usage,
    json_object,
    prepared_route,
    stream_flags,
    text_inputs,
    want_bool,
    want_int,
    want_model,
    want_number,
)

DEFAULT_MAX_TOKENS = 16
MAX_PROMPTS = 2048


def _tails(profile: Profile, said: say.Said, index: int, end: bytes) -> list[bytes]:
    """The stream chunk tails of one choice, the finish chunk last; cached per reply shape."""
    key = ("completions", said.key, index, end)
    found: list[bytes] | None = profile.cache.get(key)
    if found is None:
        chunk = profile.tokens_per_chunk
        found = [b'{"text":%s,"index":%d,"logprobs":null,"finish_reason":null}%s'
                 % (orjson.dumps("".join(said.answer[i:i + chunk])), index, end)
                 for i in range(0, len(said.answer), chunk)]
        found.append(b'{"text":"","index":%d,"logprobs":null,"finish_reason":"%s"}%s'
                     % (index, said.finish.encode(), end))
        profile.keep(key, found)
    return found


class Prepared:
    __slots__ = ("profile", "choices", "step_tails", "usage", "model_json", "stream",
                 "include_usage", "volatile", "prompt_tokens", "tokens")

    def __init__(self, profile: Profile, choices: bytes, step_tails: list[list[bytes]],
                 usage: bytes, model_json: bytes, stream: bool, include_usage: bool,
                 volatile: bool = False, prompt_tokens: int = 0, tokens: int = 0) -> None:
        self.profile = profile
        self.choices = choices
        self.step_tails = step_tails
        self.usage = usage
        self.model_json = model_json
        self.stream = stream
        self.include_usage = include_usage
        self.volatile = volatile
        self.prompt_tokens = prompt_tokens
        self.tokens = tokens


def prepare(raw: bytes, app: App, fill_to: int | None = None) -> Prepared:
    body = json_object(raw)
    model, profile = want_model(body, app, "completions")
    # A token-id prompt echoes as nothing: there is no vocabulary to decode it.
    prompts = [("" if ids else text, count) for text, count, ids in
               text_inputs(body, "prompt", MAX_PROMPTS, allow_empty=True)]
    stream, include_usage = stream_flags(body)
    echo = want_bool(body, "echo")
    n = want_int(body, "n", 1, MAX_N) or 1
    given = want_int(body, "max_tokens", 1, MAX_TOKENS)
    limit = given or DEFAULT_MAX_TOKENS
    if fill_to is not None:
        limit = fill_to
    else:
        fill_to = say.fill_for(body, limit, profile, given=given is not None)
    want_int(body, "best_of", 1, 20)
    want_number(body, "temperature", 0, 2)
    want_number(body, "top_p", 0, 1)
    seed = say.want_seed(body)
    stop = say.stop_list(body.get("stop"))
    end = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"
    choices: list[bytes] = []
    per_choice: list[list[bytes]] = []   # the stream tails of each choice, step by step
    per_counts: list[list[int]] = []     # the tokens each of those tails carries
    completion = 0
    for p, (text, _) in enumerate(prompts):
        said = say.decide(profile, say.Ask(echo_text=text, seed=seed, limit=limit, stop=stop,
                                           fill_to=fill_to))
        answer = said.text
        for j in range(n):
            index = p * n + j
            full = (text + answer) if echo else answer
            choices.append(b'{"text":%s,"index":%d,"logprobs":null,"finish_reason":"%s"}'
                           % (orjson.dumps(full), index, said.finish.encode()))
            tails = _tails(profile, said, index, end)
            chunk = profile.tokens_per_chunk
            counts = [min(chunk, len(said.answer) - i)
                      for i in range(0, len(said.answer), chunk)] + [0]
            if echo and text:
                tails = [b'{"text":%s,"index":%d,"logprobs":null,"finish_reason":null}%s'
                         % (orjson.dumps(text), index, end), *tails]
                counts = [0, *counts]
            per_choice.append(tails)
            per_counts.append(counts)
            completion += len(said.answer)
    steps = max(len(t) for t in per_choice) - 1
    step_tails: list[list[bytes]] = [[b""] for _ in range(max(1, steps))]
    step_counts: list[list[int]] = [[] for _ in step_tails]
    for tails, counts in zip(per_choice, per_counts, strict=True):
        for k, tail in enumerate(tails[:-1]):
            step_tails[k].append(tail)
            step_counts[k].append(counts[k])
        step_tails[-1].append(tails[-1])
        step_counts[-1].append(0)
    prompt_count = sum(count for _, count in prompts)
    if include_usage and continuous_usage(body):
        step_tails = usage_so_far(step_tails, step_counts, prompt_count)
    return Prepared(profile, b"[" + b",".join(choices) + b"]", step_tails,
                    usage_bytes(prompt_count, completion), profile.json_name(model), stream,
                    include_usage, False, prompt_count, prompt_count + completion)


def render(app: App, p: Prepared, ident: bytes) -> Reply:
    if p.stream:
        head = (b'data: {"id":"cmpl-%s","object":"text_completion","created":%s,"model":%s,'
                b'%s,"choices":[' % (ident, CLOCK.unix_bytes, p.model_json, FINGERPRINT))
        steps = sse_steps(head, p.step_tails, p.usage if p.include_usage else None)
        return Reply(200, SSE_HEADERS, steps=steps, pace=p.profile, cacheable=True,
                     model=p.profile, tokens=p.tokens, prompt_tokens=p.prompt_tokens,
                     error_step=CHUNKS_ERROR)
    out = (b'{"id":"cmpl-%s","object":"text_completion","created":%s,"model":%s,"choices":%s,'
           b'"usage":%s,%s}' % (ident, CLOCK.unix_bytes, p.model_json, p.choices, p.usage,
                                FINGERPRINT))
    return Reply(200, JSON_HEADERS, out, pace=p.profile, wait_steps=len(p.step_tails),
                 cacheable=True, model=p.profile, tokens=p.tokens, prompt_tokens=p.prompt_tokens)


handle = prepared_route("completions", prepare, render)
