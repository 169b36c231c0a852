"""What the Responses API keeps between requests: responses and their input items, and
conversations with their items.

Both are bounded (``max_stored_responses`` of each, the oldest evicted first; at most
``MAX_ITEMS`` items per conversation, the oldest dropped) so that a long load test cannot grow
the server without end. A background response is kept with the moment it will be done: until
then it reads as in progress, after it as completed, with no timer running for it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import orjson

from .errors import invalid
from .frames import CLOCK, IDS

if TYPE_CHECKING:
    from typing import Any

#: Items kept per conversation (the oldest go first).
MAX_ITEMS = 10_000


class StoredResponse:
    """One response: its final object, its input items, and when a background one is done."""

    __slots__ = ("body", "inputs", "pending", "ready_at", "cancelled")

    def __init__(self, body: bytes, inputs: bytes, pending: bytes | None = None,
                 ready_at: float = 0.0) -> None:
        self.body = body            # the response object as it ends
        self.inputs = inputs        # its input items, a JSON array
        #: A background response: the object while it runs, until ``ready_at`` (monotonic).
        self.pending = pending
        self.ready_at = ready_at
        self.cancelled: bytes | None = None

    @property
    def background(self) -> bool:
        return self.pending is not None

    def running(self) -> bool:
        return self.pending is not None and self.cancelled is None \
            and time.monotonic() < self.ready_at

    def current(self) -> bytes:
        """The object as it stands now."""
        if self.cancelled is not None:
            return self.cancelled
        if self.pending is not None and time.monotonic() < self.ready_at:
            return self.pending
        return self.body

    def cancel(self) -> bytes:
        """Stop a running background response: it reads as cancelled from now on."""
        if self.running():
            assert self.pending is not None
            self.cancelled = self.pending.replace(b'"status":"in_progress"',
                                                  b'"status":"cancelled"', 1)
        return self.current()


class Conversation:
    __slots__ = ("id", "created_at", "metadata", "items")

    def __init__(self, conv_id: str, metadata: dict[str, Any]) -> None:
        self.id = conv_id
        self.created_at = CLOCK.unix
        self.metadata = metadata
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def as_json(self) -> bytes:
        return orjson.dumps({"id": self.id, "object": "conversation",
                             "created_at": self.created_at, "metadata": self.metadata})

    def add(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.items[item["id"]] = item
        while len(self.items) > MAX_ITEMS:
            self.items.popitem(last=False)

    def called(self) -> frozenset[str]:
        """The functions called so far in this conversation."""
        return frozenset(item["name"] for item in self.items.values()
                         if item.get("type") == "function_call"
                         and isinstance(item.get("name"), str))


class Store:
    """Responses and conversations, at most ``limit`` of each (0: none kept)."""

    __slots__ = ("limit", "responses", "conversations")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.responses: OrderedDict[bytes, StoredResponse] = OrderedDict()
        self.conversations: OrderedDict[str, Conversation] = OrderedDict()

    def keep_response(self, response_id: bytes, stored: StoredResponse) -> None:
        if self.limit <= 0:
            return
        self.responses[response_id] = stored
        while len(self.responses) > self.limit:
            self.responses.popitem(last=False)

    def conversation(self, conv_id: str) -> Conversation:
        """The conversation ``conv_id``, or the 404 that says it is not there."""
        found = self.conversations.get(conv_id)
        if found is None:
            raise invalid(f"Conversation with id '{conv_id}' not found.", "conversation_id",
                          "not_found", status=404)
        return found

    def new_conversation(self, metadata: dict[str, Any]) -> Conversation:
        conv = Conversation("conv_" + IDS.new().decode(), metadata)
        if self.limit > 0:
            self.conversations[conv.id] = conv
            while len(self.conversations) > self.limit:
                self.conversations.popitem(last=False)
        return conv


def page(items: list[dict[str, Any]], query: dict[str, str], default_order: str = "desc"
         ) -> bytes:
    """A list object of ``items`` (oldest first) as the API pages them: ``order``
    (``asc``/``desc``), ``after`` (an item id), ``limit`` (1 to 100, default 20)."""
    order = query.get("order", default_order)
    if order not in ("asc", "desc"):
        raise invalid(f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                      "order", "invalid_value")
    raw_limit = query.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise invalid(f"Invalid 'limit': {raw_limit}; it must be an integer between 1 and 100.",
                      "limit", "integer_out_of_range")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after is not None:
        at = next((i for i, item in enumerate(ordered) if item.get("id") == after), None)
        if at is None:
            raise invalid(f"No item with id '{after}' to list after.", "after", "invalid_value")
        ordered = ordered[at + 1:]
    data = ordered[:int(raw_limit)]
    return list_object(data, len(ordered) > len(data))


def list_object(data: list[dict[str, Any]], has_more: bool = False) -> bytes:
    """Items as the API lists them (``first_id``, ``last_id``, ``has_more``)."""
    return orjson.dumps({"object": "list", "data": data,
                         "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None, "has_more": has_more})


#: The id prefix of an item, by its type.
_ITEM_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco",
                "reasoning": "rs"}


def as_items(value: Any, ident: str) -> list[dict[str, Any]]:
    """Input items (validated) as the API lists them: each with an id (``<prefix>_<ident>_<k>``
    where the client gave none) and a status, a message's text as a list of content parts."""
    if isinstance(value, str):
        value = [{"role": "user", "content": value}]
    out = []
    for k, given in enumerate(value):
        item = dict(given)
        kind = item.setdefault("type", "message")
        item.setdefault("id", f"{_ITEM_PREFIX.get(kind, 'item')}_{ident}_{k}")
        if kind == "message":
            text = item.get("content")
            if isinstance(text, str):
                assistant = item.get("role") == "assistant"
                part: dict[str, Any] = {"type": "output_text" if assistant else "input_text",
                                        "text": text}
                if assistant:
                    part["annotations"] = []
                item["content"] = [part]
        if kind in ("message", "function_call", "function_call_output"):
            item.setdefault("status", "completed")
        out.append(item)
    return out
