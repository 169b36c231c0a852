"""Instances of a JSON Schema: tool-call arguments and ``json_schema`` replies that validate.

Covers what function parameters and structured outputs use: ``type`` (one or a list),
``properties``/``required``/``additionalProperties``, ``items``/``prefixItems``/``minItems``/
``maxItems``, ``enum``, ``const``, ``anyOf``/``oneOf``/``allOf``, local ``$ref`` into
``$defs``/``definitions``, string ``minLength``/``maxLength``/``pattern``-free formats
(``date``, ``date-time``, ``email``, ``uuid``, ``uri``), numeric ``minimum``/``maximum``/
``exclusiveMinimum``/``exclusiveMaximum``/``multipleOf``, and ``default``/``examples``. Every
required property is present, optional ones too (a mock should exercise the client's parser);
choices are made by the ``random.Random`` passed in, so a seed makes them reproducible.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence
    from typing import Any

#: Recursion guard for self-referencing schemas (a tree node that contains nodes).
MAX_DEPTH = 6
#: The most values (and string characters) one instance may take: a schema that asks for more
#: (``minItems: 1000000``, or arrays of arrays of long minimums) is refused, not built.
MAX_VALUES = 10_000
MAX_CHARS = 1_000_000

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
          "juliet", "kilo", "lima", "mike", "november", "oscar", "papa")


class SchemaError(ValueError):
    """The schema cannot be satisfied or is not a schema."""


class _Left:
    """What is left of the current instance's budget (see MAX_VALUES)."""

    values = 0
    chars = 0


def _spend(values: int, chars: int = 0) -> None:
    _Left.values -= values
    _Left.chars -= chars
    if _Left.values < 0 or _Left.chars < 0:
        raise SchemaError(f"the schema asks for an instance of more than {MAX_VALUES} values "
                          f"or {MAX_CHARS} characters; fastmock makes smaller ones")


