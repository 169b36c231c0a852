"""Request type and the validation helpers every endpoint shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .. import tokens
from ..errors import Invalid, invalid
from ..frames import IDS
from ..reply import Header, Reply
from .kinds import profile_for

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..state import App, Profile
    from ..trouble import Overrides

__all__ = ["Invalid", "Request", "invalid", "json_object", "prepared_route", "query",
           "stream_flags", "text_inputs", "want_bool", "want_dict", "want_int", "want_list",
           "want_model", "want_number", "want_str"]


class Request:
    """A complete request, as the protocol hands it to the router."""

    __slots__ = ("method", "target", "headers", "body", "loopback", "ident", "overrides")

    def __init__(self, method: bytes, target: bytes, headers: list[Header], body: bytes = b"",
                 loopback: bool = True, ident: bytes | None = None,
                 overrides: Overrides | None = None) -> None:
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        #: The client connected from a loopback address (the admin API trusts those).
        self.loopback = loopback
        #: The id to write into the reply: ``frames.ID_MARK`` from the protocol (which
        #: splices the real one in), or None for a fresh id (direct callers, tests).
        self.ident = ident
        #: What the request asked for with x-fastmock-* headers (see ``trouble``).
        self.overrides = overrides


def query(req: Request) -> dict[str, str]:
    """The request's query string, each name once (the last value wins)."""
    qs = req.target.partition(b"?")[2]
    if not qs:
        return {}
    from urllib.parse import parse_qsl  # (only here: it costs a start ~3 ms)

    return dict(parse_qsl(qs.decode("latin-1")))


