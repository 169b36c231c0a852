"""GET /metrics: Prometheus text with the names vLLM exposes, so that dashboards and autoscalers
built for vLLM read fastmock unchanged; ``fastmock_*`` for the rest.

Nothing is formatted or looked up per request. A reply that goes out is appended to a list
(the kept reply itself, or a small tuple when its timing or prompt differs from the kept one's);
once a second, and when /metrics is read, the list is folded into counters and histograms per
model. A reply's timing is what fastmock planned for it: the time to first token, the pause
between steps and the whole duration it was paced to (what a client sees, less the network).
The text is a few lines of formatting: a client library would bring a registry, locks and
its own metric objects to the hot path for no gain here.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .accesslog import AccessLog
    from .ready import Ready
    from .scheduler import Stats
    from .state import App

#: vLLM's buckets (seconds), so that its dashboards' quantiles read the same.
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5,
                5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0,
               7.5, 10.0, 20.0, 40.0, 80.0)
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
               60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
                 100000)


class Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float, times: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += times
        self.total += value * times
        self.count += times


class ModelMeter:
    """What one model did: tokens, and its timing histograms."""

    __slots__ = ("prompt", "generation", "success", "ttft", "itl", "e2e", "out_tokens")

    def __init__(self) -> None:
        self.prompt = 0
        self.generation = 0
        self.success = 0
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.out_tokens = Histogram(TOKEN_BUCKETS)


class Meter:
    """The replies sent since the last fold, and what the folds added up."""

    __slots__ = ("sent", "requests", "models", "log", "pacing", "before_fold")

    def __init__(self, pacing: Stats | None = None) -> None:
        #: Appended per reply: the kept reply that went out at once, (reply, prompt tokens)
        #: for a kept reply sent for another prompt, or ``paced(...)``; folded by ``fold``.
        self.sent: list[Any] = []
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.models: dict[str, ModelMeter] = {}
        #: The access log, when there is one: it reads the same records.
        self.log: AccessLog | None = None
        #: The pacing counters, where streams sent whole (nothing to wait for) are counted.
        self.pacing = pacing
        #: Called before the records are folded away (the rate limits count lent replies
        #: in them: ``trouble.Limits.settle_lent``).
        self.before_fold: Callable[[], None] | None = None

    @staticmethod
    def paced(ready: Ready, ttft: float, itl: float, steps: int, e2e: float,
              fault: str = "") -> tuple[Any, ...]:
        """The record of a reply whose timing was planned for it."""
        return (ready, ready.prompt_tokens, ttft, itl, steps, e2e, fault)

    def fold(self) -> None:
        """Add up what was sent since the last fold (once a second, and for /metrics). The
        list is emptied in place: connections hold its ``append``. The same record (a kept
        reply sent again and again) is counted in C first, then handled once with its count."""
        if self.before_fold is not None:
            self.before_fold()
        groups = Counter(self.sent)
        self.sent.clear()
        if self.log is not None:
            from .frames import CLOCK

            self.log.write(groups, CLOCK.unix - 1)   # (folded just after the second they were in)
        requests = self.requests
        models = self.models
        for item, n in groups.items():
            ttft = itl = e2e = 0.0
            steps = 0
            if type(item) is tuple:
                if len(item) == 2:              # a kept reply for another prompt
                    ready, prompt = item
                else:                           # a paced reply
                    ready, prompt, ttft, itl, steps, e2e, _ = item
            else:                               # a reply that went out at once
                ready, prompt = item, item.prompt_tokens
            if ready.whole_steps and not steps and self.pacing is not None:
                self.pacing.sent_whole(ready.whole_steps, n)
            label = ready.label
            if label is None:
                from .routes import route_label  # (routes import the state, which imports this)

                label = ready.label = (route_label(ready.req.target),
                                       ready.model.spec.id if ready.model is not None else "",
                                       ready.status)
            requests[label] += n
            model = label[1]
            if not model or label[2] != 200:
                continue
            meter = models.get(model)
            if meter is None:
                meter = models[model] = ModelMeter()
            generated = ready.tokens - ready.prompt_tokens
            meter.prompt += prompt * n
            meter.generation += generated * n
            meter.success += n
            meter.ttft.observe(ttft, n)
            if steps > 1:
                meter.itl.observe(itl, (steps - 1) * n)
            meter.e2e.observe(e2e, n)
            meter.out_tokens.observe(generated, n)


def _histogram(out: list[str], name: str, help_: str, per_model: dict[str, Histogram]) -> None:
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} histogram")
    for model, hist in sorted(per_model.items()):
        label = f'model_name="{_escape(model)}"'
        running = 0
        for bound, n in zip(hist.bounds, hist.counts, strict=False):
            running += n
            out.append(f'{name}_bucket{{{label},le="{bound:g}"}} {running}')
        out.append(f'{name}_bucket{{{label},le="+Inf"}} {hist.count}')
        out.append(f"{name}_sum{{{label}}} {hist.total:.6f}")
        out.append(f"{name}_count{{{label}}} {hist.count}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(out: list[str], name: str, kind: str, help_: str,
            values: list[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in values:
        out.append(f"{name}{{{labels}}} {value:g}" if labels else f"{name} {value:g}")


def snapshot(app: App) -> dict[str, Any]:
    """Every figure /metrics shows, as plain data (a worker's is written for its siblings)."""
    meter = app.meter
    meter.fold()
    pacing = app.pacing
    counters = app.counters
    running: Counter[str] = Counter()
    waiting: Counter[str] = Counter()
    for conn in app.connections.open:
        if conn.stream is not None:
            running[conn.model] += 1
        elif conn.queued:
            waiting[conn.model] += 1
    return {
        "served": sorted(app.specs),
        "running": dict(running), "waiting": dict(waiting),
        "requests": [[*label, n] for label, n in meter.requests.items()],
        "models": {m: {"prompt": mm.prompt, "generation": mm.generation,
                       "success": mm.success,
                       **{h: [getattr(mm, h).counts, getattr(mm, h).total,
                              getattr(mm, h).count]
                          for h in ("ttft", "itl", "e2e", "out_tokens")}}
                   for m, mm in meter.models.items()},
        "faults": dict(counters.faults),
        "connections_open": counters.connections_open, "streams_active": pacing.active,
        "steps": pacing.steps + pacing.unpaced_steps, "late_1ms": pacing.late_1ms,
        "late_10ms": pacing.late_10ms, "worst_late": pacing.worst_late,
        "protocol_errors": counters.protocol_errors,
        "loop_lag": counters.loop_lag, "loop_lag_max": counters.loop_lag_max,
    }


def merge(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of several workers as one: sums, and the worst lateness of any."""
    total = snapshots[0]
    for other in snapshots[1:]:
        total["served"] = sorted(set(total["served"]) | set(other["served"]))
        for field in ("running", "waiting", "faults"):
            for key, n in other[field].items():
                total[field][key] = total[field].get(key, 0) + n
        requests = {tuple(r[:3]): r[3] for r in total["requests"]}
        for *label, n in other["requests"]:
            requests[tuple(label)] = requests.get(tuple(label), 0) + n
        total["requests"] = [[*label, n] for label, n in requests.items()]
        for model, figures in other["models"].items():
            mine = total["models"].setdefault(model, figures)
            if mine is figures:
                continue
            for key in ("prompt", "generation", "success"):
                mine[key] += figures[key]
            for key in ("ttft", "itl", "e2e", "out_tokens"):
                mine[key] = [[a + b for a, b in zip(mine[key][0], figures[key][0],
                                                   strict=True)],
                             mine[key][1] + figures[key][1], mine[key][2] + figures[key][2]]
        for key in ("connections_open", "streams_active", "steps", "late_1ms", "late_10ms",
                    "protocol_errors"):
            total[key] += other[key]
        for key in ("worst_late", "loop_lag", "loop_lag_max"):
            total[key] = max(total[key], other[key])
    return total


def render(app: App, others: list[dict[str, Any]] = ()) -> bytes:  # type: ignore[assignment]
    """The Prometheus text exposition (version 0.0.4) of the server's state, with the
    figures of ``others`` (sibling workers) added."""
    data = merge([snapshot(app), *others])
    models = {m: _Figures(f) for m, f in data["models"].items()}
    served = sorted(set(models) | set(data["served"]))
    running, waiting = data["running"], data["waiting"]
    out: list[str] = []

    def per_model(field: str) -> list[tuple[str, float]]:
        return [(f'model_name="{_escape(m)}"', getattr(models[m], field) if m in models else 0)
                for m in served]

    _sample(out, "vllm:num_requests_running", "gauge",
            "Replies being generated (streams and delayed replies under way).",
            [(f'model_name="{_escape(m)}"', running.get(m, 0)) for m in served])
    _sample(out, "vllm:num_requests_waiting", "gauge",
            "Replies waiting for a place (--max-concurrency).",
            [(f'model_name="{_escape(m)}"', waiting.get(m, 0)) for m in served])
    _sample(out, "vllm:prompt_tokens_total", "counter", "Prompt tokens of answered requests.",
            per_model("prompt"))
    _sample(out, "vllm:generation_tokens_total", "counter",
            "Tokens generated for answered requests.", per_model("generation"))
    _sample(out, "vllm:request_success_total", "counter", "Requests answered with a reply.",
            per_model("success"))
    _histogram(out, "vllm:time_to_first_token_seconds", "Time to first token, as planned.",
               {m: models[m].ttft for m in models})
    _histogram(out, "vllm:inter_token_latency_seconds", "Pause between streamed steps.",
               {m: models[m].itl for m in models})
    _histogram(out, "vllm:time_per_output_token_seconds",
               "Pause between streamed steps (vLLM's older name).",
               {m: models[m].itl for m in models})
    _histogram(out, "vllm:e2e_request_latency_seconds", "Whole duration a reply was paced to.",
               {m: models[m].e2e for m in models})
    _histogram(out, "vllm:request_generation_tokens", "Tokens generated per request.",
               {m: models[m].out_tokens for m in models})
    _sample(out, "fastmock_requests_total", "counter", "Requests by route, model and status.",
            [(f'route="{_escape(r)}",model="{_escape(m)}",status="{st}"', n)
             for r, m, st, n in sorted(data["requests"])])
    _sample(out, "fastmock_faults_injected_total", "counter", "Faults injected, by kind.",
            [(f'kind="{_escape(k)}"', n) for k, n in sorted(data["faults"].items())])
    _sample(out, "fastmock_connections_open", "gauge", "Open connections.",
            [("", data["connections_open"])])
    _sample(out, "fastmock_streams_active", "gauge", "Streams being paced.",
            [("", data["streams_active"])])
    _sample(out, "fastmock_steps_sent_total", "counter", "Stream steps written.",
            [("", data["steps"])])
    _sample(out, "fastmock_steps_late_total", "counter", "Steps written later than due.",
            [('over="1ms"', data["late_1ms"]), ('over="10ms"', data["late_10ms"])])
    _sample(out, "fastmock_step_worst_lateness_seconds", "gauge",
            "The latest any step was written.", [("", data["worst_late"])])
    _sample(out, "fastmock_protocol_errors_total", "counter", "Malformed requests.",
            [("", data["protocol_errors"])])
    _sample(out, "fastmock_event_loop_lag_seconds", "gauge",
            "How late the once-a-second tick last ran (the busiest worker's).",
            [("", data["loop_lag"])])
    _sample(out, "fastmock_event_loop_lag_max_seconds", "gauge",
            "The latest the once-a-second tick ever ran.", [("", data["loop_lag_max"])])
    if others:
        _sample(out, "fastmock_workers", "gauge", "Worker processes whose figures are added.",
                [("", len(others) + 1)])
    return ("\n".join(out) + "\n").encode()


class _Figures:
    """A model's figures from a snapshot, shaped as ``ModelMeter`` for the formatting."""

    def __init__(self, figures: dict[str, Any]) -> None:
        self.prompt = figures["prompt"]
        self.generation = figures["generation"]
        self.success = figures["success"]
        self.ttft = self._hist(figures["ttft"], TTFT_BUCKETS)
        self.itl = self._hist(figures["itl"], ITL_BUCKETS)
        self.e2e = self._hist(figures["e2e"], E2E_BUCKETS)
        self.out_tokens = self._hist(figures["out_tokens"], TOKEN_BUCKETS)

    @staticmethod
    def _hist(figures: list[Any], bounds: tuple[float, ...]) -> Histogram:
        hist = Histogram(bounds)
        hist.counts, hist.total, hist.count = list(figures[0]), figures[1], figures[2]
        return hist