def instance(schema: Any, rng: random.Random, root: Any = None, depth: int = 0) -> Any:
    """A JSON value that validates against ``schema``."""
    if root is None:
        root = schema
        _Left.values, _Left.chars = MAX_VALUES, MAX_CHARS
    _spend(1)
    if schema is True or schema == {} or schema is None:
        return "value"
    if schema is False:
        raise SchemaError("the schema 'false' has no instance")
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema must be an object or a boolean, not {type(schema).__name__}")
    if "$ref" in schema:
        return instance(_resolve(schema["$ref"], root), rng, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list) or not values:
            raise SchemaError("enum must be a non-empty array")
        return values[rng.randrange(len(values))]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = schema[key]
            if not isinstance(options, list) or not options:
                raise SchemaError(f"{key} must be a non-empty array")
            # Prefer a non-null branch: optional fields are written as anyOf [T, null].
            preferred = [o for o in options
                         if not (isinstance(o, dict) and o.get("type") == "null")]
            return instance((preferred or options)[0], rng, root, depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = _resolve(part["$ref"], root) if isinstance(part, dict) and "$ref" in part \
                else part
            if isinstance(part, dict):
                for k, v in part.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged["required"] = list(merged.get("required", [])) + list(v)
                    else:
                        merged.setdefault(k, v)
        return instance(merged, rng, root, depth + 1)
    if "default" in schema:
        return schema["default"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"] or kind
        kind = kinds[0] if kinds else None
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    maker = _MAKERS.get(kind)
    if maker is None:
        raise SchemaError(f"unknown type {kind!r}")
    return maker(schema, rng, root, depth)


def _resolve(ref: Any, root: Any) -> Any:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SchemaError(f"only local $ref are supported, not {ref!r}")
    node = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"$ref {ref!r} does not resolve")
        node = node[part]
    return node


def _object(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> Any:
    props = schema.get("properties") or {}
    if not isinstance(props, dict):
        raise SchemaError("properties must be an object")
    required = schema.get("required") or []
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise SchemaError("required must be an array of property names")
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if depth >= MAX_DEPTH and name not in required:
            continue
        out[name] = instance(sub, rng, root, depth + 1)
    for name in required:
        if name not in out:
            extra = schema.get("additionalProperties")
            out[name] = instance(extra if isinstance(extra, dict) else {}, rng, root, depth + 1)
    return out


def _array(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> Any:
    prefix = schema.get("prefixItems") or []
    items = schema.get("items", {})
    low = _size(schema, "minItems", 1 if depth < MAX_DEPTH else 0)
    high = _size(schema, "maxItems", max(low, 2))
    if high < low:
        raise SchemaError("maxItems is below minItems")
    size = max(low, min(high, len(prefix) or 1 if depth < MAX_DEPTH else low))
    _spend(size)   # (before building: a million items are refused at once)
    out = [instance(p, rng, root, depth + 1) for p in prefix[:size]]
    while len(out) < size:
        out.append(instance(items, rng, root, depth + 1))
    if schema.get("uniqueItems") and len({repr(v) for v in out}) != len(out):
        out = out[:1]
    return out


def _string(schema: dict[str, Any], rng: random.Random, root: Any, depth: int) -> Any:
    fmt = schema.get("format")
    if fmt == "date-time":
        value = "2026-01-01T12:00:00Z"
    elif fmt == "date":
        value = "2026-01-01"
    elif fmt == "time":
        value = "12:00:00"
    elif fmt == "email":
        value = "user@example.com"
    elif fmt == "uuid":
        value = f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}"
    elif fmt in ("uri", "url"):
        value = "https://example.com/" + _WORDS[rng.randrange(len(_WORDS))]
    else:
        value = _WORDS[rng.randrange(len(_WORDS))]
    low = _size(schema, "minLength", 0)
    high = _size(schema, "maxLength", max(low, len(value)))
    if high < low:
        raise SchemaError("maxLength is below minLength")
    if len(value) < low:
        _spend(0, low)
        value += "x" * (low - len(value))
    return value[:high]


def _size(schema: dict[str, Any], key: str, default: int) -> int:
    """A count the schema sets (minItems, maxLength, ...): a whole number, at least 0."""
    value = schema.get(key, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"{key} must be a non-negative integer")
    return value


def _number(schema: dict[str, Any], rng: random.Random, root: Any, depth: int,
            integer: bool = False) -> Any:
    low = schema.get("minimum", -math.inf)
    high = schema.get("maximum", math.inf)
    if "exclusiveMinimum" in schema and not isinstance(schema["exclusiveMinimum"], bool):
        low = max(low, schema["exclusiveMinimum"] + (1 if integer else 1e-6))
    if "exclusiveMaximum" in schema and not isinstance(schema["exclusiveMaximum"], bool):
        high = min(high, schema["exclusiveMaximum"] - (1 if integer else 1e-6))
    if low == -math.inf and high == math.inf:
        low, high = 0, 100
    elif low == -math.inf:
        low = high - 100
    elif high == math.inf:
        high = low + 100
    if integer:
        low, high = math.ceil(low), math.floor(high)
        if high < low:
            raise SchemaError("no integer between minimum and maximum")
        value: float = rng.randint(int(low), int(high))
    else:
        if high < low:
            raise SchemaError("maximum is below minimum")
        value = round(rng.uniform(low, high), 2)
        value = min(max(value, low), high)
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        value = math.ceil(low / step) * step
        if value > high:
            raise SchemaError("no multiple of multipleOf between minimum and maximum")
        if integer:
            value = int(value)
    return int(value) if integer else value


_MAKERS: dict[str, Any] = {
    "object": _object,
    "array": _array,
    "string": _string,
    "number": _number,
    "integer": lambda s, r, root, d: _number(s, r, root, d, integer=True),
    "boolean": lambda s, r, root, d: bool(r.getrandbits(1)),
    "null": lambda s, r, root, d: None,
}


#: At most this many objects are decoded when looking for a schema in a prompt.
MAX_PROMPT_OBJECTS = 1_000


def written_in(texts: Sequence[str]) -> dict[str, Any] | None:
    """The last JSON Schema of an object written in ``texts`` (a JSON object whose
    ``properties`` maps names to schemas), as JSON-mode prompts carry it: pydantic-ai's
    PromptedOutput, instructor's JSON mode, LangChain's format instructions (which show an
    example schema first, and the real one last). None when there is none."""
    import json  # only for prompts that ask for JSON (raw_decode reads from a position)

    decode = json.JSONDecoder().raw_decode
    found = None
    tries = MAX_PROMPT_OBJECTS
    for text in texts:
        if '"properties"' not in text:
            continue
        at = text.find("{")
        while at >= 0 and tries > 0:
            tries -= 1
            try:
                value, end = decode(text, at)
            except (ValueError, RecursionError):
                at = text.find("{", at + 1)
                continue
            props = value.get("properties") if isinstance(value, dict) else None
            if isinstance(props, dict) and props and all(
                    isinstance(p, (dict, bool)) for p in props.values()):
                found = value
            at = text.find("{", end)
    return found
