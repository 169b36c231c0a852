"""Trouble on demand: injected faults, rate limits that are real, and admission that saturates.

Everything here is decided per request after the reply is known (its model, its length) and
before a byte of it goes out; the route only formats. When nothing is configured, the server
holds no ``Trouble`` at all and the replay path pays one ``is None`` test.

- **Faults** (``--faults "429:0.05,drop:0.01"``, per model too): an error status with
  OpenAI's body and the retry headers, or something that happens to a stream: ``drop`` (the
  connection is cut after some tokens), ``error`` (an error event, then the end), ``stall``
  (a pause mid-stream) or ``slow`` (a late first token). Rates of 0 are dropped when parsed.
  One seeded generator (``--fault-seed``) draws them, so a run can be repeated.
- **Rate limits** (``--rpm``, ``--tpm``): a bucket per API key (per model without keys),
  enforced per second as OpenAI quantizes per-minute limits; every reply then carries OpenAI's
  ``x-ratelimit-*`` headers and a refused one gets 429 with the exact wait.
- **Admission** (``--max-concurrency``, ``--max-queue``): at most N replies are being
  generated; the rest wait in order (their time to first token grows), and beyond the queue
  they are refused with 503.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from time import monotonic as _monotonic
from typing import TYPE_CHECKING, Any

from .frames import error_reply
from .reply import Header, Reply

if TYPE_CHECKING:
    import random

    from .ready import Parts, Ready

#: Statuses that can be injected, with OpenAI's error for each: (type, code, message).
STATUSES: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "We could not process your request. Please check "
          "the request body and try again."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided. You can "
          "find your API key at https://platform.openai.com/account/api-keys."),
    403: ("permission_error", "unsupported_country_region_territory", "Country, region, or "
          "territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist or "
          "you do not have access to it."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for {model} in organization "
          "org-fastmock on requests per min (RPM): Limit {rpm}, Used {rpm}, Requested 1. "
          "Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits "
          "to learn more."),
    500: ("server_error", None, "The server had an error while processing your request. "
          "Sorry about that!"),
    502: ("server_error", "bad_gateway", "Bad gateway."),
    503: ("service_unavailable_error", "server_is_overloaded", "The engine is currently "
          "overloaded, please try again later."),
    504: ("server_error", "gateway_timeout", "Gateway timeout."),
}
#: What a stream can suffer (a whole reply suffers it too, as said in the README).
STREAM_KINDS = ("drop", "error", "stall", "slow")


class FaultError(ValueError):
    """A fault list or a fault header that cannot be read; the message says why."""


class Fault:
    """One fault that befalls one request."""

    __slots__ = ("kind", "status", "at", "pause")

    def __init__(self, kind: str, status: int = 0, at: int | None = None,
                 pause: float = 0.0) -> None:
        self.kind = kind        #: "status" or one of STREAM_KINDS
        self.status = status    #: for "status"
        self.at = at            #: the token after which it happens (None: drawn)
        self.pause = pause      #: seconds, for "stall" and "slow"

    @property
    def name(self) -> str:
        return str(self.status) if self.kind == "status" else self.kind


def parse_fault_list(spec: str) -> tuple[tuple[str, float], ...]:
    """``"429:0.05,500:0.01,drop:0.01"`` -> ((kind, rate), ...) without the rates of 0."""
    out: list[tuple[str, float]] = []
    for item in (i.strip() for i in spec.split(",")):
        if not item:
            continue
        kind, sep, rate_text = item.partition(":")
        kind = kind.strip().lower()
        if not sep:
            raise FaultError(f"{item!r} needs a rate, as in {kind}:0.01")
        if kind not in STREAM_KINDS and not (kind.isdigit() and int(kind) in STATUSES):
            raise FaultError(f"unknown fault {kind!r}; known: "
                             f"{', '.join(map(str, STATUSES))}, {', '.join(STREAM_KINDS)}")
        try:
            rate = float(rate_text)
        except ValueError:
            raise FaultError(f"the rate of {kind!r} must be a number, not {rate_text!r}") \
                from None
        if not 0.0 <= rate <= 1.0:
            raise FaultError(f"the rate of {kind!r} must be between 0 and 1, not {rate:g}")
        if rate > 0:
            out.append((kind, rate))
    if sum(rate for _, rate in out) > 1.0 + 1e-9:
        raise FaultError("the rates add up to more than 1")
    return tuple(out)


def parse_fault_header(value: str, stall_ms: float) -> Fault:
    """``x-fastmock-fault``: ``429``, ``drop``, ``drop:5`` (after 5 tokens), ``error:5``,
    ``stall:3000`` (ms, after a drawn token), ``slow:2000`` (ms before the first token)."""
    kind, _, arg = value.strip().lower().partition(":")
    if kind.isdigit():
        if int(kind) not in STATUSES:
            raise FaultError(f"x-fastmock-fault: status {kind} cannot be injected; known: "
                             f"{', '.join(map(str, STATUSES))}")
        return Fault("status", int(kind))
    if kind not in STREAM_KINDS:
        raise FaultError(f"x-fastmock-fault: unknown fault {kind!r}; use a status, or "
                         f"{', '.join(STREAM_KINDS)} (drop:5, error:5, stall:3000, slow:2000)")
    number: float | None = None
    if arg:
        try:
            number = float(arg)
        except ValueError:
            raise FaultError(f"x-fastmock-fault: {kind} takes a number, not {arg!r}") from None
        if number < 0:
            raise FaultError(f"x-fastmock-fault: {kind} takes a number >= 0")
    if kind in ("drop", "error"):
        return Fault(kind, at=None if number is None else int(number))
    return Fault(kind, pause=(stall_ms if number is None else number) / 1000.0)


class Faults:
    """The fault rates of a model, drawn by one generator."""

    __slots__ = ("kinds", "total", "stall")

    def __init__(self, rates: tuple[tuple[str, float], ...], stall_ms: float) -> None:
        kinds: list[tuple[float, str]] = []
        total = 0.0
        for kind, rate in rates:
            total += rate
            kinds.append((total, kind))
        self.kinds = kinds
        self.total = total
        self.stall = stall_ms / 1000.0

    def roll(self, rng: random.Random) -> Fault | None:
        r = rng.random()
        if r >= self.total:
            return None
        for edge, kind in self.kinds:
            if r < edge:
                if kind.isdigit():
                    return Fault("status", int(kind))
                return Fault(kind, pause=self.stall)
        return None


# -- rate limits -------------------------------------------------------------------------------

def duration(seconds: float) -> bytes:
    """OpenAI's (Go's) duration format: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1.0:
        return b"%dms" % round(seconds * 1000.0)
    if seconds < 60.0:
        return (b"%.3f" % seconds).rstrip(b"0").rstrip(b".") + b"s"
    minutes, secs = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    secs_text = (b"%.3f" % secs).rstrip(b"0").rstrip(b".")
    return (b"%dh" % hours if hours else b"") + b"%dm%ss" % (minutes, secs_text)


