"""Replies framed for the wire with the id left out, kept to answer the same request again.

A load test sends the same few requests again and again. The reply to a request is a pure
function of its method, target and body (given the models and the clock's second), so once a
reply has been framed, with ``ID_MARK`` where the request's id goes, it is kept as the parts
between the marks: the next identical request costs one dict lookup and ``ident.join(parts)``.
Kept replies are rebuilt when the Date header's second changes (the ``created`` field and the
Date header are the only other things that vary), and dropped whenever the models or the
settings change.

Only replies on a keep-alive HTTP/1.1 connection, to requests with no header that changes the
answer, are kept; every other reply is framed the same way but used once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from . import tokens
from .frames import CLOCK, ID_MARK, stream_head, stream_steps, whole_response
from .reply import Prompt, Reply

if TYPE_CHECKING:
    from .reply import Pace
    from .routes.common import Request
    from .trouble import Trouble

#: What a reply does when a request arrives: go out at once (a whole reply, or a stream that
#: has nothing to wait for), be paced step by step, or go out whole after a delay.
NOW, STREAM, DELAYED = 0, 1, 2

#: Requests whose replies are kept, per server, and the largest body such a request may have.
READY_LIMIT = 1024
READY_MAX_BODY = 16 * 1024

Parts = tuple[bytes, ...]


def parts(data: bytes) -> Parts:
    return tuple(data.split(ID_MARK))


class Ready:
    """One reply framed for one kind of connection; ``ident.join(part)`` gives the bytes."""

    __slots__ = ("kind", "now", "steps", "pace", "wait_steps", "after", "close", "date", "req",
                 "open", "status", "model", "tokens", "prompt_tokens", "error_step", "chunked",
                 "limited_as", "credit", "spliced", "_cut", "whole_steps", "label", "trouble",
                 "gate")

    def __init__(self, req: Request, reply: Reply, close: bool, http10: bool, head_only: bool,
                 open_: bool) -> None:
        self.req = req
        self.open = open_
        #: (route, model, status), for the metrics (set when first counted).
        self.label: tuple[str, str, int] | None = None
        #: The server's trouble when this reply was kept (``keep``), and whether a replay of
        #: it must go through it: the same, but None while the rate limits have lent it
        #: parts with their header lines for the rest of a turn (``trouble.Limits.grant``).
        self.trouble: Trouble | None = None
        self.gate: Trouble | None = None
        self.close = close or http10
        self.chunked = not (http10 or head_only)
        self.frame(reply, http10, head_only)

    def frame(self, reply: Reply, http10: bool = False, head_only: bool = False) -> None:
        self.status = reply.status
        self.after = reply.after
        self.pace: Pace | None = reply.pace
        self.wait_steps = reply.wait_steps
        self.model = reply.model
        #: The model whose rate limits a reply that goes out at once counts against (None:
        #: not a model's reply, or an error, or a reply that waits).
        self.limited_as: str | None = None
        #: Rate limits counted by model: how many more times this reply may go out in this
        #: turn of the loop without asking the buckets, and its parts with their header
        #: lines (see ``trouble.Pair``).
        self.credit = 0
        self.spliced: Parts = ()
        self.gate = self.trouble
        self.tokens = reply.tokens
        self.prompt_tokens = reply.prompt_tokens
        #: A stream's error event, unframed (it is numbered and framed when used).
        self.error_step = reply.error_step
        self.date = CLOCK.date
        self.steps: list[Parts] | None = None
        self._cut: tuple[bytes, Parts] | None = None
        #: A stream with nothing to wait for, sent whole: its steps (counted in /stats).
        self.whole_steps = 0
        pace = reply.pace
        if reply.steps is None:
            self.kind = DELAYED if pace is not None and pace.delay(reply.wait_steps) > 0 \
                else NOW
            self.now = parts(whole_response(reply, reply.body, self.close, head_only, True))
            if self.kind is NOW and reply.model is not None and reply.status == 200:
                self.limited_as = reply.model.spec.id
            return
        head = stream_head(reply, self.close, http10, head_only)
        steps = stream_steps(reply.steps, http10, head_only)
        if pace is None or not pace.paced:
            self.kind = NOW
            self.now = parts(head + b"".join(steps))
            self.whole_steps = len(steps)
            if reply.model is not None and reply.status == 200:
                self.limited_as = reply.model.spec.id
        else:
            self.kind = STREAM
            self.now = parts(head)
            self.steps = [parts(s) for s in steps]

    def keep(self, trouble: Trouble | None) -> None:
        """This reply is kept to be replayed on a server with (or without) ``trouble``."""
        self.trouble = self.gate = trouble

    def cut(self) -> tuple[bytes, Parts]:
        """The head of ``now`` up to the per-request headers, and the rest as parts: where a
        reply's own header lines (rate limits) go."""
        if self._cut is None:
            whole = ID_MARK.join(self.now)
            at = whole.index(b"x-request-id: ")
            self._cut = (whole[:at], parts(whole[at:]))
        return self._cut

    def refresh(self, reply: Reply) -> bool:
        """Frame the reply again for a new second; False if it may no longer be kept."""
        if not reply.cacheable:
            return False
        self.frame(reply)
        return True


