"""The reference HTTP/1.1 handler: one ``h11.Connection`` per connection.

h11 owns the HTTP state (keep-alive, framing, HTTP/1.0, pipelining); this class pumps its events,
hands complete requests to the router, and frames replies through it.
"""

from __future__ import annotations

import h11

from .frames import CLOCK, REASONS
from .protocol import BaseProtocol, Connections
from .reply import Header, Reply
from .routes import route
from .routes.common import Request
from .scheduler import Scheduler
from .state import App

_EOM = h11.EndOfMessage()   # events are immutable: one serves every reply

#: Response events are validated by h11 when built; replies of one shape and length within one
#: Date tick share one event, so h11 validates each shape once a second, not per reply.
_responses: dict[tuple[int, tuple[Header, ...], int | None], h11.Response] = {}
_responses_date = b""
RESPONSE_CACHE_LIMIT = 1024


def response_event(reply: Reply, length: int | None) -> h11.Response:
    global _responses_date
    date = CLOCK.date
    if date is not _responses_date or len(_responses) >= RESPONSE_CACHE_LIMIT:
        _responses.clear()
        _responses_date = date
    key = (reply.status, reply.headers, length)
    event = _responses.get(key)
    if event is None:
        headers = [*reply.headers, (b"date", date)]
        if length is not None:
            headers.append((b"content-length", b"%d" % length))
        event = h11.Response(status_code=reply.status, headers=headers,
                             reason=REASONS.get(reply.status, b""))
        _responses[key] = event
    return event


class H11Protocol(BaseProtocol):
    """One client connection, parsed and framed by h11."""

    __slots__ = (
        # per connection
        "conn",
        # per request
        "_request", "_body", "_body_size",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        super().__init__(app, scheduler, connections)
        self.conn = h11.Connection(h11.SERVER,
                                   max_incomplete_event_size=app.config.max_header_bytes)
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0

    def data_received(self, data: bytes) -> None:
        """Feed bytes to h11 and answer whatever requests are now complete."""
        if self.transport is None:
            return
        self.bytes_arrived()
        try:
            self.conn.receive_data(data)
        except RuntimeError:  # bytes after the client's own close: nothing to answer
            self._close()
            return
        if self.stream is None:
            self._pump()
        elif len(self.conn.trailing_data[0]) > self.app.config.max_header_bytes:
            # Pipelined requests behind a running stream: stop reading until it is done.
            self._pause_reading()

    def _eof(self) -> None:
        try:
            self.conn.receive_data(b"")
        except RuntimeError:
            self._close()
            return
        self._pump()

    # -- the event pump ------------------------------------------------------------------------

    def _pump(self) -> None:
        conn = self.conn
        while self.transport is not None and self.stream is None:
            if self.writing_paused:
                self._pause_reading()
                return
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self.fail(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                if self.waiting == "idle" and (self._request is not None
                                               or conn.trailing_data[0]):
                    self.bytes_arrived()   # part of the next request is here: its deadline runs
                if self._request is not None and conn.they_are_waiting_for_100_continue:
                    self._write(conn.send(h11.InformationalResponse(
                        status_code=100, headers=[], reason=b"Continue")) or b"")
                return
            if event is h11.PAUSED:
                # Our reply is not finished yet; h11 holds the rest of the pipeline.
                self._pause_reading()
                return
            kind = type(event)
            if kind is h11.Request:
                assert isinstance(event, h11.Request)
                if not self._on_request(event):
                    return
            elif kind is h11.Data:
                assert isinstance(event, h11.Data)
                self._body_size += len(event.data)
                if self._body_size > self.app.config.max_body_bytes:
                    self.too_large()
                    return
                self._body.append(event.data)
            elif kind is h11.EndOfMessage:
                self._respond()
            elif kind is h11.ConnectionClosed:
                self._close()
                return

    def _on_request(self, event: h11.Request) -> bool:
        self._request = event
        self._body = []
        self._body_size = 0
        self._head_only = event.method == b"HEAD"
        config = self.app.config
        # h11 enforces max_incomplete_event_size only while a head is incomplete; a whole
        # oversized head that arrives in one read is measured here.
        if len(event.headers) > config.max_headers:
            self.fail(431, f"the head has {len(event.headers)} fields; this server accepts "
                           f"{config.max_headers} (max_headers).")
            return False
        size = len(event.target) + 16
        for name, value in event.headers:
            size += len(name) + len(value) + 4
            if name == b"content-length" and int(value) > config.max_body_bytes:
                # h11 has checked the syntax; refuse an oversized body before reading it.
                self.too_large()
                return False
        if size > config.max_header_bytes:
            self.head_too_large(size)
            return False
        return True

    def _respond(self) -> None:
        event = self._request
        assert event is not None
        request = Request(event.method, event.target, list(event.headers), b"".join(self._body),
                          self.loopback)
        self._request = None
        self._body = []
        self.app.counters.requests += 1
        self.send(route(request, self.app))

    # -- framing -------------------------------------------------------------------------------

    def _write_whole(self, reply: Reply, body: bytes) -> None:
        conn = self.conn
        out = [conn.send(response_event(reply, len(body)))]
        if body and not self._head_only:
            out.append(conn.send(h11.Data(data=body)))
        out.append(conn.send(_EOM))
        self._write(b"".join(o for o in out if o))

    def _write_head(self, reply: Reply, data: bytes, last: bool) -> None:
        conn = self.conn
        out = [conn.send(response_event(reply, None))]
        if data and not self._head_only:
            out.append(conn.send(h11.Data(data=data)))
        if last:
            out.append(conn.send(_EOM))
        self._write(b"".join(o for o in out if o))

    def _write_data(self, data: bytes, last: bool) -> None:
        conn = self.conn
        out = conn.send(h11.Data(data=data)) if not self._head_only else b""
        if last:
            out = (out or b"") + (conn.send(_EOM) or b"")
        self._write(out or b"")

    def _end_cycle(self) -> None:
        conn = self.conn
        if conn.our_state is h11.MUST_CLOSE or conn.our_state is h11.ERROR:
            self._close()
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            self.ready_for_next()
            if self.reading_paused and not self.writing_paused:
                self._resume_reading()

    def _can_start_reply(self) -> bool:
        return self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)

    def _release(self) -> None:
        self._body = []
