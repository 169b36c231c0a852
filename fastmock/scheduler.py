"""One clock for every stream: a timing wheel of half-millisecond slots and a single timer.

Step k of a stream is due at ``start + ttft + k * itl`` (absolute times, so lateness never adds
up). A stream waits in the slot of its next due time; the slots that hold streams are kept in
order in a small heap (one entry per slot, not per stream), and one timer handle is armed for
the earliest. Each wake-up takes every slot that lies within ``EARLY`` of now and sends, for each
of its streams, every step that is due, joined into one write straight to the connection's
transport (steps are framed for the wire when they are planned). There is no task and no timer
per stream, and a step costs a list append to wait, not a heap push.

uvloop's timers count whole milliseconds, so a wake-up takes everything due within ``EARLY``
of now instead of sleeping again for a fraction of a millisecond: a step goes out at most
``EARLY`` before it is due, and late only when the process is too busy to wake in time.
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from .reply import Plan

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class Writer(Protocol):
        def write(self, data: bytes) -> None: ...

    class Sink(Protocol):
        """What the scheduler writes to: the protocol of one connection (and its transport)."""

        @property
        def writing_paused(self) -> bool: ...

        @property
        def transport(self) -> Writer | None: ...

        def finished(self, stream: Stream) -> None: ...

    TimerFactory = Callable[[float, Callable[[], None]], Any]

#: Steps due this close to now go out in this wake-up (uvloop's timer granularity is 1 ms).
EARLY = 0.0005
#: Slots per second: a slot spans EARLY, so a slot wholly within now + EARLY holds only steps
#: that may go out now, and none goes out late by design.
SLOTS = round(1 / EARLY)


class Stream:
    """One paced reply in flight: where it is, and what it needs to go on without lookups."""

    __slots__ = ("sink", "steps", "offsets", "start", "base", "itl", "index", "due", "alive",
                 "parked")

    def __init__(self, sink: Sink, plan: Plan, start: float) -> None:
        self.sink = sink
        self.steps = plan.steps
        self.offsets = plan.offsets
        self.start = start
        self.base = start + plan.ttft
        self.itl = plan.itl
        self.index = 0
        self.due = start + plan.due(0)
        self.alive = True
        self.parked = False

    @property
    def plan(self) -> Plan:
        return Plan(self.steps, self.base - self.start, self.itl, self.offsets)


class Stats:
    """Pacing counters: lateness of every step sent, and streams by fate.

    Reported at GET /stats and in the log. A step is late by ``now - due`` when it is written.
    """

    __slots__ = ("steps", "late_1ms", "late_10ms", "worst_late", "active", "started",
                 "finished", "cancelled", "parked", "wakes", "unpaced", "unpaced_steps")

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
        self.wakes = 0
        #: Streams with nothing to wait for, written whole at once (not paced), and their steps.
        self.unpaced = 0
        self.unpaced_steps = 0

    def sent_whole(self, steps: int, times: int = 1) -> None:
        """A stream of ``steps`` that waited for nothing went out in one write, ``times``
        times (counted from the metrics' records, not per request)."""
        self.unpaced += times
        self.unpaced_steps += steps * times

    def as_dict(self) -> dict[str, Any]:
        return {
            "streams": {"active": self.active, "started": self.started + self.unpaced,
                        "finished": self.finished + self.unpaced, "cancelled": self.cancelled,
                        "parked_by_back_pressure": self.parked,
                        "sent_whole_unpaced": self.unpaced},
            "steps_sent": self.steps + self.unpaced_steps,
            "late_over_1ms": self.late_1ms,
            "late_over_10ms": self.late_10ms,
            "worst_late_ms": round(self.worst_late * 1000.0, 3),
            "wakeups": self.wakes,
        }

    def summary(self) -> str:
        return (f"pacing: {self.active} streams active, {self.steps + self.unpaced_steps} "
                f"steps sent ({self.unpaced_steps} unpaced), "
                f"{self.late_1ms} late >1ms, {self.late_10ms} late >10ms, "
                f"worst {self.worst_late * 1000.0:.1f}ms")



class Scheduler:
    """Paces every stream of the process with one timer."""

    __slots__ = ("_clock", "_call_later", "_slots", "_order", "_timer", "_timer_slot", "stats")

    def __init__(self, clock: Callable[[], float], call_later: TimerFactory | None) -> None:
        """``call_later(delay, fn)`` arms the single wake-up; None drives ticks by hand (tests)."""
        self._clock = clock
        self._call_later = call_later
        #: Slot number (``floor(due * SLOTS)``) -> the streams whose next step falls in it.
        self._slots: dict[int, list[Stream]] = {}
        #: The slot numbers in ``_slots``, smallest first.
        self._order: list[int] = []
        self._timer: Any = None
        self._timer_slot = math.inf
        self.stats = Stats()

    def start(self, sink: Sink, plan: Plan, start: float | None = None,
              head: bytes = b"") -> Stream:
        """Begin pacing ``plan`` to ``sink``; step 0 is due ``plan.ttft`` after ``start``.

        ``head`` (a stream's status line and headers) is written at once, with step 0 when
        that is due now (no time to first token): one write, and no wake-up for it.
        """
        now = self._clock()
        stream = Stream(sink, plan, now if start is None else start)
        stats = self.stats
        stats.active += 1
        stats.started += 1
        transport = sink.transport
        if stream.due <= now + EARLY and plan.steps and not sink.writing_paused:
            stats.steps += 1
            head += plan.steps[0]
            stream.index = 1
            if len(plan.steps) == 1:
                stream.alive = False
                stats.active -= 1
                stats.finished += 1
                if transport is not None:
                    transport.write(head)
                sink.finished(stream)
                return stream
            stream.due = stream.start + plan.due(1)
        if head and transport is not None:
            transport.write(head)
        self._push(stream)
        return stream

    def cancel(self, stream: Stream) -> None:
        """Forget a stream at once (its client went away); its slot entry is skipped later."""
        if stream.alive:
            stream.alive = False
            stream.steps = []   # drop the frames now, not when the slot comes round
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
        slot = int(stream.due * SLOTS)
        streams = self._slots.get(slot)
        if streams is not None:
            streams.append(stream)
            return
        self._slots[slot] = [stream]
        heapq.heappush(self._order, slot)
        if slot < self._timer_slot:
            self._arm(slot)

    def _arm(self, slot: int) -> None:
        self._timer_slot = slot
        if self._call_later is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        # uvloop rounds a delay to whole milliseconds, half a millisecond down to nothing: a
        # delay rounded up keeps the loop from spinning until the slot is due.
        delay = (slot + 1) / SLOTS - EARLY - self._clock()
        self._timer = self._call_later(
            math.ceil(delay * 1000.0 - 1e-6) / 1000.0 if delay > 0 else 0.0, self._wake)

    def _wake(self) -> None:
        self._timer = None
        self._timer_slot = math.inf
        self.stats.wakes += 1
        self.tick()

    def tick(self) -> float | None:
        """Send everything due now; return when the next slot is due (None when idle).

        The hot loop of the whole server under streaming load: due times are computed inline
        (no method calls per step), and a stream waits for its next step in that step's slot.
        """
        now = self._clock()
        horizon = now + EARLY
        last = int(horizon * SLOTS + 1e-6) - 1   # slots wholly within it (a ns of float slack)
        order = self._order
        slots = self._slots
        stats = self.stats
        pop = heapq.heappop
        while order and order[0] <= last:
            for stream in slots.pop(pop(order)):
                if not stream.alive:
                    continue
                sink = stream.sink
                if sink.writing_paused:
                    # Back-pressure: wait for resume_writing instead of buffering without bound.
                    stream.parked = True
                    stats.parked += 1
                    continue
                steps = stream.steps
                count = len(steps)
                offsets = stream.offsets
                due = stream.due
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
                        else stream.base + index * stream.itl
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
                    continue
                stream.due = due
                slot = int(due * SLOTS)
                waiting = slots.get(slot)
                if waiting is None:
                    slots[slot] = [stream]
                    heapq.heappush(order, slot)
                else:
                    waiting.append(stream)
                if transport is not None:
                    transport.write(data)
        if not order:
            return None
        slot = order[0]
        if slot < self._timer_slot:
            self._arm(slot)
        return (slot + 1) / SLOTS - EARLY


_EMPTY = Plan([], 0.0, 0.0)
