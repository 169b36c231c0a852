"""What the model says to one request: reasoning, then an answer or a tool call.

Every text route (chat, completions, responses) asks :func:`decide` and then only formats the
result. A decision is a pure function of the request and the model's settings, except a tool
call under ``tool_choice: auto`` with a probability strictly between 0 and 1 and no ``seed``:
that one is marked ``volatile`` so that it is not memoized.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from . import content, schema, tokens
from .errors import invalid

if TYPE_CHECKING:
    import random
    from typing import Any

    from .state import Profile

ReasoningStyle = str  # "reasoning_content" | "reasoning" | "think_tags"


class ToolCall:
    __slots__ = ("name", "arguments", "pieces")

    def __init__(self, name: str, arguments: str, pieces: tuple[str, ...]) -> None:
        self.name = name
        self.arguments = arguments      # JSON text
        self.pieces = pieces            # the arguments split into tokens, for streaming


class Said:
    """The model's reply, in tokens, before any wire format."""

    __slots__ = ("reasoning", "answer", "calls", "finish", "style", "reasoning_tokens",
                 "volatile", "key")

    def __init__(self, reasoning: tuple[str, ...], answer: tuple[str, ...],
                 calls: tuple[ToolCall, ...], finish: str, style: ReasoningStyle,
                 reasoning_tokens: int, volatile: bool = False,
                 key: tuple[Any, ...] = ()) -> None:
        self.reasoning = reasoning
        self.answer = answer
        #: The tool calls (several when parallel), or none: then the answer is text.
        self.calls = calls
        self.finish = finish                      # "stop" | "length" | "tool_calls"
        self.style = style
        self.reasoning_tokens = reasoning_tokens  # counted even when folded into <think> tags
        self.volatile = volatile
        self.key = key

    @property
    def completion_tokens(self) -> int:
        if self.calls:
            thinking = len(self.answer) if self.style == "think_tags" else len(self.reasoning)
            return thinking + sum(len(call.pieces) for call in self.calls)
        return len(self.answer) + (0 if self.style == "think_tags" else len(self.reasoning))

    @property
    def text(self) -> str:
        return "".join(self.answer)


class Ask:
    """What a request asks for, already validated by its route."""

    __slots__ = ("echo_text", "seed", "limit", "stop", "tools", "tool_choice", "followup",
                 "response_format", "fill_to", "called", "parallel", "prompt_texts")

    def __init__(self, echo_text: str = "", seed: int | None = None, limit: int | None = None,
                 stop: tuple[str, ...] = (), tools: list[dict[str, Any]] | None = None,
                 tool_choice: Any = None, followup: bool = False,
                 response_format: dict[str, Any] | None = None,
                 fill_to: int | None = None) -> None:
        self.echo_text = echo_text
        self.seed = seed
        self.limit = limit
        self.stop = stop
        self.tools = tools                      # [{"name", "parameters"}] normalised
        self.tool_choice = tool_choice          # "none" | "auto" | "required" | a name
        self.followup = followup                # the last input is a tool's result
        self.response_format = response_format  # {"type": ..., "schema": ...}
        #: A reply shorter than this is filled with lorem up to it (x-fastmock-tokens).
        self.fill_to = fill_to
        #: The functions already called in the conversation (read under "required" only).
        self.called: frozenset[str] = frozenset()
        #: The request allows several tool calls in one reply (``parallel_tool_calls``).
        self.parallel = True
        #: The texts of the conversation, read for a JSON Schema written in the prompt
        #: (under ``response_format: json_object`` only).
        self.prompt_texts: tuple[str, ...] = ()


#: What a request with no options asks for (it says nothing but its messages), as a last
#: message that is not / is a tool's result. Shared: ``decide`` never changes an Ask.
PLAIN = (Ask(), Ask(followup=True))


