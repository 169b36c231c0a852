"""What both HTTP handlers share: transport callbacks, flow control, the hand-off to the scheduler.

A handler parses requests (``protocol_h11`` with h11, the reference; ``protocol_httptools``, the
fast path) and implements four writes; everything about *when* bytes go out lives here: a reply
without delay goes out at once in one write, a paced one goes to the scheduler, which calls
:meth:`BaseProtocol.deliver` with every step that is due.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import cast

from .frames import error_reply, whole_response
from .reply import Reply
from .scheduler import Scheduler, Stream
from .state import App

log = logging.getLogger("fastmock")

#: Transport buffer marks: above HIGH the scheduler stops writing to this connection until the
#: kernel has taken the buffer down to LOW (aiohttp and uvicorn use the same order of size).
WRITE_HIGH = 64 * 1024
WRITE_LOW = 16 * 1024

_ERROR_MESSAGES = {
    400: "The request could not be parsed as HTTP/1.1",
    408: "The request was not received in time",
    413: "The request body is larger than this server accepts",
    431: "The request head is larger than this server accepts",
    501: "This server does not implement what the request asks for",
    505: "This server speaks HTTP/1.0 and HTTP/1.1 only",
}


class Connections:
    """Every open connection of a server, so that shutdown and the deadline sweep find them."""

    __slots__ = ("open",)

    def __init__(self) -> None:
        self.open: set[BaseProtocol] = set()

    def sweep(self, now: float) -> None:
        """Close connections past their deadline (called once a second, not a timer each)."""
        for proto in [p for p in self.open if p.waiting and now > p.deadline]:
            proto.expire()


def is_loopback(peer: object) -> bool:
    """Whether a peername (``(host, port, ...)``) is a loopback address (IPv4, IPv6, mapped)."""
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


_SERVICE_UNAVAILABLE = error_reply(
    503, "This server has as many connections open as it accepts (max_connections); retry "
    "shortly.", "server_error", None, "too_many_connections", extra=((b"retry-after", b"1"),))


class BaseProtocol(asyncio.Protocol):
    """One client connection; subclasses parse and frame, this class decides when to write."""

    __slots__ = (
        # per connection
        "app", "scheduler", "connections", "transport", "writing_paused", "reading_paused",
        "loopback", "deadline", "waiting",
        # per reply
        "stream", "_delayed", "_head_only",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        self.app = app
        self.scheduler = scheduler
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.writing_paused = False
        self.reading_paused = False
        self.stream: Stream | None = None
        self._delayed: Reply | None = None
        self._head_only = False
        self.loopback = False
        #: What the connection waits for, and until when (monotonic seconds): "fresh" (no
        #: byte yet), "request" (a request under way), "idle" (keep-alive), "" (we reply).
        self.waiting = "fresh"
        self.deadline = float("inf")

    # -- transport callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A client connected: set explicit write-buffer limits and register for shutdown."""
        transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        config = self.app.config
        if len(self.connections.open) >= config.max_connections:
            # Over the limit: say so at once (never a hang), then close.
            self.app.counters.rejected += 1
            transport.write(whole_response(_SERVICE_UNAVAILABLE, _SERVICE_UNAVAILABLE.body, True))
            transport.close()
            return
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.loopback = is_loopback(transport.get_extra_info("peername"))
        self.deadline = time.monotonic() + config.request_timeout_s
        self.connections.open.add(self)
        counters = self.app.counters
        counters.connections_open += 1
        counters.connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: free the stream and everything else it held."""
        if self in self.connections.open:
            self.connections.open.discard(self)
            self.app.counters.connections_open -= 1
        if self.stream is not None:
            self.scheduler.cancel(self.stream)
            self.stream = None
        self.transport = None
        self._delayed = None
        self._release()

    def eof_received(self) -> bool:
        """The client closed its side: answer what is complete, then close.

        During a paced reply the client is taken as gone (like uvicorn): its stream is freed.
        """
        if self.transport is None:
            return False
        if self.stream is not None:
            return False
        self._eof()
        return True

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

    # -- replies -------------------------------------------------------------------------------

    def send(self, reply: Reply) -> None:
        """Send a reply now, or hand its plan to the scheduler."""
        self.waiting = ""
        plan = reply.plan
        if plan is None:
            self._write_whole(reply, reply.body)
            self._end_cycle()
        elif plan.ttft <= 0 and plan.duration <= 0:
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
            self._write_data(data, last)
        if last:
            self.stream = None
            self._end_cycle()
            self._pump()

    def fail(self, status: int, detail: str) -> None:
        """Answer a request we cannot read with an error and ``Connection: close``, then close.

        Only at a reply boundary: an error after half a response would corrupt it.
        """
        self.app.counters.protocol_errors += 1
        if self.transport is not None and self._can_start_reply():
            message = f"{_ERROR_MESSAGES.get(status, 'Bad request')}: {detail}"
            code = "request_too_large" if status in (413, 431) else None
            reply = error_reply(status, message, code=code)
            self.transport.write(whole_response(reply, reply.body, True))
        self._close()

    def too_large(self) -> None:
        limit = self.app.config.max_body_bytes
        self.fail(413, f"The request body is larger than the {limit} bytes this server "
                       "accepts (max_body_bytes).")

    def head_too_large(self, size: int) -> None:
        limit = self.app.config.max_header_bytes
        self.fail(431, f"the head has over {size} bytes; this server accepts {limit} "
                       "(max_header_bytes).")

    # -- deadlines ------------------------------------------------------------------------------

    def bytes_arrived(self) -> None:
        """A request has begun: it must be complete within request_timeout_s."""
        if self.waiting == "idle" or self.waiting == "fresh":
            self.waiting = "request"
            self.deadline = time.monotonic() + self.app.config.request_timeout_s

    def ready_for_next(self) -> None:
        """A reply is done and the connection stays open: idle until keepalive_timeout_s."""
        self.waiting = "idle"
        self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s

    def expire(self) -> None:
        """The deadline passed: 408 for a request that is too slow, a silent close otherwise."""
        waiting, self.waiting = self.waiting, ""
        if waiting == "request":
            self.app.counters.timeouts += 1
            self.fail(408, f"it took longer than {self.app.config.request_timeout_s:g} s "
                           "(request_timeout_s).")
        else:
            self._close()

    # -- what a handler implements -------------------------------------------------------------

    def _pump(self) -> None:
        """Answer whatever complete requests are waiting, until one needs the scheduler."""
        raise NotImplementedError

    def _write_whole(self, reply: Reply, body: bytes) -> None:
        """Write status, headers and the whole body, in one write."""
        raise NotImplementedError

    def _write_head(self, reply: Reply, data: bytes, last: bool) -> None:
        """Write status and headers of a streamed reply, with ``data`` and maybe its end."""
        raise NotImplementedError

    def _write_data(self, data: bytes, last: bool) -> None:
        """Write more of a streamed reply, and its end when ``last``."""
        raise NotImplementedError

    def _end_cycle(self) -> None:
        """Our reply is complete: close, or get ready for the next request."""
        raise NotImplementedError

    def _can_start_reply(self) -> bool:
        raise NotImplementedError

    def _eof(self) -> None:
        """Answer what the client sent before closing its side."""
        raise NotImplementedError

    def _release(self) -> None:
        """Drop per-request buffers when the connection is lost."""

    # -- helpers -------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None:
            self.transport.write(data)

    def _close(self) -> None:
        """Close after the buffered writes; from now on nothing reads or writes here."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.waiting = ""

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