class Bucket:
    """One per-minute limit, enforced per second (OpenAI quantizes its limits the same way): a
    token bucket of a second's worth (at least one), refilled continuously, kept as the time at
    which it would be full again (GCRA), so taking from it is a few float operations.

    A request that costs more than a second's worth is let through when the bucket is full (a
    long prompt under a tokens-per-minute limit) and empties it for as long as it costs; one
    that costs more than the whole per-minute limit never goes through, as at OpenAI.
    """

    __slots__ = ("limit", "interval", "burst", "window", "full_at", "template")

    def __init__(self, limit: int, name: bytes) -> None:
        self.limit = limit
        self.interval = 60.0 / limit          # seconds one unit takes to come back
        self.burst = max(1.0, limit / 60.0)   # units a full bucket holds
        self.window = self.burst * self.interval
        self.full_at = 0.0
        self.template = (b"x-ratelimit-limit-%s: %d\r\nx-ratelimit-remaining-%s: %%d\r\n"
                         b"x-ratelimit-reset-%s: %%s\r\n" % (name, limit, name, name))

    def take(self, now: float, cost: float) -> float:
        """Take ``cost`` units now: 0.0 if granted, else how many seconds until it would be."""
        start = self.full_at if self.full_at > now else now
        after = start + cost * self.interval
        window = self.window
        if after - now <= window or (start == now and cost <= self.limit):
            self.full_at = after
            return 0.0
        if cost > self.limit:
            return math.inf
        return after - now - window

    def header_lines(self, now: float) -> bytes:
        """``x-ratelimit-{limit,remaining,reset}-<name>`` as they stand after a take."""
        ahead = self.full_at - now
        if ahead < 0.0:
            ahead = 0.0
        remaining = int(self.burst - ahead / self.interval + 1e-9)
        return self.template % (remaining if remaining > 0 else 0,
                                b"%dms" % round(ahead * 1000.0) if ahead < 1.0
                                else duration(ahead))