def read_options(body: dict[str, Any], ask: Ask) -> None:
    """The options of a text route's body that change what is said (each looked at only when
    present): ``seed``, ``stop``, ``tools``, ``tool_choice``, ``response_format``."""
    if "seed" in body:
        ask.seed = want_seed(body)
    if "stop" in body:
        ask.stop = stop_list(body["stop"])
    if "tools" in body:
        ask.tools = function_tools(body["tools"])
    if "tool_choice" in body:
        ask.tool_choice = tool_choice(body["tool_choice"])
    if "response_format" in body:
        ask.response_format = response_format(body["response_format"])
    if "parallel_tool_calls" in body:
        ask.parallel = parallel_calls(body)


def parallel_calls(body: dict[str, Any]) -> bool:
    value = body.get("parallel_tool_calls")
    if value is not None and not isinstance(value, bool):
        raise invalid("Invalid type for 'parallel_tool_calls': expected a boolean.",
                      "parallel_tool_calls", "invalid_type")
    return value is not False


def fill_for(body: dict[str, Any], limit: int | None, profile: Profile,
             limit_param: str = "max_tokens", given: bool = True) -> int | None:
    """How long a reply must at least be (``Ask.fill_to``), from the vLLM extensions load
    tools send to fix the output length: ``ignore_eos: true`` (as long as ``limit``, the
    request's max_tokens) and ``min_tokens``; and from the model's ``exact_max_tokens`` when
    the request gave its limit (``given``)."""
    fill = None
    if "ignore_eos" in body:
        value = body["ignore_eos"]
        if value is not None and not isinstance(value, bool):
            raise invalid("Invalid type for 'ignore_eos': expected a boolean.", "ignore_eos",
                          "invalid_type")
        if value:
            fill = limit
    elif profile.exact_max_tokens and given:
        fill = limit
    if "min_tokens" in body:
        value = body["min_tokens"]
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise invalid("Invalid 'min_tokens': expected an integer of at least 0.",
                              "min_tokens", "invalid_value")
            if limit is not None and value > limit:
                raise invalid(f"min_tokens ({value}) must be less than or equal to "
                              f"{limit_param} ({limit}).", "min_tokens", "invalid_value")
            if value and (fill is None or value > fill):
                fill = value
    return fill


def stop_list(value: Any, param: str = "stop") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(v, str) for v in value):
        return tuple(v for v in value if v)
    raise invalid(f"Invalid '{param}': expected a string or an array of at most 4 strings.",
                  param, "invalid_type")


def want_seed(body: dict[str, Any]) -> int | None:
    seed = body.get("seed")
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid("Invalid type for 'seed': expected an integer.", "seed", "invalid_type")
    return seed


def _rng(seed: int | None, salt: str) -> random.Random:
    import random  # only for seeded or random choices (it costs a server start ~2 ms)

    return random.Random(f"{seed}\0{salt}")


def _choose_tools(ask: Ask, profile: Profile) -> tuple[list[dict[str, Any]], bool]:
    """The tools to call (none for a text reply), and whether that choice was random per
    request.

    As the API guarantees: a named function is always called, and under ``required`` some
    function always is, after a tool's result too (the first ones not called yet in the
    conversation, else the last one, so that a loop that calls each tool once ends). Under
    ``auto``, a tool's result is answered in text, and a user message with a tool call at
    the model's ``tool_call_probability``. Unless the request says ``parallel_tool_calls:
    false``, one reply calls up to the model's ``parallel_tool_calls`` distinct tools."""
    tools = ask.tools
    choice = ask.tool_choice
    if not tools or choice == "none":
        return [], False
    if isinstance(choice, str) and choice not in ("auto", "required"):
        for tool in tools:
            if tool["name"] == choice:
                return [tool], False
        raise invalid(f"Invalid 'tool_choice': no function named '{choice}' in 'tools'.",
                      "tool_choice", "invalid_value")
    most = profile.parallel_tool_calls if ask.parallel else 1
    if choice == "required":
        fresh = [tool for tool in tools if tool["name"] not in ask.called]
        return (fresh[:most] if fresh else [tools[-1]]), False
    if ask.followup:
        return [], False
    p = profile.tool_call_probability
    if p <= 0:
        return [], False
    if p >= 1:
        return tools[:most], False
    if ask.seed is not None:
        return (tools[:most] if _rng(ask.seed, "auto").random() < p else []), False
    import random

    return (tools[:most] if random.random() < p else []), True


