"""The reference HTTP/1.1 parser: h11 reads every request, ``BaseProtocol`` answers.

h11 parses and validates request framing (Content-Length, chunked bodies, HTTP/1.0, every
syntax rule) and fastmock frames the replies itself from precomputed bytes, like the httptools
handler: h11's own response serialisation, in pure Python, cost more than everything else a
reply needs. As h11 only moves on to the next request once it has sent a response, each
request is read by a fresh ``h11.Connection`` that is handed the bytes after the previous one
(``trailing_data``); the keep-alive rule is h11's (HTTP/1.0 or ``Connection: close`` ends the
connection).
"""

from __future__ import annotations

import h11

from .headers import CONNECTION, EXPECT, KEY, LENGTH, OTHER
from .protocol import BaseProtocol
from .reply import Header
from .scheduler import Scheduler
from .state import IDLE, App, Connections

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class H11Protocol(BaseProtocol):
    """One client connection, parsed by h11."""

    __slots__ = (
        # per connection
        "conn", "_kinds", "_stopped",
        # per request being parsed
        "_request", "_key", "_headers", "_wants_close", "_parts", "_body_size", "_continued",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        super().__init__(app, scheduler, connections)
        self.conn = self._connection()
        self._kinds = app.headers.kinds
        self._stopped = False
        self._request: h11.Request | None = None
        self._key: Header | None = None
        self._headers: list[Header] = []
        self._wants_close = False
        self._parts: list[bytes] = []
        self._body_size = 0
        self._continued = False

    def _connection(self) -> h11.Connection:
        return h11.Connection(h11.SERVER,
                              max_incomplete_event_size=self.app.config.max_header_bytes)

    # -- transport callbacks -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed bytes to h11 and answer whatever requests are now complete."""
        if self._stopped or self.transport is None:
            return
        try:
            self.conn.receive_data(data)
        except RuntimeError:  # bytes after the client's own close: nothing to answer
            self._close()
            return
        self._parse()
        if self.in_message or self.waiting is not IDLE:
            self.settle()

    def _parser_eof(self) -> None:
        if self._stopped:
            return
        try:
            self.conn.receive_data(b"")
        except RuntimeError:
            return
        self._parse()

    # -- the event pump ------------------------------------------------------------------------

    def _parse(self) -> None:
        """One pass over h11's events: every complete request goes to ``request``."""
        while not self._stopped and self.transport is not None:
            conn = self.conn
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._stopped = True
                self.request_error(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                self.in_message = self._request is not None or bool(conn.trailing_data[0])
                if self._request is not None and conn.they_are_waiting_for_100_continue \
                        and not self._continued and not self._queue and self.stream is None:
                    self._continued = True
                    self.transport.write(CONTINUE)
                return
            kind = type(event)
            if kind is h11.Data:
                self._body_size += len(event.data)  # type: ignore[union-attr]
                if self._body_size > self.app.config.max_body_bytes:
                    self._stopped = True
                    self.request_error(*self.body_too_large())
                    return
                self._parts.append(event.data)  # type: ignore[union-attr]
            elif kind is h11.Request:
                if not self._on_request(event):  # type: ignore[arg-type]
                    return
            elif kind is h11.EndOfMessage:
                self._complete()
            else:   # ConnectionClosed: the client closed between requests
                self._stopped = self._eof = True
                return

    def _on_request(self, event: h11.Request) -> bool:
        """Read the head: limits, and the few headers that matter."""
        self._request = event
        self.in_message = True
        self._key = None
        self._headers = []
        self._wants_close = event.http_version == b"1.0"
        self._body_size = 0
        self._continued = False
        config = self.app.config
        # h11 enforces max_incomplete_event_size only while a head is incomplete; a whole
        # oversized head that arrives in one read is measured here.
        if len(event.headers) > config.max_headers:
            self._stopped = True
            self.request_error(*self.too_many_headers(len(event.headers)))
            return False
        size = len(event.target) + 16
        kinds = self._kinds
        for name, value in event.headers:
            size += len(name) + len(value) + 4
            kind = kinds.get(name)
            if kind is None:
                kind = self.app.headers.classify(name)
            if not kind:
                continue
            if kind is LENGTH:
                if int(value) > config.max_body_bytes:  # h11 has checked the syntax
                    self._stopped = True
                    self.request_error(*self.body_too_large())
                    return False
            elif kind is KEY:
                if self._key is None:   # (the known key's own tuple: see BaseProtocol.known)
                    key = (name, value)
                    self._key = self.known if key == self.known else key
            elif kind is OTHER:
                self._headers.append((name, value))
            elif kind is CONNECTION:
                self._wants_close = self._wants_close or b"close" in value.lower()
            elif kind is EXPECT:
                pass   # h11 tracks it (they_are_waiting_for_100_continue)
        if size > config.max_header_bytes:
            self._stopped = True
            self.request_error(*self.head_too_large(size))
            return False
        return True

    def _complete(self) -> None:
        """A whole request: hand the rest of the bytes to a fresh h11 connection, answer."""
        event = self._request
        assert event is not None
        self._request = None
        self.in_message = False
        rest, closed = self.conn.trailing_data
        conn = self.conn = self._connection()
        if rest:
            conn.receive_data(rest)
        if closed:
            conn.receive_data(b"")
        parts = self._parts
        body = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)  # h11 gives bytearrays
        parts.clear()
        self.request(event.method, event.target, body, self._key, self._headers, self._wants_close,
                     event.http_version == b"1.0")

    def _release(self) -> None:
        self._parts.clear()