class Pair:
    """One caller's buckets (requests, tokens), and its credit for this turn of the event loop.

    Taking from a bucket needs the clock. Within one turn of the loop (the requests read in
    one poll), a caller's requests for the same kept reply are instead counted against a
    credit: how many more of them the buckets held when the first one was taken. What was
    used of it is put into the buckets, as taken at that first instant, when the turn ends (or
    earlier, when the caller asks for something else). The buckets refill meanwhile, so the
    credit never lets through a request the exact buckets would have refused; the replies of
    one turn carry the header lines of its first one.

    Counted by model (no API keys), the credit is kept on the reply itself (``Ready.credit``),
    so a request that uses it costs one attribute; counted by key, it is kept here. Counted by
    model with more room in the buckets than a turn can use, the reply is lent the parts with
    the header lines instead and costs nothing per request (``Limits.grant``): for the turn,
    or for the rest of the second when the buckets hold more than a second can use.
    """

    __slots__ = ("requests", "tokens", "ready", "on_ready", "parts", "credit", "given",
                 "taken_at", "settling", "shown", "shown_for", "shown_parts", "lent", "mark",
                 "kept_now", "sent")

    def __init__(self, requests: Bucket | None, tokens: Bucket | None,
                 sent: list[Any]) -> None:
        self.requests = requests
        self.tokens = tokens
        #: The kept reply the credit is for, and its parts with the header lines spliced in.
        self.ready: Ready | None = None
        self.on_ready = False   # the credit is kept in ``ready.credit``, not ``credit``
        self.parts: Parts = ()
        #: Requests of ``ready`` that may still go without the clock (an int: those up to
        #: MAX_CREDIT are shared objects, so counting them down allocates nothing).
        self.credit = 0
        self.given = 0          # the credit as it was given
        self.taken_at = 0.0
        self.settling = False   # a settle() is due at the end of this turn
        #: The figures last written into a reply's header lines, the reply's parts they were
        #: written into (new ones when it is framed again for a new second), and the result.
        self.shown: tuple[float, ...] = ()
        self.shown_for: Parts = ()
        self.shown_parts: Parts = ()
        #: The reply's own parts were swapped for ``parts`` for the rest of the turn (its
        #: ``gate`` opened), with ``kept_now`` its own; its records in the metrics' list from
        #: ``mark`` on are what was sent.
        self.lent = False
        self.mark = 0
        self.kept_now: Parts = ()
        self.sent = sent   #: the metrics' list of records (see ``metrics.Meter.sent``)

    def settle(self) -> None:
        """Put the credit used since it was given into the buckets; no credit is left."""
        ready = self.ready
        if ready is None:
            self.settling = False
            return
        if self.lent:   # every record of the reply since the mark, but the first (taken)
            used = self.sent[self.mark:].count(ready) - 1
            if ready.now is self.parts:   # (not framed again for a new second since)
                ready.now = self.kept_now
            ready.gate = ready.trouble
            self.lent = False
            self.kept_now = ()
        else:
            left = ready.credit if self.on_ready else self.credit
            used = self.given - left
        if used > 0:
            at = self.taken_at
            requests, tokens = self.requests, self.tokens
            if requests is not None:
                full = requests.full_at
                requests.full_at = (full if full > at else at) + used * requests.interval
            if tokens is not None:
                full = tokens.full_at
                tokens.full_at = ((full if full > at else at)
                                  + used * ready.tokens * tokens.interval)
        if self.on_ready:
            ready.credit = 0
        self.credit = self.given = 0
        self.ready = None
        self.settling = False


