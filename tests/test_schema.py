"""Generated instances validate against their schema (checked by the jsonschema library)."""

from __future__ import annotations

import random
from typing import Any

import jsonschema
import pytest

from fastmock.schema import SchemaError, instance

SCHEMAS: list[dict[str, Any]] = [
    {"type": "object", "properties": {"city": {"type": "string"},
                                      "unit": {"type": "string", "enum": ["c", "f"]}},
     "required": ["city", "unit"], "additionalProperties": False},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 5},
                                      "x": {"type": "number", "exclusiveMinimum": 0,
                                            "exclusiveMaximum": 1},
                                      "step": {"type": "integer", "multipleOf": 7,
                                               "minimum": 10}},
     "required": ["n", "x", "step"]},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"},
                                               "minItems": 2, "maxItems": 3}}},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                      "mail": {"type": "string", "format": "email"},
                                      "id": {"type": "string", "format": "uuid"},
                                      "code": {"type": "string", "minLength": 12,
                                               "maxLength": 12}},
     "required": ["when", "mail", "id", "code"]},
    {"type": "object", "properties": {"maybe": {"anyOf": [{"type": "null"},
                                                          {"type": "integer"}]},
                                      "either": {"oneOf": [{"const": "a"}, {"const": "b"}]},
                                      "flag": {"type": ["boolean", "null"]}},
     "required": ["maybe", "either", "flag"]},
    {"$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array",
                                                 "items": {"$ref": "#/$defs/node"}}},
        "required": ["name"]}},
     "type": "object", "properties": {"root": {"$ref": "#/$defs/node"}}, "required": ["root"]},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
    {"type": "object", "required": ["free"]},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_instances_validate(schema: dict[str, Any], seed: int) -> None:
    value = instance(schema, random.Random(seed))
    jsonschema.validate(value, schema)


def test_same_seed_same_instance() -> None:
    schema = SCHEMAS[1]
    assert instance(schema, random.Random("s")) == instance(schema, random.Random("s"))


@pytest.mark.parametrize("schema", [False, {"enum": []}, {"type": "integer", "minimum": 3,
                                                          "maximum": 2},
                                    {"type": "object", "required": [None]},   # found by fuzzing
                                    {"type": "object", "required": "name"},
                                    {"$ref": "https://example.com/x"}, {"type": "tensor"}, 5,
                                    # too big to build (found by fuzzing: it hung the server)
                                    {"type": "string", "minLength": 10**18},
                                    {"type": "array", "minItems": 10**9},
                                    {"type": "array", "minItems": 50, "items": {
                                        "type": "array", "minItems": 50, "items": {
                                            "type": "array", "minItems": 50}}},
                                    {"type": "string", "minLength": "ten"},
                                    {"type": "array", "maxItems": -1}])
def test_impossible_schemas_raise(schema: Any) -> None:
    with pytest.raises(SchemaError):
        instance(schema, random.Random(0))
