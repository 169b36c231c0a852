"""Everything that becomes bytes on the wire: header sets, error bodies, ids, the ticking clock.

Bodies and SSE frames for canned content are built once per model profile (see ``routes``); this
module holds the pieces they share. Nothing here touches a transport.
"""

from __future__ import annotations

import itertools
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
    """Unique, cheap ids: a per-process random prefix and a counter, no per-request RNG."""

    __slots__ = ("_prefix", "_next")

    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex().encode()
        self._next = itertools.count(1).__next__

    def new(self) -> bytes:
        return b"%s%012x" % (self._prefix, self._next())


IDS = Ids()


#: Stand-in for a per-request id inside precomputed JSON; orjson writes it as \u0000-escapes,
#: which a text only produces if it contains this exact NUL-framed word.
ID_STANDIN = "\0fmid\0"
ID_STANDIN_JSON = orjson.dumps(ID_STANDIN)[1:-1]


def json_reply(status: int, obj: object) -> Reply:
    """A JSON reply for anything not on a hot path (models list, errors)."""
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


def head_block(status: int, headers: tuple[Header, ...]) -> bytes:
    """Status line, headers and the current Date, ending in CRLF (no blank line yet); built
    once per reply shape per Date tick."""
    key = (status, headers)
    found = _head_cache.get(key)
    date = CLOCK.date
    if found is not None and found[0] is date:
        return found[1]
    block = b"HTTP/1.1 %d %s\r\n%sdate: %s\r\n" % (
        status, REASONS.get(status, b""), b"".join(b"%s: %s\r\n" % kv for kv in headers), date)
    if len(_head_cache) >= HEAD_CACHE_LIMIT:
        _head_cache.clear()
    _head_cache[key] = (date, block)
    return block


def whole_response(reply: Reply, body: bytes, close: bool, head_only: bool = False) -> bytes:
    """A whole fixed reply written by hand: the httptools handler's every reply, and the
    replies no handler can frame (a request that could not be read, a refused connection)."""
    tail = b"content-length: %d\r\nconnection: close\r\n\r\n" if close \
        else b"content-length: %d\r\n\r\n"
    head = head_block(reply.status, reply.headers) + tail % len(body)
    return head if head_only else head + body
