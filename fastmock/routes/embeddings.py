"""POST /v1/embeddings: deterministic unit vectors, as JSON floats or base64 float32.

A vector is a pure function of (model, input): SHAKE-256 of both gives 16-bit integers, which
are centred, normalised to unit length and rounded to float32, so the float and base64
encodings carry the same numbers, and the same input gives the same vector on every run and
machine. ``dimensions`` truncates the model's vector and normalises it again (as OpenAI's
text-embedding-3 models do). Vectors are remembered per (model, size, input), bounded.
"""

from __future__ import annotations

import base64
import math
from array import array
from typing import TYPE_CHECKING

import orjson

from ..frames import JSON_HEADERS
from ..reply import Reply
from ..state import App, Profile
from .common import (
    invalid,
    json_object,
    prepared_route,
    text_inputs,
    want_int,
    want_model,
    want_str,
)

if TYPE_CHECKING:
    from typing import Any

MAX_INPUTS = 2048
MAX_DIMENSIONS = 16384
_VECTORS: dict[tuple[str, int, str], array[float]] = {}
_VECTORS_LIMIT = 4096


def vector(model: str, text: str, size: int, dimensions: int) -> array[float]:
    """The unit vector of ``text`` for ``model`` (``size`` wide), cut to ``dimensions``."""
    key = (model, dimensions, text)
    found = _VECTORS.get(key)
    if found is not None:
        return found
    import hashlib  # only for embeddings (it costs a server start ~2 ms)

    raw = array("H", hashlib.shake_256(f"{model}\0{text}".encode()).digest(size * 2))
    values = [v - 32767.5 for v in raw[:dimensions]]
    norm = math.sqrt(math.fsum(v * v for v in values)) or 1.0
    out = array("f", [v / norm for v in values])
    if len(_VECTORS) >= _VECTORS_LIMIT:
        _VECTORS.clear()
    _VECTORS[key] = out
    return out


class Prepared:
    __slots__ = ("body", "profile", "tokens")

    def __init__(self, body: bytes, profile: Profile, tokens: int) -> None:
        self.body = body
        self.profile = profile
        self.tokens = tokens


def prepare(raw: bytes, app: App, fill_to: int | None = None) -> Prepared:
    body = json_object(raw)
    model, profile = want_model(body, app, "embeddings")
    size = profile.embedding_dimensions
    dimensions = want_int(body, "dimensions", 1, MAX_DIMENSIONS)
    if dimensions is not None and dimensions > size:
        raise invalid(f"This model's embeddings have {size} dimensions; 'dimensions' must be "
                      f"at most {size}, not {dimensions}.", "dimensions", "invalid_value")
    encoding = want_str(body, "encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise invalid(f"Invalid value: '{encoding}'. Supported values are: 'float' and "
                      "'base64'.", "encoding_format", "invalid_value")
    inputs = text_inputs(body, "input", MAX_INPUTS, allow_empty=False)
    want = dimensions or size
    data = []
    used = 0
    for index, (text, count, _) in enumerate(inputs):
        vec = vector(model, text, size, want)
        used += count
        embedding: Any = base64.b64encode(vec.tobytes()).decode() if encoding == "base64" \
            else vec.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    out = orjson.dumps({"object": "list", "data": data, "model": model,
                        "usage": {"prompt_tokens": used, "total_tokens": used}})
    return Prepared(out, profile, used)


def render(app: App, p: Prepared, ident: bytes) -> Reply:
    return Reply(200, JSON_HEADERS, p.body, cacheable=True, model=p.profile, tokens=p.tokens,
                 prompt_tokens=p.tokens)


handle = prepared_route("embeddings", prepare, render)