#: Most credit given at once (one turn of the loop rarely reads more requests than this).
MAX_CREDIT = 256

#: More replies than one process can send in a second (it replays a kept reply 60,000-80,000
#: times a second on one core of the bench machine; each costs microseconds of Python):
#: buckets that hold this many more lend a reply its header lines until the next tick of the
#: clock, the second's end, rather than for one turn of the loop.
SECOND_MOST = 1_000_000


class Limits:
    """Buckets per API key (or per model without keys) for requests and tokens per minute."""

    __slots__ = ("rpm", "tpm", "buckets", "soon", "template", "sent", "lent")

    def __init__(self, rpm: int, tpm: int,
                 soon: Callable[[Callable[[], None]], object] | None = None,
                 sent: list[Any] | None = None) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.buckets: dict[Any, Pair] = {}
        #: The loop's call_soon, to settle credit when a turn ends; None: no credit (tests).
        self.soon = soon
        #: The metrics' list of records of replies sent (``metrics.Meter.sent``): how many
        #: times a reply whose parts were lent went out is counted there.
        self.sent: list[Any] = [] if sent is None else sent
        #: Pairs that lent a reply its parts in this turn (see ``settle_lent``).
        self.lent: list[Pair] = []
        #: The header lines of the limits that are set, for (remaining, reset in ms) each:
        #: what Bucket.header_lines makes, in one step when the resets are under a second,
        #: each line begun with its CRLF (they go after the x-request-id line's id).
        self.template = b"".join(
            b"\r\nx-ratelimit-limit-%s: %d\r\nx-ratelimit-remaining-%s: %%d\r\n"
            b"x-ratelimit-reset-%s: %%.0fms" % (name, limit, name, name)
            for name, limit in ((b"requests", rpm), (b"tokens", tpm)) if limit)

    def pair(self, who: Any) -> Pair:
        found = self.buckets.get(who)
        if found is None:
            if len(self.buckets) >= 65536:
                for pair in self.buckets.values():
                    pair.settle()
                self.buckets.clear()
            found = self.buckets[who] = Pair(
                Bucket(self.rpm, b"requests") if self.rpm else None,
                Bucket(self.tpm, b"tokens") if self.tpm else None, self.sent)
        return found

    def settle_lent(self) -> None:
        """Settle every pair that lent a reply its parts (before the metrics' records that
        count what was sent are folded away)."""
        for pair in self.lent:
            if pair.lent:
                pair.settle()
        self.lent.clear()

    def grant(self, who: Any, ready: Ready, room: float = math.inf) -> Parts | None:
        """One request for ``ready`` by ``who`` (a model id, or an API key), beyond its credit:
        take one request and the reply's tokens from the buckets, give credit for more of the
        same in this turn, and return the reply's parts with the header lines spliced in.
        None (and nothing taken): not the plain case (over a limit, or a reply bigger than a
        second's worth); the long way (``Trouble.limited``) answers it.

        Counted by model, when the buckets hold at least ``room`` more (what this turn is
        expected to send at most: the protocol says how many), the credit is not counted down
        at all: the reply's own parts are swapped for the ones with the header lines and its
        ``gate`` opened, so the rest of the turn replays it as a server without trouble would;
        when the turn ends, what went out is counted from the metrics' records. When they
        hold SECOND_MOST more, the same lasts until the clock's tick ends the second (the
        metrics' fold settles it, and the reply is framed again for the new second), so a
        busy server asks the buckets once a second, not once a turn.

        It does what ``Bucket.take`` and ``Bucket.header_lines`` do, inline and for both
        buckets in one format: written with those methods (and a cache of the lines in the
        bucket) idle trouble cost +6.0 % instructions per request over plain instead of
        +3.4-3.9 % (callgrind, bench/cost.py, 1024 requests).
        """
        pair = self.buckets.get(who)
        if pair is None:
            pair = self.pair(who)
        if pair.ready is not None:
            if pair.ready is ready and pair.credit:   # counted by key, within the credit
                pair.credit -= 1
                return pair.parts
            pair.settle()
        now = _monotonic()
        requests, tokens = pair.requests, pair.tokens
        cost = ready.tokens
        # Each bucket, once taken from, is (ahead) seconds from full: under a second here
        # (written in ms, up to 999ms).
        credit: float = math.inf if self.soon is not None else 0   # (whole numbers)
        values: tuple[float, ...] = ()
        if requests is not None:
            full = requests.full_at
            if full > now:
                r_full = full + requests.interval
                r_ahead = r_full - now
            else:   # full: the same figures as the last time the bucket was full
                r_ahead = requests.interval
                r_full = now + r_ahead
            if r_ahead >= 0.9995 or r_ahead > requests.window:
                return None
            left = (requests.burst - r_ahead / requests.interval + 1e-9) // 1.0
            if left < credit:
                credit = left
            values = (left, r_ahead * 1000.0)
        if tokens is not None:
            full = tokens.full_at
            if full > now:
                t_full = full + cost * tokens.interval
                t_ahead = t_full - now
            else:
                t_ahead = cost * tokens.interval
                t_full = now + t_ahead
            if t_ahead >= 0.9995 or t_ahead > tokens.window:
                return None
            left = tokens.burst - t_ahead / tokens.interval + 1e-9
            if cost and left // cost < credit:
                credit = left // cost
            values = (*values, left, t_ahead * 1000.0)
            tokens.full_at = t_full
        if requests is not None:
            requests.full_at = r_full
        now_parts = ready.now   # (head up to "x-request-id: req_", the rest from its end)
        if values == pair.shown and now_parts is pair.shown_for:
            parts = pair.shown_parts   # (a bucket that was full again: as the last time)
        else:   # (new figures, or the reply itself was framed again for a new second)
            parts = (now_parts[0], self.template % values + now_parts[1], *now_parts[2:])
            pair.shown, pair.shown_for, pair.shown_parts = values, now_parts, parts
        if who is ready.limited_as and credit >= min(room, SECOND_MOST):   # lend these parts
            pair.ready, pair.parts, pair.given, pair.taken_at = ready, parts, 0, now
            pair.lent, pair.mark, pair.kept_now = True, len(self.sent), now_parts
            pair.on_ready = False
            ready.now, ready.gate = parts, None
            if len(self.lent) >= 4096:   # (the metrics' fold settles them once a second)
                self.lent[:] = [p for p in self.lent if p.lent]
            self.lent.append(pair)
            if credit < SECOND_MOST and not pair.settling:   # (else: the clock's tick)
                pair.settling = True
                self.soon(pair.settle)  # type: ignore[misc]
        elif credit > 0:
            credit = int(credit if credit < MAX_CREDIT else MAX_CREDIT)
            pair.ready, pair.parts, pair.given, pair.taken_at = ready, parts, credit, now
            if who is ready.limited_as:   # counted by model: the credit goes on the reply
                pair.on_ready = True
                ready.credit, ready.spliced = credit, parts
            else:
                pair.on_ready = False
                pair.credit = credit
            if not pair.settling:
                pair.settling = True
                self.soon(pair.settle)  # type: ignore[misc]
        return parts


