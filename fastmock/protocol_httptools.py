"""The fast HTTP/1.1 handler: httptools (llhttp) parses, fastmock frames from precomputed heads.

Same behaviour as the h11 handler (the protocol tests run against both). httptools parses every
complete request in a buffer in one call, so requests are queued and answered strictly in order;
a parse error joins the queue and is answered, then the connection closes, after the good
requests before it. Status line and header block of each reply shape are built once per Date
tick, so a reply costs one dict lookup, one length and one write.
"""

from __future__ import annotations

from collections import deque

import httptools

from .frames import head_block, whole_response
from .protocol import BaseProtocol, Connections
from .reply import Header, Reply
from .routes import route
from .routes.common import Request
from .scheduler import Scheduler
from .state import App

#: Requests parsed ahead of the one being answered before we stop reading (pipelining depth).
MAX_QUEUED = 32
class _Stop(Exception):
    """Raised inside a parser callback to stop parsing; the reason is in ``_error``."""


class _Pending:
    __slots__ = ("request", "keep_alive", "http10", "error")

    def __init__(self, request: Request | None, keep_alive: bool, http10: bool,
                 error: tuple[int, str] | None = None) -> None:
        self.request = request
        self.keep_alive = keep_alive
        self.http10 = http10
        self.error = error


class HttpToolsProtocol(BaseProtocol):
    """One client connection, parsed by httptools."""

    __slots__ = (
        # per connection
        "parser", "_queue", "_stopped",
        # per request being parsed
        "_url", "_headers", "_body", "_body_size", "_head_size", "_in_head", "_in_message",
        "_error",
        # per reply being sent
        "_must_close", "_http10",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        super().__init__(app, scheduler, connections)
        self.parser = httptools.HttpRequestParser(self)
        self._queue: deque[_Pending] = deque()
        self._stopped = False
        self._url = b""
        self._headers: list[Header] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0
        self._in_head = False
        self._in_message = False
        self._error: tuple[int, str] | None = None
        self._must_close = False
        self._http10 = False

    # -- transport callbacks -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse what arrived, queue complete requests, answer them in order."""
        if self._stopped or self.transport is None:
            return
        self.bytes_arrived()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # The bytes after an Upgrade request are not HTTP: answer it, then close.
            if self._queue:
                self._queue[-1].keep_alive = False
            self._stopped = True
        except httptools.HttpParserError as exc:
            error = self._error or (400, str(exc) or "malformed request")
            self._queue.append(_Pending(None, False, False, error))
            self._stopped = True
        else:
            if self._in_head:
                # llhttp has no head limit and httptools buffers a header until it ends; this
                # coarse guard (it may count a previous request's tail) bounds that buffer.
                self._head_size += len(data)
                if self._head_size > 2 * self.app.config.max_header_bytes + 65536:
                    self._queue.append(_Pending(None, False, False, (431, "head too large")))
                    self._stopped = True
        self._pump()
        if len(self._queue) > MAX_QUEUED or (self._stopped and self._queue):
            self._pause_reading()

    def _eof(self) -> None:
        if self._queue and self._queue[-1].error is None:
            self._queue[-1].keep_alive = False
        self._stopped = True
        if not self._queue:
            self._close()

    # -- parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._head_size = 0
        self._in_head = True
        self._in_message = True
        self._error = None

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))
        if len(self._headers) > self.app.config.max_headers:
            self._error = (431, f"the head has over {len(self._headers) - 1} fields; this "
                                f"server accepts {self.app.config.max_headers} (max_headers).")
            raise _Stop
        self._count_head(len(name) + len(value) + 4)

    def _count_head(self, size: int) -> None:
        self._head_size += size
        limit = self.app.config.max_header_bytes
        if self._head_size > limit:
            self._error = (431, f"the head has over {self._head_size} bytes; this server "
                                f"accepts {limit} (max_header_bytes).")
            raise _Stop

    def on_headers_complete(self) -> None:
        self._in_head = False
        limit = self.app.config.max_body_bytes
        expect = False
        for name, value in self._headers:
            if name == b"content-length" and int(value) > limit:
                self._body_too_large()
            elif name == b"expect" and value.lower() == b"100-continue":
                expect = True
        if expect and not self._queue and self.stream is None and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.app.config.max_body_bytes:
            self._body_too_large()
        self._body.append(body)

    def _body_too_large(self) -> None:
        limit = self.app.config.max_body_bytes
        self._error = (413, f"The request body is larger than the {limit} bytes this server "
                            "accepts (max_body_bytes).")
        raise _Stop

    def on_message_complete(self) -> None:
        self._in_message = False
        parser = self.parser
        http10 = parser.get_http_version() == "1.0"
        request = Request(parser.get_method(), self._url, self._headers, b"".join(self._body),
                          self.loopback)
        self._queue.append(_Pending(request, parser.should_keep_alive() and not http10, http10))
        self._body = []

    # -- answering -----------------------------------------------------------------------------

    def _pump(self) -> None:
        queue = self._queue
        while queue and self.stream is None and self.transport is not None:
            if self.writing_paused:
                self._pause_reading()
                return
            item = queue.popleft()
            if item.error is not None:
                self.fail(*item.error)
                return
            request = item.request
            assert request is not None
            self._must_close = not item.keep_alive
            self._http10 = item.http10
            self._head_only = request.method == b"HEAD"
            self.app.counters.requests += 1
            self.send(route(request, self.app))
        if (not queue and self.reading_paused and not self.writing_paused
                and not self._stopped and self.stream is None):
            self._resume_reading()

    def _write_whole(self, reply: Reply, body: bytes) -> None:
        self._write(whole_response(reply, body, self._must_close, self._head_only))

    def _write_head(self, reply: Reply, data: bytes, last: bool) -> None:
        close = self._must_close
        head = head_block(reply.status, reply.headers)
        if self._head_only:
            self._write(head + (b"connection: close\r\n\r\n" if close else b"\r\n"))
            return
        if self._http10:
            # No chunked encoding in HTTP/1.0: the body ends when the connection does.
            self._write(head + b"connection: close\r\n\r\n" + data)
            self._must_close = True
            return
        tail = b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n" if close \
            else b"transfer-encoding: chunked\r\n\r\n"
        if data:
            tail += b"%x\r\n%s\r\n" % (len(data), data)
        if last:
            tail += b"0\r\n\r\n"
        self._write(head + tail)

    def _write_data(self, data: bytes, last: bool) -> None:
        if self._head_only:
            return
        if self._http10:
            self._write(data)
        elif last:
            self._write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        else:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_cycle(self) -> None:
        if self._must_close:
            self._queue.clear()
            self._stopped = True
            self._close()
            return
        self.ready_for_next()
        if self._in_message:
            self.bytes_arrived()   # part of the next request is here: its deadline runs
        if self.reading_paused and not self.writing_paused and not self._stopped \
                and len(self._queue) <= MAX_QUEUED:
            self._resume_reading()

    def _can_start_reply(self) -> bool:
        return self.stream is None

    def _release(self) -> None:
        self._queue.clear()
        self._body = []
