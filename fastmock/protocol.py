"""What both HTTP handlers share: requests in, replies out, flow control, the scheduler hand-off.

A handler only parses (``protocol_h11`` with h11, the reference; ``protocol_httptools``, the
fast path) and calls :meth:`BaseProtocol.request` with every complete request, in order.
Everything about *what* goes out and *when* lives here:

- a request seen before, on a keep-alive HTTP/1.1 connection with no header that changes the
  answer, is answered from its kept reply (``ready``): one dict lookup, one join, one write;
- any other request goes to the router; its reply is framed for this connection (and kept
  when it may be replayed);
- a reply with nothing to wait for goes out at once in one write; a paced one goes to the
  scheduler, which writes each step when it is due and calls :meth:`finished` at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable

from .frames import (
    CLOCK,
    ID_MARK,
    IDS,
    PROCESSING_ZERO,
    error_reply,
    error_tail,
    stream_steps,
    whole_response,
)
from .metrics import Meter
from .ready import DELAYED, NOW, READY_LIMIT, READY_MAX_BODY, STREAM, Parts, Ready, plain_text
from .reply import Header, Plan, Reply
from .routes import dispatch, open_path
from .routes.common import Request
from .scheduler import Scheduler, Stream
from .state import IDLE, App, Connections
from .trouble import Fault, FaultError, Overrides, read_overrides

log = logging.getLogger("fastmock")

#: The next id of the current batch (``frames.Ids``), taken inline on the replay path.
take_id = IDS.take

#: Transport buffer marks: above HIGH the scheduler stops writing to this connection until the
#: kernel has taken the buffer down to LOW (aiohttp and uvicorn use the same order of size).
WRITE_HIGH = 64 * 1024
WRITE_LOW = 16 * 1024

#: Requests parsed ahead of the one being answered before we stop reading (pipelining depth).
MAX_QUEUED = 32

#: Replies a connection is counted for in one turn of the loop when the rate limits decide
#: whether to lend a reply its header lines for the turn (``trouble.Limits.grant``): only when
#: their buckets hold this many per open connection. A client that pipelines more than this in
#: one turn (thousands of requests in one write) gets them all, and all are taken from the
#: buckets when the turn ends, which then refuse what follows until they have refilled.
TURN_MOST = 4096

#: What a connection waits for (its deadline says until when): no byte yet, the rest of a
#: request, the next request (keep-alive), or nothing (we are replying: no deadline).
FRESH, REQUEST, REPLYING = "fresh", "request", ""

_ERROR_MESSAGES = {
    400: "The request could not be parsed as HTTP/1.1",
    408: "The request was not received in time",
    413: "The request body is larger than this server accepts",
    431: "The request head is larger than this server accepts",
    501: "This server does not implement what the request asks for",
    505: "This server speaks HTTP/1.0 and HTTP/1.1 only",
}

#: A connection's known key while keys are needed and none was accepted on it yet: no
#: request's key is this tuple, nor equal to it (a header's name ends at its colon).
UNKNOWN: Header = (b":", b"")

#: A queued request: (method, target, body, key header, other headers, close, http10), or a
#: request that could not be read: (None, status, detail).
Queued = tuple[object, ...]


def is_loopback(peer: object) -> bool:
    """Whether a peername (``(host, port, ...)``) is a loopback address (IPv4, IPv6, mapped)."""
    if not isinstance(peer, tuple) or not peer:
        return False
    if peer[0] in ("127.0.0.1", "::1"):
        return True
    import ipaddress  # for other addresses only (it costs a server start ~2 ms)

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
    """One client connection; subclasses parse, this class answers and decides when to write."""

    __slots__ = (
        # per connection
        "app", "scheduler", "connections", "transport", "writing_paused", "reading_paused",
        "loopback", "deadline", "waiting", "served", "swept", "in_message", "_queue", "_eof",
        "_metered", "known",
        # per reply
        "stream", "_close_after", "_slot", "_waiting_for", "model",
    )

    def __init__(self, app: App, scheduler: Scheduler, connections: Connections) -> None:
        self.app = app
        self.scheduler = scheduler
        self.connections = connections
        self.transport: asyncio.Transport | None = None
        self.writing_paused = False
        self.reading_paused = False
        self.loopback = False
        self.waiting = FRESH
        self.deadline = float("inf")
        #: Requests answered on this connection (the sweep reads it to see activity).
        self.served = 0
        self.swept = 0
        #: The parser holds part of a request (set by the handler).
        self.in_message = False
        self._queue: deque[Queued] = deque()
        self._eof = False
        self.stream: Stream | None = None
        self._close_after = False
        #: The reply holds a place of the admission (max_concurrency), to give back at its end.
        self._slot = False
        #: The reply is waiting for a place: what admission calls when one frees.
        self._waiting_for: Callable[[], None] | None = None
        #: Every reply sent is handed to this (the metrics' list; see ``metrics.Meter``).
        self._metered = app.meter.sent.append
        #: The model of the reply being paced or waiting (for /metrics' gauges).
        self.model = ""
        #: The key header last accepted on this connection: a handler that reads the same
        #: header again hands this very tuple on as the request's key, which is then accepted
        #: by identity (a load test's client sends one key over and over: no hash, no dict
        #: probe). None while the API needs no key: a request without one (key None) is
        #: accepted the same way. Forgotten whenever the keys change (``forget_key``).
        self.known: Header | None = UNKNOWN if app.keys.active else None

    # -- transport callbacks -------------------------------------------------------------------

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        """A client connected: set explicit write-buffer limits and register for shutdown."""
        transport: asyncio.Transport = base  # type: ignore[assignment]  # uvloop's: no subclass
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
            self.connections.closed_requests += self.served
            self.app.counters.connections_open -= 1
        if self._waiting_for is not None:
            trouble = self.app.trouble
            if trouble is not None and trouble.admission is not None:
                trouble.admission.withdraw(self._waiting_for)
            self._waiting_for = None
        elif self.stream is not None:
            self.scheduler.cancel(self.stream)
        self.stream = None
        self._leave()
        self.transport = None
        self._queue.clear()
        self._release()

    def eof_received(self) -> bool:
        """The client closed its side: answer what is complete, then close.

        During a paced reply the client is taken as gone (like uvicorn): its stream is freed.
        """
        if self.transport is None or self.stream is not None:
            return False
        self._eof = True
        self._parser_eof()
        if not self._queue and self.transport is not None:
            self._close()
        return True

    def pause_writing(self) -> None:
        """The transport buffer is over WRITE_HIGH: the scheduler will skip this connection."""
        self.writing_paused = True

    def resume_writing(self) -> None:
        """The buffer drained below WRITE_LOW: resume the stream and any pipelined requests."""
        self.writing_paused = False
        if self.stream is not None:
            self.scheduler.resume(self.stream)
        else:
            self._pump()

    # -- requests in -----------------------------------------------------------------------------

    def settle(self) -> None:
        """The handler has parsed what arrived and something changed: from now on the
        connection waits for the rest of a request (``in_message``) or for the next one.

        Not called for a read whose requests were all answered at once: the connection was
        idle and stays idle (the sweep sees its ``served`` count move).
        """
        if self.transport is None or self.stream is not None or self._queue:
            return   # our turn to reply: no deadline
        if self.in_message:
            if self.waiting is not REQUEST:   # a request has begun: its deadline runs
                self.waiting = REQUEST
                self.deadline = time.monotonic() + self.app.config.request_timeout_s
        else:
            self.waiting = IDLE
            self.deadline = time.monotonic() + self.app.config.keepalive_timeout_s
            self.swept = self.served   # this deadline already counts every request so far

    def request(self, method: bytes, target: bytes, body: bytes, key: Header | None,
                headers: list[Header], close: bool, http10: bool) -> None:
        """A complete request, in order. ``key`` is the header that carries an API key (if
        any, its name as sent); ``headers`` the other headers that change the answer
        (lower-case names)."""
        if self.stream is not None or self._queue or self.writing_paused \
                or self.transport is None:
            if self.transport is not None:
                queue = self._queue
                queue.append((method, target, body, key, headers, close, http10))
                self.waiting = REPLYING   # it is our turn: no deadline for the client
                if self.writing_paused or len(queue) > MAX_QUEUED:
                    self._pause_reading()  # the client is not reading our replies: nor do we
            return
        app = self.app
        if not (close or headers):
            # The replay path: the same request as before, on a keep-alive connection.
            ready = app.ready.get((method, target, body))
            if ready is None:
                if app.shapes.table and self._reshape(method, target, body, key):
                    return
            elif ready.open or key is self.known or self._key_opens(key):
                if ready.date is not CLOCK.date and not ready.refresh(dispatch(ready.req, app)):
                    del app.ready[(method, target, body)]
                else:
                    self.served += 1
                    if ready.gate is not None:   # trouble configured (and no parts lent)
                        if ready.credit:   # rate limits by model: credit in this turn
                            ready.credit -= 1
                            spliced = ready.spliced
                        else:
                            granted = self._granted(ready, key)
                            if granted is None:
                                return
                            spliced = granted
                        try:
                            ident = take_id()
                        except IndexError:
                            ident = IDS.refill()
                        self.transport.write(ident.join(spliced))
                        self._metered(ready)
                        if ready.after is not None:
                            ready.after(ident)
                    elif ready.kind is NOW:
                        try:
                            ident = take_id()
                        except IndexError:
                            ident = IDS.refill()
                        self.transport.write(ident.join(ready.now))
                        self._metered(ready)
                        if ready.after is not None:
                            ready.after(ident)
                    else:
                        self._send(ready)
                    return
        self._answer(method, target, body, key, headers, close, http10)

    def _key_opens(self, key: Header | None) -> bool:
        """Whether ``key``, not this connection's known key (the callers test that first),
        opens the API without the long way's check: none is needed, or it was accepted before
        (then it is this connection's known key from now on)."""
        keys = self.app.keys
        if not keys.active:
            return True
        if key is not None and key[1] in keys.accepted:
            self.known = key
            return True
        return False

    def forget_key(self) -> None:
        """The keys changed: what was accepted may not be any more."""
        self.known = UNKNOWN if self.app.keys.active else None

    def _granted(self, ready: Ready, key: Header | None) -> Parts | None:
        """A kept reply with trouble configured, beyond its credit: its parts with the rate
        limits' header lines when limits are all the trouble there is and they let it through;
        else (None) it was handled the long way."""
        app = self.app
        lean = app.trouble.lean  # type: ignore[union-attr]
        who = ready.limited_as
        if lean is not None and who is not None:
            # (with API keys, a kept reply is only replayed for a known key)
            spliced = lean.grant(key[1] if app.keys.active else who,  # type: ignore[index]
                                 ready, len(self.connections.open) * TURN_MOST)
            if spliced is not None:
                return spliced
        self._deliver(ready, key, None)
        return None

    def _reshape(self, method: bytes, target: bytes, body: bytes, key: Header | None) -> bool:
        """A request that is a seen one but for its last message's text (``ready.Shapes``):
        answered from the kept reply with its usage counted again. False: not one."""
        app = self.app
        if app.trouble is not None:
            return False   # (faults and limits are decided the long way)
        found = app.shapes.find(method, target, body)
        if found is None:
            return False
        shape, raw = found
        if key is not self.known and not self._key_opens(key):
            return False
        ready = shape.ready
        if shape.date is not CLOCK.date:
            if ready.date is not CLOCK.date and not ready.refresh(dispatch(ready.req, app)):
                return False
            shape.cut()
        if not shape.prompt.usage:   # a stream that does not show the usage: its bytes as kept
            if plain_text(raw) is None:
                return False
            self.served += 1
            if ready.kind is NOW:
                self.transport.write(IDS.new().join(ready.now))  # type: ignore[union-attr]
                self._metered(ready)
            else:
                self._send(ready)
            return True
        reply = shape.reply(raw)
        if reply is None:
            return False
        self.served += 1
        try:
            ident = take_id()
        except IndexError:
            ident = IDS.refill()
        self.transport.write(ident.join(reply[0]))  # type: ignore[union-attr]
        self._metered((ready, reply[1]))
        return True

    def request_error(self, status: int, detail: str) -> None:
        """A request that cannot be read: answered in its turn, then the connection closes."""
        if self.stream is not None or self._queue or self.writing_paused:
            self._queue.append((None, status, detail))
            self.waiting = REPLYING
        else:
            self.fail(status, detail)

    def _answer(self, method: bytes, target: bytes, body: bytes, key: Header | None,
                headers: list[Header], close: bool, http10: bool) -> None:
        """Ask the router, frame the reply for this connection, keep it if it may be replayed."""
        app = self.app
        self.served += 1
        all_headers = headers
        if key is not None:   # the key header arrives with its name as sent
            all_headers = [*headers, (key[0].lower(), key[1])]
            if app.keys.active:
                app.keys.remember(key)
        overrides = None
        if headers and app.config.request_overrides:
            try:
                overrides = read_overrides(headers, app.config.stall_ms)
            except FaultError as exc:
                reply = error_reply(400, str(exc), param=None, code="invalid_fastmock_header")
                self._write_reply(Ready(Request(method, target, []), reply, close, http10,
                                        method == b"HEAD", False))
                return
        req = Request(method, target, all_headers, body, self.loopback, ID_MARK, overrides)
        reply = dispatch(req, app)
        head_only = method == b"HEAD"
        ready = Ready(req, reply, close, http10, head_only, open_path(target))
        if reply.cacheable and not (close or http10 or head_only or headers) \
                and len(body) <= READY_MAX_BODY:
            if len(app.ready) >= READY_LIMIT:
                app.ready.clear()
            app.ready[(method, target, body)] = ready
            ready.keep(app.trouble)
            if reply.prompt is not None:
                app.shapes.learn(method, target, body, ready, reply.prompt)
        if app.trouble is not None or overrides is not None:
            self._deliver(ready, key, overrides)
        elif ready.kind is NOW:
            self._write_reply(ready)
        else:
            self._send(ready)

    def _write_reply(self, ready: Ready, lines: bytes = b"") -> None:
        """Write a reply that waits for nothing (``lines``: its own header lines)."""
        ident = IDS.new()
        if lines:
            head, rest = ready.cut()
            data = b"%s%s%s" % (head, lines, ident.join(rest))
        else:
            data = ident.join(ready.now)
        self.transport.write(data)  # type: ignore[union-attr]
        self._metered(ready)
        if ready.after is not None:
            ready.after(ident)
        if ready.close:
            self._close()

    def _deliver(self, ready: Ready, key: Header | None, overrides: Overrides | None) -> None:
        """A reply with trouble configured or asked for: its fault (drawn, or the one the
        request named), its rate limits, its place in the admission; then send it."""
        app = self.app
        trouble = app.trouble
        model = ready.model
        if model is None or ready.status != 200:
            # Not a model's reply (health, models, an error): nothing befalls it.
            if ready.kind is NOW:
                self._write_reply(ready)
            else:
                self._send(ready)
            return
        fault = overrides.fault if overrides is not None else None
        if fault is None and trouble is not None and model.faults is not None:
            fault = model.faults.roll(trouble.rng)
        name = model.spec.id
        if fault is not None:
            app.counters.faults[fault.name] = app.counters.faults.get(fault.name, 0) + 1
            if log.isEnabledFor(logging.DEBUG):
                log.debug("fault %s injected: %s %s (model %s%s)", fault.name,
                          ready.req.method.decode(), ready.req.target.decode("latin-1"), name,
                          ", asked for" if overrides is not None and overrides.fault else "")
            whole = ready.kind is not STREAM
            if fault.kind == "status" or (fault.kind == "error" and whole):
                status = fault.status or 500
                self._write_instead(ready, app.errors().status_reply(status, name))
                return
            if fault.kind == "drop" and whole:
                self._close()   # no reply at all: the connection is cut
                return
        lines = b""
        if trouble is not None and trouble.limits is not None:
            who = key[1] if key is not None and app.keys.active else name
            lines, refusal = trouble.limited(who, name, ready.tokens)
            if refusal is not None:
                log.debug("rate limited: %s %s (model %s)", ready.req.method.decode(),
                          ready.req.target.decode("latin-1"), name)
                self._write_instead(ready, refusal, lines)
                return
        admission = trouble.admission if trouble is not None else None
        if admission is not None:
            self.model = name

            def go() -> None:
                self._waiting_for = None
                self.stream = None
                self._slot = True
                self._send(ready, lines, fault, overrides)

            verdict = admission.enter(go)
            if verdict is None:
                self._write_instead(ready, app.errors().status_reply(503, name))
                return
            if verdict is False:   # wait in order: later requests queue behind this one
                self._waiting_for = go
                self.stream = Stream(self, Plan([], 0.0, 0.0), 0.0)
                self.waiting = REPLYING
                return
            self._slot = True
        self._send(ready, lines, fault, overrides)

    def _write_instead(self, ready: Ready, reply: Reply, lines: bytes = b"") -> None:
        """Write ``reply`` (an injected error, a refusal) in place of ``ready``'s, framed for
        the same connection."""
        instead = Ready(ready.req, reply, ready.close, not ready.chunked, False, False)
        instead.model = ready.model   # (counted and logged under the request's model)
        self._write_reply(instead, lines)

    def _send(self, ready: Ready, lines: bytes = b"", fault: Fault | None = None,
              overrides: Overrides | None = None) -> None:
        """Send a reply: at once, or the head of a stream now and its steps (or a whole
        delayed reply) when they are due; ``lines`` are its own header lines, ``fault`` and
        ``overrides`` what changes its pace or its end."""
        if ready.kind is NOW:
            self._write_reply(ready, lines)
            self._leave()
            return
        ident = IDS.new()
        pace = ready.pace
        assert pace is not None and self.transport is not None
        if lines:
            head_part, rest = ready.cut()
            now = b"%s%s%s" % (head_part, lines, ident.join(rest))
        else:
            now = ident.join(ready.now)
        ttft = itl = None
        if overrides is not None:
            ttft, itl = overrides.ttft, overrides.itl
        streams = self.scheduler.stats.active
        pause = fault.pause if fault is not None and fault.kind in ("stall", "slow") else 0.0
        head = b""
        if ready.kind is DELAYED:
            wait = pace.delay(ready.wait_steps, ready.prompt_tokens, streams, ttft, itl) + pause
            now = now.replace(PROCESSING_ZERO, b"openai-processing-ms: %d\r\n" % (wait * 1000), 1)
            plan = Plan([now], wait, 0.0)
        else:
            head = now
            assert ready.steps is not None
            plan = pace.plan([ident.join(s) for s in ready.steps], ready.prompt_tokens, streams,
                             ttft, itl)
            if fault is not None:
                self._befall(plan, fault, ready, ident)
        if ready.after is not None:
            ready.after(ident)
        self._metered(Meter.paced(ready, plan.ttft, plan.itl, len(plan.steps), plan.duration,
                                  fault.name if fault is not None else ""))
        self.model = ready.model.spec.id if ready.model is not None else ""
        self._close_after = ready.close or (fault is not None and fault.kind == "drop")
        self.waiting = REPLYING
        self.stream = self.scheduler.start(self, plan, head=head)

    def _befall(self, plan: Plan, fault: Fault, ready: Ready, ident: bytes) -> None:
        """Change a stream's plan by its fault: cut it (drop), end it with an error event
        (error), pause it (stall) or delay its first token (slow)."""
        steps = plan.steps
        count = len(steps)
        offsets = plan.offsets or [plan.due(k) for k in range(count)]
        if fault.kind == "slow":
            plan.offsets = [o + fault.pause for o in offsets]
            return
        at = fault.at
        if at is None:   # drawn: after the first content token, before the last step
            at = 2 + int(self.app.errors().rng.random() * max(1, count - 3))
        at = max(0, min(at, count - 1))
        if fault.kind == "stall":
            plan.offsets = offsets[:at] + [o + fault.pause for o in offsets[at:]]
        elif fault.kind == "drop":
            plan.steps, plan.offsets = steps[:at] or steps[:1], offsets[:at] or offsets[:1]
        else:   # error: the steps so far, then the error event, and the stream's end
            tail = error_tail(ident.join(ready.error_step.split(ID_MARK)), steps[:at])
            framed = stream_steps([tail], not ready.chunked, False)[0]
            plan.steps = [*steps[:at], framed]
            plan.offsets = [*offsets[:at], offsets[at]]

    def _leave(self) -> None:
        """Give back the reply's place in the admission, if it held one."""
        if self._slot:
            self._slot = False
            trouble = self.app.trouble
            if trouble is not None and trouble.admission is not None:
                trouble.admission.leave()

    @property
    def queued(self) -> bool:
        """The reply waits for a place in the admission (``--max-concurrency``)."""
        return self._waiting_for is not None

    def finished(self, stream: Stream) -> None:
        """The scheduler wrote the last step of ``stream``: on to the next request."""
        if stream is not self.stream and self.stream is not None:
            return
        self.stream = None
        self._leave()
        if self._close_after:
            self._close()
            return
        self.waiting = REPLYING
        self._pump()

    def _pump(self) -> None:
        """Answer queued requests until one needs the scheduler or the client stops reading."""
        queue = self._queue
        while queue and self.stream is None and self.transport is not None:
            if self.writing_paused:
                self._pause_reading()
                return
            item = queue.popleft()
            if item[0] is None:
                self.fail(item[1], item[2])  # type: ignore[arg-type]
                return
            self._answer(*item)  # type: ignore[arg-type]
        if self.transport is None or self.stream is not None:
            return
        if self._eof:
            self._close()
        elif self.reading_paused and not self.writing_paused:
            self._resume_reading()
        if not queue:
            self.settle()

    # -- errors and deadlines ------------------------------------------------------------------

    def fail(self, status: int, detail: str) -> None:
        """Answer a request we cannot read with an error and ``Connection: close``, then close.

        Only at a reply boundary: an error after half a response would corrupt it.
        """
        self.app.counters.protocol_errors += 1
        if self.transport is not None and self.stream is None:
            message = f"{_ERROR_MESSAGES.get(status, 'Bad request')}: {detail}"
            code = "request_too_large" if status in (413, 431) else None
            reply = error_reply(status, message, code=code)
            self.transport.write(whole_response(reply, reply.body, True))
        self._queue.clear()
        self._close()

    def body_too_large(self) -> tuple[int, str]:
        return 413, (f"it has over {self.app.config.max_body_bytes} bytes "
                     "(max_body_bytes).")

    def head_too_large(self, size: int) -> tuple[int, str]:
        return 431, (f"the head has over {size} bytes; this server accepts "
                     f"{self.app.config.max_header_bytes} (max_header_bytes).")

    def too_many_headers(self, count: int) -> tuple[int, str]:
        return 431, (f"the head has {count} fields; this server accepts "
                     f"{self.app.config.max_headers} (max_headers).")

    def expire(self) -> None:
        """The deadline passed: 408 for a request that is too slow, a silent close otherwise."""
        waiting, self.waiting = self.waiting, REPLYING
        if waiting is REQUEST:
            self.app.counters.timeouts += 1
            self.fail(408, f"it took longer than {self.app.config.request_timeout_s:g} s "
                           "(request_timeout_s).")
        else:
            self._close()

    # -- what a handler implements -------------------------------------------------------------

    def _parser_eof(self) -> None:
        """Tell the parser the client closed its side (it may complete or refuse a request)."""

    def _release(self) -> None:
        """Drop per-request buffers when the connection is lost."""

    # -- helpers -------------------------------------------------------------------------------

    def _close(self) -> None:
        """Close after the buffered writes; from now on nothing reads or writes here."""
        if self.transport is not None:
            self.transport.close()
            self.transport = None
            self.waiting = REPLYING
            self._queue.clear()

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self.reading_paused and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()
