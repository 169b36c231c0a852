"""/v1/conversations: conversations and their items, as the Agents SDK's
``OpenAIConversationsSession`` and ``conversation_id`` use them (kept in ``store``).

A response created with ``conversation`` adds its input and output items to it (see
``responses``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from ..frames import IDS, JSON_HEADERS
from ..reply import Reply
from ..store import Conversation, as_items, list_object, page
from .common import Request, invalid, json_object, query, want_dict
from .responses import read_input

if TYPE_CHECKING:
    from typing import Any

    from ..state import App

#: Items one request may add, and metadata pairs a conversation may carry (as the API).
MAX_NEW_ITEMS = 20
MAX_METADATA = 16


def _body(req: Request) -> dict[str, Any]:
    return json_object(req.body) if req.body.strip() else {}


def _metadata(body: dict[str, Any]) -> dict[str, Any] | None:
    metadata = want_dict(body, "metadata")
    if metadata is not None and (len(metadata) > MAX_METADATA or not all(
            isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items())):
        raise invalid(f"Invalid 'metadata': at most {MAX_METADATA} pairs of a key of up to 64 "
                      "characters and a string value of up to 512.", "metadata",
                      "invalid_value")
    return metadata


def _items(body: dict[str, Any], required: bool) -> list[dict[str, Any]]:
    items = body.get("items")
    if items is None and not required:
        return []
    if not isinstance(items, list):
        raise invalid("Invalid type for 'items': expected an array of items." if items is
                      not None else "Missing required parameter: 'items'.", "items",
                      "invalid_type" if items is not None else "missing_required_parameter")
    if len(items) > MAX_NEW_ITEMS:
        raise invalid(f"'items' has {len(items)} items; at most {MAX_NEW_ITEMS} are allowed.",
                      "items", "array_above_max_length")
    if not items:
        return []
    read_input(body, "items")   # the same checks as a response's input
    return as_items(items, IDS.new().decode())


def create(req: Request, app: App) -> Reply:
    """POST /v1/conversations."""
    body = _body(req)
    items = _items(body, required=False)
    conv = app.store.new_conversation(_metadata(body) or {})
    conv.add(items)
    return Reply(200, JSON_HEADERS, conv.as_json())


def _parts(req: Request, app: App, rest: str) -> tuple[Conversation, str, str | None]:
    """The conversation named by the path, what follows it (``""`` or ``items``), and an item
    id when there is one."""
    conv_id, _, tail = rest.partition("/")
    conv = app.store.conversation(conv_id)
    section, _, item_id = tail.partition("/")
    if section not in ("", "items") or (section == "" and item_id):
        raise invalid(f"Invalid URL ({req.method.decode('latin-1')} "
                      f"{req.target.decode('latin-1')})", status=404)
    return conv, section, item_id or None


def _item(conv: Conversation, item_id: str) -> dict[str, Any]:
    item = conv.items.get(item_id)
    if item is None:
        raise invalid(f"Item with id '{item_id}' not found in conversation '{conv.id}'.",
                      "item_id", "not_found", status=404)
    return item


def read(req: Request, app: App, rest: str) -> Reply:
    """GET a conversation, its items (paged), or one item."""
    conv, section, item_id = _parts(req, app, rest)
    if not section:
        return Reply(200, JSON_HEADERS, conv.as_json())
    if item_id is not None:
        return Reply(200, JSON_HEADERS, orjson.dumps(_item(conv, item_id)))
    return Reply(200, JSON_HEADERS, page(list(conv.items.values()), query(req)))


def write(req: Request, app: App, rest: str) -> Reply:
    """POST a conversation (its metadata) or items to it."""
    conv, section, item_id = _parts(req, app, rest)
    body = _body(req)
    if not section:
        metadata = _metadata(body)
        if metadata is None:
            raise invalid("Missing required parameter: 'metadata'.", "metadata",
                          "missing_required_parameter")
        conv.metadata = metadata
        return Reply(200, JSON_HEADERS, conv.as_json())
    if item_id is not None:
        raise invalid(f"Invalid URL ({req.method.decode('latin-1')} "
                      f"{req.target.decode('latin-1')})", status=404)
    items = _items(body, required=True)
    conv.add(items)
    return Reply(200, JSON_HEADERS, list_object(items))


def delete(req: Request, app: App, rest: str) -> Reply:
    """DELETE a conversation, or one of its items (answered with the conversation)."""
    conv, section, item_id = _parts(req, app, rest)
    if not section:
        del app.store.conversations[conv.id]
        return Reply(200, JSON_HEADERS, orjson.dumps(
            {"id": conv.id, "object": "conversation.deleted", "deleted": True}))
    if item_id is None:
        raise invalid(f"Invalid URL ({req.method.decode('latin-1')} "
                      f"{req.target.decode('latin-1')})", status=404)
    _item(conv, item_id)
    del conv.items[item_id]
    return Reply(200, JSON_HEADERS, conv.as_json())