# -- requests that differ only in their last message's text ---------------------------------

#: How a chat body names a message's text (``"content":"`` compact, ``"content": "`` as
#: json.dumps spaces it).
CONTENT = b'"content":'


def plain_text(raw: bytes) -> str | None:
    """The text of a JSON string's raw bytes when they are the text as it is: None when they
    hold an escape, a control character (which JSON forbids in a string; such requests go the
    long way, to be refused there) or anything else that is not printable, or are not UTF-8."""
    if b"\\" in raw:
        return None
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


_PROBE = "fastmock shape probe 0x5eed"
_USAGE = b'"usage":{"prompt_tokens":'
SHAPES_LIMIT = 256


def text_span(body: bytes) -> tuple[int, int] | None:
    """Where the value of the last ``"content"`` key sits in a JSON body, between its quotes."""
    i = body.rfind(CONTENT)
    if i < 0:
        return None
    start = i + len(CONTENT)
    if body.startswith(b'"', start):
        end = body.find(b'"', start + 1)
    elif body.startswith(b' "', start):
        start += 1
        end = body.find(b'"', start + 1)
    else:
        return None
    return (start + 1, end) if end > 0 else None


class Shape:
    """The reply to every request that is a seen one but for its last message's text:
    the kept reply's bytes, cut where the id and the two prompt-dependent usage numbers go
    (``prompt_tokens`` and ``total_tokens``), or as they are when they carry no usage."""

    __slots__ = ("ready", "prompt", "date", "head", "before", "middle", "after", "lead",
                 "lead_tokens", "by_tail")

    def __init__(self, ready: Ready, prompt: Prompt) -> None:
        self.ready = ready
        self.prompt = prompt
        #: The learned text up to its last space (as the body holds it) and its tokens: a
        #: load test's new texts usually begin with it (a fixed prompt, then a counter), and
        #: a space always begins a token, so only the rest needs counting.
        cut = prompt.text.rfind(" ")
        lead = prompt.text[:cut] if cut > 0 else '"'   # (no text in a body starts with '"')
        self.lead = lead.encode()
        self.lead_tokens = tokens.count(lead)
        #: The replies (as parts) by the classes of the characters after ``lead`` (see
        #: ``_TAIL_CLASSES``): a counter's " 1234." and " 5678." are " 0000." both, and
        #: have as many tokens.
        self.by_tail: dict[bytes, tuple[Parts, int]] = {}
        self.cut()

    def cut(self) -> None:
        """Cut the kept reply (again, after a new second) at the usage numbers."""
        ready = self.ready
        self.date = ready.date
        self.by_tail.clear()
        if not self.prompt.usage:
            return
        wire = ID_MARK.join(ready.now)
        head_end = wire.index(b"\r\n\r\n") + 4
        body = wire[head_end:]
        prompt = self.prompt
        total = prompt.others + tokens.count_cached(prompt.text)
        anchor = _USAGE + b'%d,"completion_tokens":%d,"total_tokens":%d' % (
            total, prompt.completion, total + prompt.completion)
        at = body.rindex(anchor) + len(_USAGE)
        self.head = ID_MARK.join(parts(wire[:wire.rindex(b"content-length: ", 0, head_end)]))
        self.before = body[:at]
        self.middle = b',"completion_tokens":%d,"total_tokens":' % prompt.completion
        self.after = body[at + len(anchor) - len(_USAGE):]

    def reply(self, raw: bytes) -> tuple[Parts, int] | None:
        """The reply (``ident.join`` it) for a last message whose text is ``raw`` in the
        body, and its prompt tokens; None: not a text taken as it is (see ``plain_text``)."""
        lead = self.lead
        if raw.startswith(lead):
            tail = raw[len(lead):].translate(_TAIL_CLASSES)
            kept = self.by_tail.get(tail)
            if kept is not None:
                return kept
            if tail[:1] == b" " and b"\0" not in tail:
                count = self.prompt.others + self.lead_tokens + tokens.count(tail.decode())
                kept = (self._with(count), count)
                if len(self.by_tail) >= TAILS_LIMIT:
                    self.by_tail.clear()
                self.by_tail[tail] = kept
                return kept
        text = plain_text(raw)
        if text is None:
            return None
        count = self.prompt.others + tokens.count_by_head(text)
        return self._with(count), count

    def _with(self, tokens_in: int) -> Parts:
        """The reply with ``tokens_in`` prompt tokens."""
        body = b"%s%d%s%d%s" % (self.before, tokens_in, self.middle,
                                tokens_in + self.prompt.completion, self.after)
        return parts(b"%scontent-length: %d\r\n\r\n%s" % (self.head, len(body), body))