def decide(profile: Profile, ask: Ask, style: ReasoningStyle | None = None) -> Said:
    """Decide the reply: reasoning tokens first (reasoning models), then a tool call or text.

    ``style`` overrides the model's reasoning style (the Responses API always wants the
    reasoning apart, as its own output item). A decision that does not depend on the prompt
    (no tools, no response format, not an echo) is kept on the model's profile.
    """
    if ask.tools or ask.response_format is not None or profile.mode == "echo":
        # (with tools, the choice depends on the conversation: never kept per model)
        return _decide(profile, ask, style)
    key = ("said", style, ask.limit, ask.stop, ask.followup,
           ask.seed if profile.mode == "lorem" else None, ask.fill_to)
    found: Said | None = profile.cache.get(key)
    return found if found is not None else profile.keep(key, _decide(profile, ask, style))


def _decide(profile: Profile, ask: Ask, style: ReasoningStyle | None) -> Said:
    style = style or profile.reasoning_style
    reasoning = tuple(profile.reasoning_tokens) if profile.kind == "reasoning" else ()
    chosen, volatile = _choose_tools(ask, profile)
    if chosen:
        calls = []
        for tool in chosen:
            text = orjson.dumps(schema_instance(tool.get("parameters"), ask.seed,
                                                tool["name"])).decode()
            calls.append(ToolCall(tool["name"], text, tuple(tokens.split(text))))
        shown: tuple[str, ...] = reasoning
        before_call: tuple[str, ...] = ()
        if style == "think_tags" and reasoning:
            # The thinking goes in the content, before the call, as such models send it.
            shown, before_call = (), ("<think>", *reasoning, "</think>")
        return Said(shown, before_call, tuple(calls), "tool_calls", style, len(reasoning),
                    volatile, ("tools", tuple((c.name, c.arguments) for c in calls), shown,
                               before_call, style))

    # The model's own text (canned, or lorem without a seed) is tokenized once, at startup:
    # it is used as it is, and named in the cache key by the profile instead of token by token.
    own = ask.response_format is None and profile.mode != "echo" \
        and not (profile.mode == "lorem" and ask.seed is not None)
    if ask.response_format is not None:
        answer_text = _formatted(profile, ask)
    elif profile.mode == "echo":
        answer_text = ask.echo_text
    elif ask.seed is not None:    # lorem with a seed
        answer_text = "".join(content.lorem(profile.lorem_tokens, ask.seed))
    else:
        answer_text = profile.text
    finish = "stop"
    for stop in ask.stop:
        at = answer_text.find(stop)
        if at >= 0:
            answer_text = answer_text[:at]
            own = False
    answer = profile.text_tokens if own else tokens.split(answer_text)
    if style == "think_tags" and reasoning:
        answer = ["<think>", *reasoning, "</think>", "\n\n", *answer]
        reasoning_shown: tuple[str, ...] = ()
    else:
        reasoning_shown = reasoning
    reasoning_count = len(reasoning)
    filled = False
    if ask.fill_to is not None and len(reasoning_shown) + len(answer) < ask.fill_to:
        need = ask.fill_to - len(reasoning_shown) - len(answer)
        # Lorem after the text, its first word with a leading space: exactly ``need`` tokens.
        answer = [*answer, *tokens.split(" " + "".join(content.lorem(need)))]
        own = False
        filled = True
    if ask.limit is not None and len(reasoning_shown) + len(answer) > ask.limit:
        finish = "length"
        if len(reasoning_shown) >= ask.limit:
            reasoning_shown, answer = reasoning_shown[:ask.limit], []
        else:
            answer = answer[:ask.limit - len(reasoning_shown)]
        if style == "think_tags":
            reasoning_count = min(reasoning_count, max(0, len(answer) - 1))
        else:
            reasoning_count = len(reasoning_shown)
    if filled and ask.limit is not None and len(reasoning_shown) + len(answer) >= ask.limit:
        finish = "length"   # filled up to the limit (ignore_eos): cut there, as vLLM says
    text_key: Any = ("own", len(answer)) if own else tuple(answer)
    key = ("text", text_key, bool(reasoning_shown), style, finish, reasoning_count)
    return Said(reasoning_shown, tuple(answer), (), finish, style, reasoning_count,
                volatile, key)


