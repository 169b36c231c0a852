"""The reference HTTP/1.1 handler: a raw asyncio.Protocol around one ``h11.Connection``.

h11 owns the HTTP state (keep-alive, framing, HTTP/1.0, pipelining); this class only pumps
events, hands complete requests to the router, and writes replies, either at once or through the
scheduler when they are paced. Every write of one reply is joined into one ``transport.write``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import h11

from .frames import CLOCK, REASONS, error_reply, raw_response
from .reply import Reply
from .routes import route
from .routes.common import Request
from .scheduler import Scheduler, Stream
from .state import App

log = logging.getLogger("fastmock")

#: Transport buffer marks: above HIGH the scheduler stops writing to this connection until the
#: kernel has taken the buffer down to LOW (aiohttp and uvicorn use the same order of size).
WRITE_HIGH = 64 * 1024
WRITE_LOW = 16 * 1024

_ERROR_MESSAGES = {
    400: "The request could not be parsed as HTTP/1.1",
    413: "The request body is larger than this server accepts",
    431: "The request head is larger than this server accepts",
    501: "This server does not implement what the request asks for",
}


class Connections:
    """Every open connection of a server, so that shutdown can find them."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: set[H11Protocol] = set()


class H11Protocol(asyncio.Protocol):
    """One client connection."""

    __slots__ = (
        # per connection
        "app", "scheduler", "connections", "transport", "conn", "writing_paused",
        "reading_paused",
        # per request
        "_request", "_body", "_body_size", "_head_only", "stream", "_delayed",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        self.app = app
        self.scheduler = scheduler
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.conn = h11.Connection(h11.SERVER,
                                   max_incomplete_event_size=app.config.max_header_bytes)
        self.writing_paused = False
        self.reading_paused = False
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_only = False
        self.stream: Stream | None = None
        self._delayed: Reply | None = None

    # -- transport callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: set explicit write-buffer limits and register for shutdown."""
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.connections.open.add(self)

    def data_received(self, data: bytes) -> None:
        """Feed bytes to h11 and answer whatever requests are now complete."""
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

    def eof_received(self) -> bool:
        """The client closed its side: answer what is complete, then close.

        During a paced reply the client is taken as gone (like uvicorn): its stream is freed.
        """
        if self.stream is not None:
            return False
        self.conn.receive_data(b"")
        self._pump()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: free the stream and everything else it held."""
        self.connections.open.discard(self)
        if self.stream is not None:
            self.scheduler.cancel(self.stream)
            self.stream = None
        self.transport = None
        self._body = []
        self._delayed = None

    def pause_writing(self) -> None:
        """The transport buffer is over WRITE_HIGH: the scheduler will skip this connection."""
        self.writing_paused = True

    def resume_writing(self) -> None:
        """The buffer drained below WRITE_LOW: resume the stream and any pipelined requests."""
        self.writing_paused = False
        if self.stream is not None:
            self.scheduler.resume(self.stream)
        elif self.reading_paused:
            self._resume_reading()
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
                self._fail(exc.error_status_hint, str(exc))
                return
            if event is h11.NEED_DATA:
                if self._request is not None and conn.they_are_waiting_for_100_continue:
                    self._write(conn.send(h11.InformationalResponse(status_code=100,
                                                                    headers=[])))
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
                    self._too_large()
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
        size = len(event.target) + 16
        for name, value in event.headers:
            size += len(name) + len(value) + 4
            if name == b"content-length" and int(value) > config.max_body_bytes:
                # h11 has checked the syntax; refuse an oversized body before reading it.
                self._too_large()
                return False
        if size > config.max_header_bytes:
            self._fail(431, f"the head has {size} bytes; this server accepts "
                            f"{config.max_header_bytes} (max_header_bytes).")
            return False
        return True

    def _respond(self) -> None:
        event = self._request
        assert event is not None
        request = Request(event.method, event.target, list(event.headers), b"".join(self._body))
        self._request = None
        self._body = []
        self.send(route(request, self.app))

    # -- sending -------------------------------------------------------------------------------

    def send(self, reply: Reply) -> None:
        """Send a reply now, or hand its plan to the scheduler."""
        plan = reply.plan
        if plan is None:
            self._write_whole(reply, reply.body)
            self._end_cycle()
        elif plan.duration <= 0 and plan.ttft <= 0:
            # Nothing to wait for: the whole reply, stream or not, goes out in one write.
            if plan.head_first:
                self._write_head(reply, b"".join(plan.steps), last=True)
            else:
                self._write_whole(reply, plan.steps[0])
            self._end_cycle()
        elif plan.head_first:
            self._write_head(reply, b"", last=False)
            self.stream = self.scheduler.start(self, plan)
        else:
            self._delayed = reply
            self.stream = self.scheduler.start(self, plan)

    def deliver(self, stream: Stream, data: bytes, last: bool) -> None:
        """Called by the scheduler with every step of ``stream`` that is due now."""
        if self.transport is None or stream is not self.stream:
            return
        delayed = self._delayed
        if delayed is not None:
            self._delayed = None
            self._write_whole(delayed, data)
        else:
            out = self.conn.send(h11.Data(data=data)) if not self._head_only else b""
            if last:
                out = (out or b"") + (self.conn.send(h11.EndOfMessage()) or b"")
            self._write(out)
        if last:
            self.stream = None
            self._end_cycle()
            self._pump()

    def _response(self, reply: Reply, length: int | None) -> h11.Response:
        headers = list(reply.headers)
        headers.append((b"date", CLOCK.date))
        if length is not None:
            headers.append((b"content-length", b"%d" % length))
        if reply.close:
            headers.append((b"connection", b"close"))
        return h11.Response(status_code=reply.status, headers=headers,
                            reason=REASONS.get(reply.status, b""))

    def _write_whole(self, reply: Reply, body: bytes) -> None:
        conn = self.conn
        out = [conn.send(self._response(reply, len(body)))]
        if body and not self._head_only:
            out.append(conn.send(h11.Data(data=body)))
        out.append(conn.send(h11.EndOfMessage()))
        self._write(b"".join(o for o in out if o))

    def _write_head(self, reply: Reply, data: bytes, last: bool) -> None:
        conn = self.conn
        out = [conn.send(self._response(reply, None))]
        if data and not self._head_only:
            out.append(conn.send(h11.Data(data=data)))
        if last:
            out.append(conn.send(h11.EndOfMessage()))
        self._write(b"".join(o for o in out if o))

    def _write(self, data: bytes | None) -> None:
        if data and self.transport is not None:
            self.transport.write(data)

    def _end_cycle(self) -> None:
        """Our reply is complete: close, or get ready for the next request on this connection."""
        conn = self.conn
        if conn.our_state is h11.MUST_CLOSE or conn.our_state is h11.ERROR:
            self._close()
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            if self.reading_paused and not self.writing_paused:
                self._resume_reading()

    # -- failures ------------------------------------------------------------------------------

    def _too_large(self) -> None:
        limit = self.app.config.max_body_bytes
        self._fail(413, f"The request body is larger than the {limit} bytes this server "
                        "accepts (max_body_bytes).")

    def _fail(self, status: int, detail: str) -> None:
        """Answer a request we cannot read with an error and ``Connection: close``, then close.

        Only when no response has started: an error after half a response would corrupt it.
        """
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE) and self.transport is not None:
            message = f"{_ERROR_MESSAGES.get(status, 'Bad request')}: {detail}"
            code = "request_too_large" if status in (413, 431) else None
            reply = error_reply(status, message, code=code)
            self.transport.write(raw_response(reply, CLOCK.date, close=True))
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
