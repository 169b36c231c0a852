"""One clock for every stream: a heap of due times and a single timer that wakes at the earliest.

Step k of a stream is due at ``start + ttft + k * itl`` (absolute times, so lateness never adds
up). Each wake-up sends, for every stream, everything that is due, joined into one write
straight to the connection's transport (steps are framed for the wire when they are planned).
There is no task and no timer per stream: one timer handle is re-armed for the earliest due
instant.

uvloop's timers count whole milliseconds (``call_later`` rounds to the nearest one), so a wake-up
sends every step due within ``EARLY`` of now instead of sleeping again for a fraction of a
millisecond.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any, Protocol

from .reply import Plan

#: Steps due this close to now go out in this wake-up (uvloop's timer granularity is 1 ms).
EARLY = 0.0005


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...


class Sink(Protocol):
    """What the scheduler writes to: the protocol of one connection (and its transport)."""

    @property
    def writing_paused(self) -> bool: ...

    @property
    def transport(self) -> Writer | None: ...

    def finished(self, stream: Stream) -> None: ...


class Stream:
    """One paced reply in flight."""

    __slots__ = ("sink", "plan", "start", "index", "alive", "parked")

    def __init__(self, sink: Sink, plan: Plan, start: float) -> None:
        self.sink = sink
        self.plan = plan
        self.start = start
        self.index = 0
        self.alive = True
        self.parked = False

    def next_due(self) -> float:
        return self.start + self.plan.due(self.index)


class Stats:
    """Pacing counters: lateness of every step sent, and streams by fate.

    Reported at GET /stats and in the log. A step is late by ``now - due`` when it is written.
    """

    __slots__ = ("steps", "late_1ms", "late_10ms", "worst_late", "active", "started",
                 "finished", "cancelled", "parked")

    def __init__(self) -> None:
        self.steps = 0
        self.late_1ms = 0
        self.late_10ms = 0
        self.worst_late = 0.0
        self.active = 0
        self.started = 0
        self.finished = 0
        self.cancelled = 0
        self.parked = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": {"active": self.active, "started": self.started,
                        "finished": self.finished, "cancelled": self.cancelled,
                        "parked_by_back_pressure": self.parked},
            "steps_sent": self.steps,
            "late_over_1ms": self.late_1ms,
            "late_over_10ms": self.late_10ms,
            "worst_late_ms": round(self.worst_late * 1000.0, 3),
        }

    def summary(self) -> str:
        return (f"pacing: {self.active} streams active, {self.steps} steps sent, "
                f"{self.late_1ms} late >1ms, {self.late_10ms} late >10ms, "
                f"worst {self.worst_late * 1000.0:.1f}ms")


TimerFactory = Callable[[float, Callable[[], None]], Any]


class Scheduler:
    """Paces every stream of the process with one timer."""

    __slots__ = ("_clock", "_call_later", "_heap", "_seq", "_timer", "_timer_due", "stats")

    def __init__(self, clock: Callable[[], float], call_later: TimerFactory | None) -> None:
        """``call_later(delay, fn)`` arms the single wake-up; None drives ticks by hand (tests)."""
        self._clock = clock
        self._call_later = call_later
        self._heap: list[tuple[float, int, Stream]] = []
        self._seq = itertools.count().__next__
        self._timer: Any = None
        self._timer_due = float("inf")
        self.stats = Stats()

    def start(self, sink: Sink, plan: Plan, start: float | None = None) -> Stream:
        """Begin pacing ``plan`` to ``sink``; step 0 is due ``plan.ttft`` after ``start``."""
        stream = Stream(sink, plan, self._clock() if start is None else start)
        self.stats.active += 1
        self.stats.started += 1
        self._push(stream)
        return stream

    def cancel(self, stream: Stream) -> None:
        """Forget a stream at once (its client went away); its heap entry is skipped later."""
        if stream.alive:
            stream.alive = False
            stream.plan = _EMPTY  # drop the frames now, not when the heap entry surfaces
            self.stats.active -= 1
            self.stats.cancelled += 1

    def resume(self, stream: Stream) -> None:
        """The sink can be written again: put a parked stream back on the clock."""
        if stream.alive and stream.parked:
            stream.parked = False
            self._push(stream)

    def pending(self) -> int:
        return self.stats.active

    def _push(self, stream: Stream) -> None:
        due = stream.next_due()
        heapq.heappush(self._heap, (due, self._seq(), stream))
        if due < self._timer_due:
            self._arm(due)

    def _arm(self, due: float) -> None:
        if self._call_later is None:
            self._timer_due = due
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = self._call_later(max(0.0, due - self._clock()), self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._timer_due = float("inf")
        self.tick()

    def tick(self) -> float | None:
        """Send everything due now; return the next due time (None when idle).

        The hot loop of the whole server under streaming load: due times are computed inline
        (no method calls per step), and the heap key of a stream is its next step's due time.
        """
        now = self._clock()
        horizon = now + EARLY
        heap = self._heap
        stats = self.stats
        pop = heapq.heappop
        while heap and heap[0][0] <= horizon:
            due, _, stream = pop(heap)
            if not stream.alive:
                continue
            sink = stream.sink
            if sink.writing_paused:
                # Back-pressure: wait for resume_writing instead of buffering without bound.
                stream.parked = True
                stats.parked += 1
                continue
            plan = stream.plan
            steps = plan.steps
            count = len(steps)
            offsets = plan.offsets
            base = stream.start + plan.ttft
            itl = plan.itl
            first = index = stream.index
            while True:
                late = now - due
                if late > 0.001:
                    stats.late_1ms += 1
                    if late > 0.01:
                        stats.late_10ms += 1
                    if late > stats.worst_late:
                        stats.worst_late = late
                index += 1
                if index == count:
                    break
                due = (stream.start + offsets[index]) if offsets is not None \
                    else base + index * itl
                if due > horizon:
                    break
            stream.index = index
            stats.steps += index - first
            data = steps[first] if index == first + 1 else b"".join(steps[first:index])
            transport = sink.transport
            if index == count:
                stream.alive = False
                stats.active -= 1
                stats.finished += 1
                if transport is not None:
                    transport.write(data)
                sink.finished(stream)
            else:
                heapq.heappush(heap, (due, self._seq(), stream))
                if transport is not None:
                    transport.write(data)
        if not heap:
            return None
        due = heap[0][0]
        if due < self._timer_due:
            self._arm(due)
        return due


_EMPTY = Plan([], 0.0, 0.0)