def json_object(body: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    if not body:
        raise invalid("We could not parse the JSON body of your request: the body is empty. "
                      "The OpenAI API expects a JSON payload.")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode()
        except UnicodeDecodeError as bad:
            line = body.count(b"\n", 0, bad.start) + 1
            column = bad.start - (body.rfind(b"\n", 0, bad.start) + 1) + 1
            raise invalid("We could not parse the JSON body of your request: it is not valid "
                          f"UTF-8 (byte 0x{body[bad.start]:02x} at offset {bad.start}, line "
                          f"{line} column {column}). The OpenAI API expects a JSON payload "
                          "in UTF-8.") from None
        raise invalid("We could not parse the JSON body of your request: "
                      f"{exc.msg} (line {exc.lineno} column {exc.colno}). "
                      "The OpenAI API expects a JSON payload.") from None
    if not isinstance(obj, dict):
        raise invalid("The request body must be a JSON object, not "
                      f"{_json_type(obj)}.")
    return obj


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def want_str(obj: dict[str, Any], key: str, required: bool = False,
             param: str | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise invalid(f"Missing required parameter: '{param or key}'.", param or key,
                          "missing_required_parameter")
        return None
    if not isinstance(value, str):
        raise invalid(f"Invalid type for '{param or key}': expected a string, but got "
                      f"{_json_type(value)} instead.", param or key, "invalid_type")
    return value


def want_bool(obj: dict[str, Any], key: str, default: bool = False,
              param: str | None = None) -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"Invalid type for '{param or key}': expected a boolean, but got "
                      f"{_json_type(value)} instead.", param or key, "invalid_type")
    return value


def want_int(obj: dict[str, Any], key: str, lo: int, hi: int,
             param: str | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    name = param or key
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise invalid(f"Invalid type for '{name}': expected an integer, but got "
                          f"{_json_type(value)} instead.", name, "invalid_type")
    if not lo <= value <= hi:
        raise invalid(f"Invalid '{name}': {value} is out of range; it must be between {lo} "
                      f"and {hi}.", name, "integer_out_of_range")
    return value


def want_number(obj: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"Invalid type for '{key}': expected a number, but got "
                      f"{_json_type(value)} instead.", key, "invalid_type")
    if not lo <= value <= hi:
        raise invalid(f"Invalid '{key}': {value} is out of range; it must be between {lo:g} "
                      f"and {hi:g}.", key, "decimal_out_of_range")
    return float(value)


def want_dict(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(f"Invalid type for '{key}': expected an object, but got "
                      f"{_json_type(value)} instead.", key, "invalid_type")
    return value


def stream_flags(body: dict[str, Any]) -> tuple[bool, bool]:
    """``stream`` and ``stream_options.include_usage`` (only allowed with ``stream``)."""
    stream = want_bool(body, "stream")
    options = want_dict(body, "stream_options")
    if options is not None and not stream:
        raise invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                      "stream_options", "invalid_value")
    include_usage = want_bool(options, "include_usage", param="stream_options.include_usage") \
        if options else False
    return stream, include_usage


def continuous_usage(body: dict[str, Any]) -> bool:
    """vLLM's ``stream_options.continuous_usage_stats`` (the usage so far in every chunk);
    read after ``stream_flags``, which checked ``stream_options``."""
    options = body.get("stream_options")
    return isinstance(options, dict) and want_bool(
        options, "continuous_usage_stats", param="stream_options.continuous_usage_stats")


def want_model(body: dict[str, Any], app: App, route: str) -> tuple[str, Profile]:
    """The required ``model`` and the profile that serves it on ``route``."""
    model = body.get("model")
    if type(model) is not str:
        model = want_str(body, "model", required=True)   # says what is wrong with it
        assert model is not None
    return model, profile_for(app, model, route)


def prepared_route(name: str, prepare: Callable[..., Any],
                   render: Callable[[App, Any, bytes], Reply]) -> Callable[[Request, App], Reply]:
    """An endpoint split in two: ``prepare`` (memoized per body, see ``App.prepared``) and
    ``render`` (the id and the clock spliced into prepared bytes). A memoized error reply is
    sent as it is. A request that asks for a length (``x-fastmock-tokens``) is prepared for
    itself: the same body has another reply then."""

    def checked(raw: bytes, app: App, *rest: Any) -> Any:
        if app.config.strict_requests:
            from .. import strict

            strict.check(name, raw)
        return prepare(raw, app, *rest)

    def handle(req: Request, app: App) -> Reply:
        if req.overrides is not None and req.overrides.tokens is not None:
            try:
                prepared = checked(req.body, app, req.overrides.tokens)
            except Invalid as exc:
                return exc.reply
        else:
            prepared = app.prepared(name, req.body, checked)
        if type(prepared) is Reply:
            return prepared
        return render(app, prepared, req.ident or IDS.new())

    handle.__name__ = f"{name}_handle"
    return handle


def want_list(obj: dict[str, Any], key: str, what: str, max_items: int | None = None,
              min_items: int = 0) -> list[Any]:
    """A required array ``obj[key]`` of at least ``min_items`` and at most ``max_items``."""
    value = obj.get(key)
    if value is None:
        raise invalid(f"Missing required parameter: '{key}'.", key,
                      "missing_required_parameter")
    if not isinstance(value, list):
        raise invalid(f"Invalid type for '{key}': expected {what}.", key, "invalid_type")
    if len(value) < min_items:
        raise invalid(f"Invalid '{key}': empty array. Expected an array with minimum length "
                      f"{min_items}, but got an empty array instead.", key, "empty_array")
    if max_items is not None and len(value) > max_items:
        raise invalid(f"'{key}' has {len(value)} items; at most {max_items} are allowed.",
                      key, "array_above_max_length")
    return value


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)


def text_inputs(obj: dict[str, Any], key: str, max_items: int,
                allow_empty: bool) -> list[tuple[str, int, bool]]:
    """OpenAI's text-or-tokens input (``prompt`` of completions, ``input`` of embeddings): a
    string, an array of strings, an array of token ids, or an array of such arrays. Each item
    as (its text, or its ids joined by spaces; its token count; whether it was token ids)."""
    value = obj.get(key)
    if isinstance(value, str) or (isinstance(value, list) and value and _token_ids(value)):
        value = [value]                      # one input
    items = want_list(obj | {key: value}, key, "a string, an array of strings, an array of "
                      "integers, or an array of arrays of integers", max_items, min_items=1)
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str) and (item or allow_empty):
            out.append((item, tokens.count_cached(item), False))
        elif _token_ids(item) and (item or allow_empty):
            out.append((" ".join(map(str, item)), len(item), True))
        else:
            raise invalid(f"Invalid '{key}[{i}]': expected a{'' if allow_empty else ' non-empty'}"
                          " string or array of non-negative integers.", f"{key}[{i}]",
                          "invalid_type")
    return out