def schema_instance(params: Any, seed: int | None, salt: str, param: str = "tools",
                    what: str | None = None) -> Any:
    """An instance of ``params``, or a 400 naming ``param`` (the field the client sent) and
    ``what`` the schema is for (by default, the function ``salt``)."""
    try:
        return schema.instance(params if params is not None else {"type": "object"},
                               _rng(seed, salt))
    except (schema.SchemaError, TypeError, ValueError, RecursionError) as exc:
        raise invalid(f"Invalid schema for {what or f'function {salt!r}'}: {exc}", param,
                      "invalid_schema") from None


def _formatted(profile: Profile, ask: Ask) -> str:
    fmt = ask.response_format or {}
    if fmt.get("type") == "json_schema":
        where = fmt["param"]
        return orjson.dumps(schema_instance(fmt.get("schema"), ask.seed, "response_format",
                                            where, f"'{where}'")).decode()
    # json_object: an instance of the last schema the prompt writes out, as JSON-mode
    # prompts carry one; else the usual reply, wrapped so that the content is a JSON object.
    written = schema.written_in(ask.prompt_texts) if ask.prompt_texts else None
    if written is not None:
        try:
            return orjson.dumps(schema.instance(written, _rng(ask.seed, "prompt"))).decode()
        except (schema.SchemaError, TypeError, ValueError, RecursionError):
            pass    # not a schema fastmock can satisfy: the usual object
    text = ask.echo_text if profile.mode == "echo" else "".join(profile.text_tokens)
    return orjson.dumps({"response": text}).decode()


def function_tools(tools: Any, param: str = "tools") -> list[dict[str, Any]] | None:
    """Normalise chat-style (``{"type":"function","function":{...}}``) and Responses-style
    (``{"type":"function","name":...}``) tool lists to ``[{"name", "parameters"}]``."""
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise invalid(f"Invalid type for '{param}': expected an array.", param, "invalid_type")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise invalid(f"Invalid '{param}[{i}]': expected an object with a 'type'.",
                          f"{param}[{i}]", "invalid_type")
        if tool["type"] != "function":
            continue   # built-in tools (web search, ...) are accepted and never called
        fn = tool.get("function", tool)
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid(f"Missing required parameter: '{param}[{i}].function.name'.",
                          f"{param}[{i}].function.name", "missing_required_parameter")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise invalid(f"Invalid type for '{param}[{i}].function.parameters': expected an "
                          "object.", f"{param}[{i}].function.parameters", "invalid_type")
        out.append({"name": fn["name"], "parameters": params})
    return out


def tool_choice(value: Any) -> Any:
    """``"none"|"auto"|"required"``, or the name of the forced function (chat or Responses
    shape)."""
    if value is None or value in ("none", "auto", "required"):
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function", value)
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return fn["name"]
    raise invalid("Invalid 'tool_choice': expected 'none', 'auto', 'required' or "
                  "{\"type\": \"function\", \"function\": {\"name\": ...}}.", "tool_choice",
                  "invalid_value")


def response_format(value: Any, param: str = "response_format") -> dict[str, Any] | None:
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "schema": {...}}``; text: None."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise invalid(f"Invalid '{param}': expected an object with a 'type'.", param,
                      "invalid_type")
    kind = value["type"]
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        # chat nests it (response_format.json_schema.schema), Responses does not
        # (text.format.schema)
        nested = "json_schema" in value
        spec = value.get("json_schema", value)
        where = f"{param}.json_schema.schema" if nested else f"{param}.schema"
        sch = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(sch, dict):
            raise invalid(f"Missing required parameter: '{where}'.", where,
                          "missing_required_parameter")
        return {"type": "json_schema", "schema": sch, "param": where}
    raise invalid(f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and "
                  "'json_schema'.", f"{param}.type", "invalid_value")
