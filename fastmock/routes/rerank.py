"""POST /v1/rerank (also /rerank, /v2/rerank): Cohere/Jina-style results by lexical overlap.

The score of a document is deterministic: 0.9 times the share of the query's distinct words that
the document contains, plus 0.1 times their Jaccard similarity, so a document that shares words
with the query always ranks above one that shares none (score 0), and an exact match scores 1.
Results are sorted by score, ties by index.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from .. import tokens
from ..frames import JSON_HEADERS
from ..reply import Reply
from ..state import App, Profile
from .common import (
    invalid,
    json_object,
    prepared_route,
    want_bool,
    want_int,
    want_list,
    want_model,
    want_str,
)

if TYPE_CHECKING:
    from typing import Any

_WORD = re.compile(r"\w+")
MAX_DOCUMENTS = 10_000


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def score(query: set[str], doc: set[str]) -> float:
    if not query or not doc:
        return 0.0
    shared = len(query & doc)
    return round(0.9 * shared / len(query) + 0.1 * shared / len(query | doc), 6)


def _documents(body: dict[str, Any]) -> list[str]:
    docs = want_list(body, "documents", "an array of strings or {\"text\": ...} objects",
                     MAX_DOCUMENTS)
    out = []
    for i, doc in enumerate(docs):
        if isinstance(doc, str):
            out.append(doc)
        elif isinstance(doc, dict) and isinstance(doc.get("text"), str):
            out.append(doc["text"])
        else:
            raise invalid(f"Invalid type for 'documents[{i}]': expected a string or an object "
                          "with a 'text' string.", f"documents[{i}]", "invalid_type")
    return out


def prepare(raw: bytes, app: App, fill_to: int | None = None) -> tuple[bytes, Profile, int]:
    body = json_object(raw)
    model, profile = want_model(body, app, "rerank")
    query = want_str(body, "query", required=True)
    assert query is not None
    docs = _documents(body)
    top_n = want_int(body, "top_n", 1, MAX_DOCUMENTS)
    return_documents = want_bool(body, "return_documents", default=False)
    q = words(query)
    ranked = sorted(((score(q, words(d)), i) for i, d in enumerate(docs)),
                    key=lambda si: (-si[0], si[1]))
    if top_n is not None:
        ranked = ranked[:top_n]
    results = []
    for s, i in ranked:
        item: dict[str, Any] = {"index": i, "relevance_score": s}
        if return_documents:
            item["document"] = {"text": docs[i]}
        results.append(item)
    used = tokens.count_cached(query) * max(1, len(docs)) + sum(map(tokens.count_cached, docs))
    # The id is filled in per request; the rest depends on the body only.
    return orjson.dumps({"id": "\0", "model": model, "results": results,
                         "usage": {"prompt_tokens": used, "total_tokens": used},
                         "meta": {"billed_units": {"search_units": 1}}}), profile, used


def render(app: App, prepared: tuple[bytes, Profile, int], ident: bytes) -> Reply:
    body, profile, used = prepared
    return Reply(200, JSON_HEADERS, body.replace(b'"\\u0000"', b'"rerank-%s"' % ident, 1),
                 cacheable=True, model=profile, tokens=used, prompt_tokens=used)


handle = prepared_route("rerank", prepare, render)
