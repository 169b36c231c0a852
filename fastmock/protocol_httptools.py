"""The fast HTTP/1.1 parser: httptools (llhttp, in C) parses, ``BaseProtocol`` answers.

llhttp calls back for every piece of a request; each callback does as little as it can, and
a complete request goes to :meth:`BaseProtocol.request` at once, from inside the parser
(pipelined requests behind a paced reply are queued there, in order). A parse error is
answered in its turn, after the good requests before it, and the connection closes.
"""

from __future__ import annotations

import httptools

from .headers import CONNECTION, EXPECT, KEY, LENGTH, OTHER
from .protocol import BaseProtocol
from .reply import Header
from .scheduler import Scheduler
from .state import IDLE, App, Connections

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

#: The headers of a request that has none we act on: shared, never appended to.
NO_HEADERS: list[Header] = []


class _Stop(Exception):
    """Raised inside a parser callback to stop parsing; the reason is in ``_error``."""


class HttpToolsProtocol(BaseProtocol):
    """One client connection, parsed by httptools."""

    __slots__ = (
        # per connection; llhttp hands over the URL, headers and body to C methods of these
        "parser", "_table", "_quiet", "_stopped", "_url_parts", "_fields", "_items", "_parts",
        "on_url", "on_header", "on_body", "_max_fields", "_max_head", "_max_body", "_v11",
        "_keys", "_key_name",
        # per request being parsed
        "_read_size", "_raw_head", "_in_head", "_key", "_headers", "_connection", "_error",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        super().__init__(app, scheduler, connections)
        self._table = app.headers
        self._quiet = app.headers.quiet
        self._stopped = False
        # llhttp hands over a request piece by piece through callbacks. The URL, the header
        # fields and the body are kept by C methods of these containers (``list.append``,
        # ``dict.setdefault``), so no Python code runs per piece; they are per connection
        # and emptied per request. A repeated header name keeps its first value (as the key
        # lookup does) and counts once toward the head limits.
        self._url_parts: list[bytes] = []
        self._fields: dict[bytes, bytes] = {}
        self._items = self._fields.items()   # (a live view)
        self._parts: list[bytes] = []
        self.on_url = self._url_parts.append
        self.on_header = self._fields.setdefault
        self.on_body = self._parts.append
        config = app.config
        self._max_fields = config.max_headers
        self._max_head = config.max_header_bytes
        self._max_body = config.max_body_bytes
        #: The client has shown it speaks HTTP/1.1 (see on_message_complete).
        self._v11 = False
        self._keys = app.keys
        #: How this client spells the header that carries its API key (learned when read).
        self._key_name = b"authorization"
        self._read_size = 0
        self._raw_head = 0
        self._in_head = False
        self._key: Header | None = None
        self._headers: list[Header] = NO_HEADERS
        self._connection = False
        self._error: tuple[int, str] | None = None
        self.parser = httptools.HttpRequestParser(self)   # reads the callbacks above

    # -- transport callbacks -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; complete requests are answered as they are parsed."""
        if self._stopped or self.transport is None:
            return
        self._read_size = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The bytes after an Upgrade request are not HTTP: answer it, then close.
            self._stopped = self._eof = True
            if self.stream is None and not self._queue:
                self._close()
        except httptools.HttpParserError as exc:
            self._stopped = True
            self.request_error(*(self._error or (400, str(exc) or "malformed request")))
        else:
            if self.in_message:
                self._partial()
        if self.in_message or self.waiting is not IDLE:
            self.settle()

    def _partial(self) -> None:
        """Part of a request is buffered: bound what llhttp and we hold for it; once its head
        is complete, read it (a body still to come may be refused by its Content-Length,
        and the client may wait for ``100 Continue``)."""
        if self._in_head:
            # llhttp has no head limit and httptools buffers a header until it ends; this
            # coarse guard (it may count a previous request's tail) bounds that buffer.
            self._raw_head += self._read_size
            if self._raw_head > 2 * self._max_head + 65536:
                self._stopped = True
                self.request_error(*self.head_too_large(self._raw_head))
            return
        try:
            if self._fields:
                self._read_head(partial=True)
        except _Stop:
            self._stopped = True
            assert self._error is not None
            self.request_error(*self._error)
            return
        if sum(map(len, self._parts)) > self._max_body:
            self._stopped = True   # a chunked body (a Content-Length was checked before)
            self.request_error(*self.body_too_large())

    def _parser_eof(self) -> None:
        self._stopped = True

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_message = self._in_head = True
        self._raw_head = 0

    def on_headers_complete(self) -> None:
        self._in_head = False

    def _read_head(self, partial: bool) -> None:
        """Check the head's limits and read the headers that matter, then forget the fields;
        raise ``_Stop`` with ``_error`` set to refuse the request. ``partial``: the body is
        still to come (Content-Length and Expect matter)."""
        fields = self._fields
        if len(fields) > self._max_fields or self._raw_head + self._read_size > self._max_head:
            # The bytes read could hold an oversized head: measure it.
            if len(fields) > self._max_fields:
                self._error = self.too_many_headers(len(fields))
                raise _Stop
            size = sum(map(len, fields)) + sum(map(len, fields.values())) + 4 * len(fields) \
                + sum(map(len, self._url_parts)) + 16
            if size > self._max_head:
                self._error = self.head_too_large(size)
                raise _Stop
        if partial or not fields.keys() <= self._quiet:
            table = self._table
            for name, value in fields.items():
                kind = table.kinds.get(name)
                if kind is None:
                    kind = table.classify(name)
                if kind:
                    self._header(kind, name, value, partial)
        elif self._keys.read:
            # Only quiet names. The key this connection sent last (as sent: see
            # BaseProtocol.known), else the spelling it used last; else every field is looked
            # at (and the spelling learned).
            if self.known in self._items:  # type: ignore[operator]  # (None is in no dict)
                self._key = self.known
            else:
                found = fields.get(self._key_name)
                if found is not None:
                    self._key = (self._key_name, found)
                else:
                    kinds = self._table.kinds
                    for name, value in fields.items():
                        if kinds.get(name) is KEY:
                            self._header(KEY, name, value, partial)
                            break
        fields.clear()

    def _header(self, kind: int, name: bytes, value: bytes, partial: bool) -> None:
        if kind is KEY:
            if self._key is None:
                self._key = (name, value)   # as sent: see KeyRing.remember
                self._key_name = name
        elif kind is OTHER:
            if self._headers is NO_HEADERS:
                self._headers = []
            self._headers.append((name.lower(), value))
        elif kind is CONNECTION:
            self._connection = True
        elif not partial:
            return
        elif kind is LENGTH:
            if len(value) > 18 or int(value) > self._max_body:
                self._error = self.body_too_large()
                raise _Stop
        elif kind is EXPECT and value.lower() == b"100-continue" and not self._queue \
                and self.stream is None and self.transport is not None:
            self.transport.write(CONTINUE)

    def on_message_complete(self) -> None:
        self.in_message = False
        if self._fields:
            self._read_head(partial=False)   # (already read if the body came later)
        parts = self._parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        if len(body) > self._max_body:   # a chunked body read in one go
            self._error = self.body_too_large()
            raise _Stop
        url_parts = self._url_parts
        url = url_parts[0] if len(url_parts) == 1 else b"".join(url_parts)
        url_parts.clear()
        parser = self.parser
        keep_alive = parser.should_keep_alive()
        http10 = not keep_alive
        if self._connection:
            # A Connection header can make llhttp's keep-alive answer differ from the
            # version's default (HTTP/1.1 keeps the connection, 1.0 closes it), so then the
            # version is asked for, once per connection (it costs a string format).
            self._connection = False
            if keep_alive and not self._v11:
                http10 = parser.get_http_version() == "1.0"
                self._v11 = not http10
        key, headers = self._key, self._headers
        self._key = None   # (a store costs less than a test)
        if headers is not NO_HEADERS:
            self._headers = NO_HEADERS
        self.request(parser.get_method(), url, body, key, headers, not keep_alive or http10,
                     http10)

    def _release(self) -> None:
        self._parts.clear()
        self._url_parts.clear()
        self._fields.clear()
