"""The single clock: absolute due times, coalescing, lateness, back-pressure, cancellation."""

from __future__ import annotations

from typing import Any

import pytest

from fastmock.reply import Plan
from fastmock.scheduler import Scheduler, Stream
from helpers import FakeClock


class Sink:
    """A connection as the scheduler sees it: it writes to the transport, then says when a
    stream is finished; ``got`` records (time, bytes written, whether it was the last)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.writing_paused = False
        self.got: list[tuple[float, bytes, bool]] = []
        self.transport = self

    def write(self, data: bytes) -> None:
        self.got.append((round(self.clock.now - 1000.0, 6), data, False))

    def finished(self, stream: Stream) -> None:
        when, data, _ = self.got[-1]
        self.got[-1] = (when, data, True)


def steps(n: int) -> list[bytes]:
    return [b"s%d;" % i for i in range(n)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


def test_steps_fire_at_absolute_times(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    sched.start(sink, Plan(steps(4), ttft=0.1, itl=0.02))
    assert sched.tick() == pytest.approx(1000.1)
    assert sink.got == []
    for k in range(4):
        clock.now = 1000.1 + k * 0.02
        sched.tick()
    assert [g[1] for g in sink.got] == steps(4)
    assert [g[2] for g in sink.got] == [False, False, False, True]
    assert sched.stats.late_1ms == 0 and sched.stats.finished == 1 and sched.pending() == 0


def test_late_wakeup_coalesces_and_does_not_shift_later_steps(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    sched.start(sink, Plan(steps(5), ttft=0.005, itl=0.02))
    clock.now = 1000.050          # steps 0, 1 and 2 are due (5, 25, 45 ms): one write
    nxt = sched.tick()
    assert sink.got == [(0.05, b"s0;s1;s2;", False)]
    assert nxt == pytest.approx(1000.065)  # step 3 stays at 65 ms: lateness does not add up
    assert sched.stats.late_1ms == 3 and sched.stats.late_10ms == 2
    assert sched.stats.worst_late == pytest.approx(0.045)
    clock.now = 1000.065
    sched.tick()
    assert sink.got[-1] == (0.065, b"s3;", False)


def test_a_first_step_due_now_goes_with_the_head(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    sched.start(sink, Plan(steps(3), ttft=0.0, itl=0.01), head=b"head;")
    assert sink.got == [(0.0, b"head;s0;", False)] and sched.stats.steps == 1
    sched.start(sink, Plan(steps(1), ttft=0.0, itl=0.0), head=b"h;")
    assert sink.got[-1] == (0.0, b"h;s0;", True) and sched.stats.finished == 1
    sched.start(sink, Plan(steps(2), ttft=0.05, itl=0.01), head=b"later;")
    assert sink.got[-1] == (0.0, b"later;", False)   # only the head: step 0 waits 50 ms


def test_steps_within_half_a_millisecond_go_out_now(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    sched.start(sink, Plan(steps(3), ttft=0.0004, itl=0.0003))
    sched.tick()
    assert sink.got == [(0.0, b"s0;", False)]


def test_many_streams_one_clock(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sinks = [Sink(clock) for _ in range(3)]
    for i, sink in enumerate(sinks):
        clock.now = 1000.0 + i * 0.005
        sched.start(sink, Plan(steps(3), ttft=0.01, itl=0.01))
    clock.now = 1000.0
    times = []
    while (due := sched.tick()) is not None:
        times.append(round(due - 1000.0, 6))
        clock.now = due
    assert all(len(s.got) == 3 for s in sinks)
    assert sinks[1].got[0][0] == pytest.approx(0.015)
    assert times == sorted(times)


def test_back_pressure_parks_then_resumes(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    sink.writing_paused = True        # (so step 0 does not go out with the start)
    stream = sched.start(sink, Plan(steps(3), ttft=0.0, itl=0.01))
    sched.tick()
    assert sink.got == [] and stream.parked and sched.stats.parked == 1
    clock.now = 1000.025
    assert sched.tick() is None   # parked streams are off the clock: nothing buffered for them
    sink.writing_paused = False
    sched.resume(stream)
    sched.tick()
    assert sink.got == [(0.025, b"s0;s1;s2;", True)]
    assert sched.stats.late_10ms == 2


def test_cancel_frees_at_once(clock: FakeClock) -> None:
    sched = Scheduler(clock, None)
    sink = Sink(clock)
    stream = sched.start(sink, Plan(steps(3), ttft=0.001, itl=0.01))
    sched.cancel(stream)
    assert sched.pending() == 0 and sched.stats.cancelled == 1
    assert stream.plan.steps == []   # frames released now, not when the heap entry surfaces
    clock.now = 1001
    sched.tick()
    assert sink.got == []
    sched.cancel(stream)
    assert sched.stats.cancelled == 1


def test_one_timer_rearmed_only_for_an_earlier_due(clock: FakeClock) -> None:
    armed: list[tuple[float, Any]] = []

    class Handle:
        def __init__(self) -> None:
            self.cancelled = False

        def cancel(self) -> None:
            self.cancelled = True

    def call_later(delay: float, fn: Any) -> Handle:
        h = Handle()
        armed.append((delay, h))
        return h

    sched = Scheduler(clock, call_later)
    sink = Sink(clock)
    for _ in range(100):
        sched.start(sink, Plan(steps(10), ttft=0.5, itl=0.01))
    assert len(armed) == 1                      # 100 streams, one timer
    sched.start(sink, Plan(steps(1), ttft=0.1, itl=0.0))
    assert len(armed) == 2 and armed[0][1].cancelled and armed[1][0] == pytest.approx(0.1)


def test_jitter_pool_is_never_negative_and_has_the_asked_spread() -> None:
    import statistics

    from fastmock.state import gap_pool

    normal = gap_pool(0.02, 0.005, "normal")
    assert min(normal) >= 0
    assert statistics.fmean(normal) == pytest.approx(0.02, rel=0.02)
    assert statistics.pstdev(normal) == pytest.approx(0.005, rel=0.05)
    wide = gap_pool(0.002, 0.01, "normal")   # clipped at zero, never negative
    assert min(wide) == 0.0
    lognormal = gap_pool(0.02, 0.01, "lognormal")
    assert min(lognormal) > 0
    assert statistics.fmean(lognormal) == pytest.approx(0.02, rel=0.03)
    assert statistics.pstdev(lognormal) == pytest.approx(0.01, rel=0.1)
    assert statistics.median(lognormal) < statistics.fmean(lognormal)   # right-skewed


def test_jittered_plans_keep_absolute_offsets() -> None:
    from fastmock.config import Config, ModelSpec
    from fastmock.state import build_profile

    profile = build_profile(Config(ttft_ms=100, itl_ms=20, itl_jitter_ms=5), ModelSpec("m"))
    plan = profile.plan([b"x"] * 50)
    assert plan.offsets is not None and len(plan.offsets) == 50
    assert plan.due(0) == pytest.approx(0.1)
    assert all(b >= a for a, b in zip(plan.offsets, plan.offsets[1:], strict=False))
    gaps = [b - a for a, b in zip(plan.offsets, plan.offsets[1:], strict=False)]
    assert len(set(gaps)) > 10                      # it does vary
    assert profile.plan([b"x"] * 50).offsets != plan.offsets   # and differs per stream
    assert 0.1 + 49 * 0.01 < profile.delay(50) < 0.1 + 49 * 0.03


def test_lognormal_needs_a_mean() -> None:
    from fastmock.config import ConfigError, load

    with pytest.raises(ConfigError, match=r"lognormal spread needs itl_ms \(or ms_per_token\) > 0"):
        load({"itl_jitter_ms": "5", "itl_jitter_dist": "lognormal"}, environ={})


def test_models_with_the_same_jitter_share_one_pool() -> None:
    from fastmock.config import Config
    from fastmock.state import App

    app = App(Config(itl_ms=20, itl_jitter_ms=5))
    pools = {id(p.gaps) for p in [*app.profiles.values(), *app.default_profiles.values()]}
    assert len(pools) == 1 and len(app.profiles["gpt-4o"].gaps) == 2 * 65536