# -- admission ---------------------------------------------------------------------------------

class Admission:
    """At most ``limit`` replies in generation; the rest wait in order, up to ``queue_limit``."""

    __slots__ = ("limit", "queue_limit", "active", "waiting", "admitted", "refused", "most")

    def __init__(self, limit: int, queue_limit: int) -> None:
        self.limit = limit
        self.queue_limit = queue_limit
        self.active = 0
        self.waiting: deque[Callable[[], None]] = deque()
        self.admitted = 0
        self.refused = 0
        self.most = 0

    def enter(self, go: Callable[[], None]) -> bool | None:
        """True: go now (a place is taken). False: ``go`` will be called when a place frees.
        None: the queue is full (refused)."""
        if self.active < self.limit and not self.waiting:
            self.active += 1
            self.admitted += 1
            return True
        if self.queue_limit and len(self.waiting) >= self.queue_limit:
            self.refused += 1
            return None
        self.waiting.append(go)
        self.most = max(self.most, len(self.waiting))
        return False

    def leave(self) -> None:
        """A reply is done: the next waiting one takes the place."""
        self.active -= 1
        self.leave_all()

    def leave_all(self) -> None:
        """Admit whoever the current limit lets in (after the limit changed)."""
        while self.waiting and self.active < self.limit:
            go = self.waiting.popleft()
            self.active += 1
            self.admitted += 1
            go()

    def withdraw(self, go: Callable[[], None]) -> None:
        """A waiting client went away."""
        try:
            self.waiting.remove(go)
        except ValueError:
            pass