#: A text's bytes after a shape's lead, to what its tokens depend on: ASCII letters to ``a``,
#: digits to ``0``, the space as it is, other printable ASCII to ``.``; what ``plain_text``
#: would look at more closely (escapes, controls, other bytes) to NUL.
_TAIL_CLASSES = bytes(
    ord("a") if chr(c).isascii() and chr(c).isalpha()
    else ord("0") if chr(c).isdigit() and c < 128
    else c if c == 32
    else ord(".") if 32 < c < 127 and c != 92
    else 0 for c in range(256))
#: Replies kept per shape, by the classes of their tails.
TAILS_LIMIT = 64


class Shapes:
    """Kept replies for requests that differ from a seen one only in the last message's text,
    keyed by (method, target, the body before that text, the body after it).

    A shape is learned from a reply marked ``prompt`` (the route found it depends on that text
    only through its token count), after checking with a parse that the cut is exactly the
    last message's text. A request that matches one costs a search for the last ``"content"``
    and a token count of its text: no JSON is parsed, as the rest of its bytes are those of a
    body that was.
    """

    __slots__ = ("table", "_seen")

    def __init__(self) -> None:
        self.table: dict[tuple[bytes, bytes, bytes, bytes], Shape] = {}
        #: Shapes seen once: one is learned when seen again (so that bodies that vary
        #: elsewhere never pay for the check).
        self._seen: set[tuple[bytes, bytes, bytes, bytes]] = set()

    def clear(self) -> None:
        self.table.clear()
        self._seen.clear()

    def learn(self, method: bytes, target: bytes, body: bytes, ready: Ready,
              prompt: Prompt) -> None:
        if ready.kind is DELAYED or (prompt.usage and ready.kind is not NOW):
            return
        span = text_span(body)
        if span is None:
            return
        start, end = span
        key = (method, target, body[:start], body[end:])
        if key in self.table:
            return
        if key not in self._seen:
            if len(self._seen) >= SHAPES_LIMIT:
                self._seen.clear()
            self._seen.add(key)
            return
        if plain_text(body[start:end]) != prompt.text:
            return
        try:   # the cut must be the last message's text, and nothing else
            probe = orjson.loads(body[:start] + _PROBE.encode() + body[end:])
            original = orjson.loads(body)
            messages = probe["messages"]
            if messages[-1]["content"] != _PROBE:
                return
            messages[-1]["content"] = prompt.text
            if probe != original:
                return
        except (orjson.JSONDecodeError, KeyError, TypeError, IndexError):
            return
        if len(self.table) >= SHAPES_LIMIT:
            self.table.clear()
        self.table[key] = Shape(ready, prompt)

    def find(self, method: bytes, target: bytes, body: bytes) -> tuple[Shape, bytes] | None:
        """The shape of this request and its last message's text as the body holds it (see
        ``Shape.reply``), if one is kept."""
        # text_span, inline: this runs for every request that is not an exact replay.
        i = body.rfind(CONTENT)
        if i < 0:
            return None
        start = i + len(CONTENT) + 1
        if body[start - 1] != 34:   # '"'
            if body[start - 1] != 32 or body[start] != 34:   # '"content": "' (json.dumps)
                return None
            start += 1
        end = body.find(b'"', start)
        if end < 0:
            return None
        shape = self.table.get((method, target, body[:start], body[end:]))
        if shape is None:
            return None
        return shape, body[start:end]
