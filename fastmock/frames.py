"""Everything that becomes bytes on the wire: header sets, error bodies, ids, the ticking clock.

Bodies and SSE frames for canned content are built once per model profile (see ``routes``); this
module holds the pieces they share. Nothing here touches a transport.
"""

from __future__ import annotations

import os
import time

import orjson

from .reply import Header, Reply

SERVER = (b"server", b"fastmock")

JSON_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"application/json"),
    SERVER,
)

SSE_HEADERS: tuple[Header, ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tell nginx-style proxies in front of us not to buffer the stream.
    (b"x-accel-buffering", b"no"),
    SERVER,
)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(now: float) -> bytes:
    """RFC 9110 IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT`` (no email.utils import)."""
    t = time.gmtime(now)
    return b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


class Clock:
    """Wall-clock values that change once a second: the Date header and ``created``.

    The server calls :meth:`tick` once a second (uvicorn's ``on_tick``), so no response
    formats a date or reads the wall clock.
    """

    __slots__ = ("date", "unix", "unix_bytes")

    def __init__(self) -> None:
        self.date = b""
        self.unix = 0
        self.unix_bytes = b"0"
        self.tick()

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        self.unix = int(now)
        self.unix_bytes = b"%d" % self.unix
        self.date = http_date(now)


CLOCK = Clock()


class Ids:
    """Unique, cheap ids: a 64-bit counter from a random start, as 16 hex digits.

    The start differs per process (so ids of several processes or runs do not collide in
    practice) and the counter makes them unique. They are made 4096 at a time, in C: a batch
    shares its first 13 digits, so it is the 4096 three-digit endings with those digits put
    before each, split apart (a third of the cost of formatting 4096 numbers; taking one id
    costs a tenth of formatting it).
    """

    __slots__ = ("_next", "_batch", "_endings", "take")

    BATCH = 4096

    def __init__(self) -> None:
        # a whole batch's worth of endings at a time; 2**63 ids before the width grows
        self._next = int.from_bytes(os.urandom(8)) >> 13
        self._batch: list[bytes] = []
        #: The endings, each but the first after a space and a NUL byte that the prefix
        #: replaces (made at the first refill: 20 kB that an idle server does not need).
        self._endings = b""
        #: The next id, or IndexError when the batch is used up (then call ``refill``).
        self.take = self._batch.pop

    def refill(self) -> bytes:
        """Make the next batch and return its first id."""
        if not self._endings:
            self._endings = b" \0".join(b"%03x" % i for i in range(self.BATCH))
        prefix = b"%013x" % self._next
        self._next += 1
        batch = (prefix + self._endings.replace(b"\0", prefix)).split()
        batch.reverse()
        self._batch[:] = batch
        return self.take()

    def new(self) -> bytes:
        """16 hex digits, always (the width of ``ID_MARK``)."""
        try:
            return self.take()
        except IndexError:
            return self.refill()


IDS = Ids()

#: Where a request's id goes in a reply's bytes. It has the id's width, so lengths (and
#: Content-Length) do not change when the id is spliced in, and it cannot occur anywhere
#: else: every body is JSON from orjson, which writes a NUL as an escape, and heads hold no NUL.
ID_MARK = b"\0" * 16

#: Stand-in for the id inside JSON built by orjson (which escapes it); routes turn it into
#: the id (or ``ID_MARK``) with one ``bytes.replace``.
ID_STANDIN = "\0fmid\0"
ID_STANDIN_JSON = orjson.dumps(ID_STANDIN)[1:-1]


def json_reply(status: int, obj: object) -> Reply:
    """A JSON reply for anything not on a hot path (admin answers, counters)."""
    return Reply(status, JSON_HEADERS, orjson.dumps(obj))


def error_body(message: str, type_: str, param: str | None = None,
               code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": param,
                                   "code": code}})


def error_reply(status: int, message: str, type_: str = "invalid_request_error",
                param: str | None = None, code: str | None = None,
                extra: tuple[Header, ...] = ()) -> Reply:
    """An OpenAI-style error: ``{"error": {"message", "type", "param", "code"}}``."""
    return Reply(status, JSON_HEADERS + extra, error_body(message, type_, param, code))


REASONS: dict[int, bytes] = {
    100: b"Continue", 200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found",
    405: b"Method Not Allowed", 408: b"Request Timeout", 413: b"Content Too Large",
    429: b"Too Many Requests", 431: b"Request Header Fields Too Large",
    500: b"Internal Server Error", 501: b"Not Implemented", 503: b"Service Unavailable",
}