# -- the whole of it ---------------------------------------------------------------------------

class Trouble:
    """What a server with faults, limits or admission configured decides per request."""

    __slots__ = ("rng", "limits", "admission", "fault_replies", "retry_after_ms", "counts",
                 "lean")

    def __init__(self, seed: int | None, limits: Limits | None, admission: Admission | None,
                 retry_after_ms: float) -> None:
        import random  # (only with trouble configured)

        self.rng = random.Random(seed)
        self.limits = limits
        self.admission = admission
        #: The limits, when they are all the trouble there is (no faults configured, no
        #: admission): a reply that goes out at once then only asks ``Limits.grant``.
        self.lean: Limits | None = None
        self.retry_after_ms = retry_after_ms
        self.fault_replies: dict[tuple[int, str], Reply] = {}
        #: Faults injected, by name ("429", "drop", ...), and refusals by the limits.
        self.counts: dict[str, int] = {}

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def status_reply(self, status: int, model: str, wait: float | None = None) -> Reply:
        """OpenAI's error for ``status`` (429 and 503 with ``retry-after`` and
        ``retry-after-ms``), marked with ``x-fastmock-fault``."""
        key = (status, model)
        found = self.fault_replies.get(key) if wait is None else None
        if found is not None:
            return found
        type_, code, message = STATUSES[status]
        seconds = self.retry_after_ms / 1000.0 if wait is None else wait
        extra: tuple[Header, ...] = ((b"x-fastmock-fault", b"%d" % status),)
        if status in (429, 503):
            extra = ((b"retry-after", b"%d" % math.ceil(seconds)),
                     (b"retry-after-ms", b"%d" % math.ceil(seconds * 1000.0)), *extra)
        rpm = self.limits.rpm if self.limits is not None and self.limits.rpm else 3
        reply = error_reply(status, message.format(model=model, rpm=rpm,
                                                   wait=duration(seconds).decode()),
                            type_, None, code, extra=extra)
        if wait is None:
            if len(self.fault_replies) >= 1024:
                self.fault_replies.clear()
            self.fault_replies[key] = reply
        return reply

    def limited(self, who: Any, model: str, tokens: int) -> tuple[bytes, Reply | None]:
        """Take one request and ``tokens`` tokens from ``who``'s buckets: the header lines to
        send, and the 429 to send instead when a limit is reached (with the lines of the
        buckets as they stand, as OpenAI sends them on a 429 too)."""
        assert self.limits is not None
        pair = self.limits.pair(who)
        pair.settle()
        requests, token_bucket = pair.requests, pair.tokens
        now = _monotonic()
        lines = b""
        if requests is not None:
            wait = requests.take(now, 1.0)
            if wait:
                self.count("rate_limited_requests")
                lines = requests.header_lines(now)
                if token_bucket is not None:
                    lines += token_bucket.header_lines(now)
                return lines, self._refused(requests, model, wait, "requests", 1)
            lines = requests.header_lines(now)
        if token_bucket is not None:
            wait = token_bucket.take(now, float(tokens))
            if wait:
                if requests is not None:   # give the request back: it was not served
                    requests.full_at -= requests.interval
                    lines = requests.header_lines(now)
                self.count("rate_limited_tokens")
                lines += token_bucket.header_lines(now)
                return lines, self._refused(token_bucket, model, wait, "tokens", tokens)
            lines += token_bucket.header_lines(now)
        return lines, None

    def _refused(self, bucket: Bucket, model: str, wait: float, what: str,
                 asked: int) -> Reply:
        unit = "RPM" if what == "requests" else "TPM"
        if wait == math.inf:
            message = (f"Request too large for {model} in organization org-fastmock on "
                       f"{what} per min ({unit}): Limit {bucket.limit}, Requested {asked}. "
                       "The input or output tokens must be reduced in order to run "
                       "successfully. Visit https://platform.openai.com/account/rate-limits "
                       "to learn more.")
            return error_reply(429, message, what, None, "rate_limit_exceeded")
        text = duration(wait).decode()
        message = (f"Rate limit reached for {model} in organization org-fastmock on {what} "
                   f"per min ({unit}): Limit {bucket.limit}, Used {bucket.limit}, Requested "
                   f"{asked}. Please try again in {text}. Visit "
                   "https://platform.openai.com/account/rate-limits to learn more.")
        return error_reply(429, message, what, None, "rate_limit_exceeded", extra=(
            (b"retry-after", b"%d" % math.ceil(wait)),
            (b"retry-after-ms", b"%d" % math.ceil(wait * 1000.0))))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate_limited": dict(sorted(self.counts.items()))}
        if self.admission is not None:
            a = self.admission
            out["admission"] = {"max_concurrency": a.limit, "max_queue": a.queue_limit,
                                "active": a.active, "queued": len(a.waiting),
                                "most_queued": a.most, "admitted": a.admitted,
                                "refused_queue_full": a.refused}
        if self.limits is not None:
            out["limits"] = {"rpm": self.limits.rpm, "tpm": self.limits.tpm,
                             "buckets": len(self.limits.buckets)}
        return out


# -- per-request control -----------------------------------------------------------------------

#: The request headers that change a reply when request_overrides is on (lower case).
OVERRIDE_PREFIX = b"x-fastmock-"


class Overrides:
    """What a request asked for with ``x-fastmock-*`` headers."""

    __slots__ = ("ttft", "itl", "tokens", "fault")

    def __init__(self) -> None:
        self.ttft: float | None = None      #: seconds
        self.itl: float | None = None       #: seconds
        self.tokens: int | None = None      #: the reply's length, exactly
        self.fault: Fault | None = None


def read_overrides(headers: list[Header], stall_ms: float) -> Overrides | None:
    """The overrides among ``headers`` (lower-case names), None when there are none; raises
    FaultError with a message for the client when one cannot be read."""
    found: Overrides | None = None
    for name, raw in headers:
        if not name.startswith(OVERRIDE_PREFIX):
            continue
        found = found or Overrides()
        what = name[len(OVERRIDE_PREFIX):].decode("latin-1")
        value = raw.decode("latin-1").strip()
        if what == "fault":
            found.fault = parse_fault_header(value, stall_ms)
            continue
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if what in ("ttft-ms", "itl-ms"):
            if not 0.0 <= number <= 3_600_000.0:
                raise FaultError(f"x-fastmock-{what} must be a number of milliseconds from 0 "
                                 f"to 3600000, not {value!r}")
            if what == "ttft-ms":
                found.ttft = number / 1000.0
            else:
                found.itl = number / 1000.0
        elif what == "tokens":
            if not (number.is_integer() and 1 <= number <= 1_000_000):
                raise FaultError(f"x-fastmock-tokens must be a whole number of tokens from 1 "
                                 f"to 1000000, not {value!r}")
            found.tokens = int(number)
        else:
            raise FaultError(f"unknown header x-fastmock-{what}; known: x-fastmock-ttft-ms, "
                             "x-fastmock-itl-ms, x-fastmock-tokens, x-fastmock-fault")
    return found