#: Distinct (status, headers) heads kept; replies use a handful, errors a few more.
HEAD_CACHE_LIMIT = 256
_head_cache: dict[tuple[int, tuple[Header, ...]], tuple[bytes, bytes]] = {}


#: ``x-fastmock-instance: <id>/<worker>`` and its CRLF, in every reply of a server that says
#: which instance answered (set once at startup; see ``set_instance``).
INSTANCE_LINE = b""


def set_instance(name: str | None) -> None:
    """Say ``name`` in every reply from now on (None: say nothing)."""
    global INSTANCE_LINE
    INSTANCE_LINE = b"" if name is None else b"x-fastmock-instance: %s\r\n" % name.encode()
    _head_cache.clear()


def head_block(status: int, headers: tuple[Header, ...]) -> bytes:
    """Status line, headers and the current Date, ending in CRLF (no blank line yet); built
    once per reply shape per Date tick."""
    key = (status, headers)
    found = _head_cache.get(key)
    date = CLOCK.date
    if found is not None and found[0] is date:
        return found[1]
    block = b"HTTP/1.1 %d %s\r\n%s%sdate: %s\r\n" % (
        status, REASONS.get(status, b""), b"".join(b"%s: %s\r\n" % kv for kv in headers),
        INSTANCE_LINE, date)
    if len(_head_cache) >= HEAD_CACHE_LIMIT:
        _head_cache.clear()
    _head_cache[key] = (date, block)
    return block


#: The headers every reply to a request carries (OpenAI's): the request's id, the same as in
#: the body, and the time the server took before answering (filled in for delayed replies).
REQUEST_LINES = b"x-request-id: req_%s\r\nopenai-processing-ms: 0\r\n" % ID_MARK
PROCESSING_ZERO = b"openai-processing-ms: 0\r\n"


def whole_response(reply: Reply, body: bytes, close: bool, head_only: bool = False,
                   request: bool = False) -> bytes:
    """A whole fixed reply: status line, headers, Content-Length and the body; with the
    per-request headers (``REQUEST_LINES``) for a reply to a request."""
    tail = b"content-length: %d\r\nconnection: close\r\n\r\n" if close \
        else b"content-length: %d\r\n\r\n"
    head = head_block(reply.status, reply.headers) + (REQUEST_LINES if request else b"") \
        + tail % len(body)
    return head if head_only else head + body


def stream_head(reply: Reply, close: bool, http10: bool, head_only: bool) -> bytes:
    """The head of a streamed reply: chunked, or for HTTP/1.0 ended by closing (RFC 9112 6.3)."""
    head = head_block(reply.status, reply.headers) + REQUEST_LINES
    if http10 or (close and head_only):
        return head + b"connection: close\r\n\r\n"
    if head_only:
        return head + b"\r\n"
    tail = b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n" if close \
        else b"transfer-encoding: chunked\r\n\r\n"
    return head + tail


CHUNK_END = b"0\r\n\r\n"

#: The message of an error that befalls a stream (OpenAI's for a 500).
STREAM_ERROR = "The server had an error while processing your request. Sorry about that!"
#: How chat and completions streams end on an error: an error object, and no [DONE].
CHUNKS_ERROR = b"data: %s\n\n" % orjson.dumps(
    {"error": {"message": STREAM_ERROR, "type": "server_error", "param": None, "code": None}})
#: Where an event's sequence number goes in an error tail (the Responses API numbers its
#: events; the error comes after however many were sent).
SEQ_MARK = b"\0seq\0"


def error_tail(tail: bytes, sent: list[bytes]) -> bytes:
    """An error tail with its events numbered after the events in ``sent``."""
    if SEQ_MARK not in tail:
        return tail
    seq = sum(step.count(b"\nevent: ") + step.startswith(b"event: ") for step in sent)
    pieces = tail.split(SEQ_MARK)
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:]):
        out.append(b"%d" % (seq + i))
        out.append(piece)
    return b"".join(out)


def stream_steps(steps: list[bytes], http10: bool, head_only: bool) -> list[bytes]:
    """Each step as it goes on the wire: a chunk (the last one followed by the end of the
    chunked body), or as it is on an HTTP/1.0 connection, or nothing after a HEAD."""
    if head_only:
        return [b"" for _ in steps]
    if http10:
        return steps
    out = [b"%x\r\n%s\r\n" % (len(s), s) if s else b"" for s in steps]
    out[-1] += CHUNK_END
    return out
