"""LLM metrics for the Locust suite: time to first token, inter-token latency, end-to-end latency
and output tokens per second, per request, as their own results (not Locust's response times).

Values go into log-scale histograms (1 % wide buckets, so memory stays flat however long the
run) that merge across Locust processes: a worker sends what it gathered with each report to
the master, which adds it up. ``write`` makes the CSV (one row per metric: count, mean, p50,
p90, p99, max) and an HTML page with the tables and, when matplotlib is installed, the plots.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

#: Relative width of a histogram bucket, and the smallest value told apart (ms, or tokens/s).
STEP = 1.01
FLOOR = 0.01
_LOG_STEP = math.log(STEP)

#: The metrics, their unit and what each one is.
METRICS: dict[str, tuple[str, str]] = {
    "ttft_ms": ("ms", "time to first token: request sent to the first content delta (streams)"),
    "itl_ms": ("ms", "inter-token latency: the gap between two content deltas (streams)"),
    "e2e_ms": ("ms", "end-to-end latency: request sent to the last byte (every request)"),
    "output_tokens": ("tokens", "output tokens of a request (the usage's when present, else "
                      "the content deltas counted)"),
    "tokens_per_s": ("tokens/s", "output tokens per second of a request: after the first "
                     "token for streams ((tokens-1)/(last-first)), tokens/e2e otherwise"),
}
#: Per-request samples kept for the plots over time (beyond it, every other one is dropped).
MAX_SAMPLES = 100_000


class Hist:
    """A histogram of positive values in 1 %-wide buckets; exact count, sum, min and max."""

    __slots__ = ("buckets", "count", "total", "low", "high")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = 0.0

    def add(self, value: float) -> None:
        self.buckets[int(math.log(max(value, FLOOR) / FLOOR) / _LOG_STEP)] += 1
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def percentile(self, p: float) -> float:
        """The value below which ``p`` percent of the values fall (a bucket's middle)."""
        if not self.count:
            return math.nan
        rank = p / 100.0 * self.count
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                value = FLOOR * STEP ** (index + 0.5)
                return min(max(value, self.low), self.high)
        return self.high

    def as_dict(self) -> dict[str, Any]:
        return {"b": dict(self.buckets), "n": self.count, "s": self.total,
                "lo": self.low if self.count else None, "hi": self.high}

    def merge(self, data: dict[str, Any]) -> None:
        for index, n in data["b"].items():
            self.buckets[int(index)] += n
        self.count += data["n"]
        self.total += data["s"]
        if data["lo"] is not None:
            self.low = min(self.low, data["lo"])
        self.high = max(self.high, data["hi"])


class Metrics:
    """What one Locust process (or the master, for all of them) has seen."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.hists = {name: Hist() for name in METRICS}
        self.requests: Counter[str] = Counter()     # by kind
        self.statuses: Counter[str] = Counter()     # by status (0: no answer)
        self.faults: Counter[str] = Counter()       # x-fastmock-fault values seen
        self.token_source: Counter[str] = Counter()  # usage | deltas
        #: (seconds since the start, kind, ttft ms or None, e2e ms) per request.
        self.samples: list[tuple[float, str, float | None, float]] = []
        self.started = time.time()

    def request(self, kind: str, status: int, e2e_ms: float, ttft_ms: float | None = None,
                gaps_ms: list[float] | None = None, tokens: int | None = None,
                usage_tokens: int | None = None, decode_s: float | None = None,
                fault: str | None = None) -> None:
        """One request's figures. ``tokens`` counts content deltas; ``usage_tokens`` is the
        usage's count when the server sent one (preferred)."""
        self.requests[kind] += 1
        self.statuses[str(status)] += 1
        if fault:
            self.faults[fault] += 1
        self.hists["e2e_ms"].add(e2e_ms)
        if ttft_ms is not None:
            self.hists["ttft_ms"].add(ttft_ms)
        for gap in gaps_ms or ():
            self.hists["itl_ms"].add(gap)
        count = usage_tokens if usage_tokens is not None else tokens
        if count is not None and status == 200:
            self.token_source["usage" if usage_tokens is not None else "deltas"] += 1
            self.hists["output_tokens"].add(count)
            if decode_s is not None and count > 1 and decode_s > 0:
                self.hists["tokens_per_s"].add((count - 1) / decode_s)
            elif decode_s is None and e2e_ms > 0 and count:
                self.hists["tokens_per_s"].add(count / (e2e_ms / 1000.0))
        if len(self.samples) >= MAX_SAMPLES:
            del self.samples[::2]
        self.samples.append((time.time() - self.started, kind, ttft_ms, e2e_ms))

    # -- across processes ----------------------------------------------------------------------

    def drain(self) -> dict[str, Any]:
        """What was seen since the last drain, to send to the master; then start afresh."""
        data = {"hists": {k: h.as_dict() for k, h in self.hists.items()},
                "requests": dict(self.requests), "statuses": dict(self.statuses),
                "faults": dict(self.faults), "token_source": dict(self.token_source),
                "samples": [(self.started + t, k, a, b) for t, k, a, b in self.samples]}
        self.reset()
        return data

    def merge(self, data: dict[str, Any]) -> None:
        for name, hist in data["hists"].items():
            self.hists[name].merge(hist)
        for field in ("requests", "statuses", "faults", "token_source"):
            getattr(self, field).update(data[field])
        self.samples.extend((t - self.started, k, a, b) for t, k, a, b in data["samples"])
        if len(self.samples) > MAX_SAMPLES:
            del self.samples[::2]

    # -- reports -------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        out = []
        for name, hist in self.hists.items():
            unit, _ = METRICS[name]
            out.append({"metric": name, "unit": unit, "count": hist.count,
                        "mean": hist.total / hist.count if hist.count else math.nan,
                        "p50": hist.percentile(50), "p90": hist.percentile(90),
                        "p99": hist.percentile(99), "max": hist.high if hist.count else math.nan})
        return out

    def rate(self) -> tuple[int, float]:
        """Requests seen, and per second from the first to the last one."""
        total = sum(self.requests.values())
        times = [t for t, *_ in self.samples]
        span = max(times) - min(times) if len(times) > 1 else 0.0
        return total, total / span if span > 0 else 0.0

    def write(self, csv_path: Path, html_path: Path | None = None, title: str = "") -> None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["metric,unit,count,mean,p50,p90,p99,max"]
        for r in self.rows():
            lines.append(f"{r['metric']},{r['unit']},{r['count']},{r['mean']:.3f},"
                         f"{r['p50']:.3f},{r['p90']:.3f},{r['p99']:.3f},{r['max']:.3f}")
        total, rate = self.rate()
        lines.append(f"requests_per_s,requests/s,{total},{rate:.3f},,,,")
        for field in ("requests", "statuses", "faults", "token_source"):
            for key, n in sorted(getattr(self, field).items()):
                lines.append(f"{field}:{key},count,{n},,,,,")
        csv_path.write_text("\n".join(lines) + "\n")
        csv_path.with_suffix(".samples.json").write_text(json.dumps(self.samples))
        if html_path is not None:
            html_path.write_text(self.page(title, html_path.with_suffix(".png")))

    def page(self, title: str, plot_path: Path | None = None) -> str:
        """The tables as an HTML page, with the plots (written to ``plot_path``) when
        matplotlib is there."""
        rows = "".join(
            f"<tr><td>{r['metric']}</td><td>{r['unit']}</td><td>{r['count']}</td>"
            + "".join(f"<td>{r[k]:.2f}</td>" for k in ("mean", "p50", "p90", "p99", "max"))
            + f"<td>{html.escape(METRICS[r['metric']][1])}</td></tr>" for r in self.rows())
        rate = self.rate()[1]
        counts = f"<tr><td>requests</td><td>per second</td><td>{rate:.1f}</td></tr>" + "".join(
            f"<tr><td>{field}</td><td>{html.escape(k)}</td><td>{n}</td></tr>"
            for field in ("requests", "statuses", "faults", "token_source")
            for k, n in sorted(getattr(self, field).items()))
        plot = plot_over_time({title or "run": self}, plot_path) if plot_path else None
        image = f'<img src="{plot.name}" alt="latency over time">' if plot else ""
        return (f"<!doctype html><meta charset=utf-8><title>LLM metrics {html.escape(title)}"
                f"</title><h1>LLM metrics {html.escape(title)}</h1><table border=1>"
                "<tr><th>metric</th><th>unit</th><th>count</th><th>mean</th><th>p50</th>"
                f"<th>p90</th><th>p99</th><th>max</th><th>what</th></tr>{rows}</table>"
                "<p>Output tokens are the usage's when the server sends one (streams ask for "
                "it with stream_options.include_usage), else the content deltas counted; "
                "token_source says which, per request.</p>"
                f"<h2>Counts</h2><table border=1>{counts}</table>{image}")


def plot_over_time(runs: dict[str, Metrics], path: Path) -> Path | None:
    """TTFT and end-to-end p50/p99 per second over the run, for each run (e.g. direct and
    through a proxy), and their distributions; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for label, m in runs.items():
        for metric, at, ax in (("ttft", 2, axes[0]), ("e2e", 3, axes[1])):
            by_second: dict[int, list[float]] = {}
            for sample in m.samples:
                value = sample[at]
                if value is not None:
                    by_second.setdefault(int(sample[0]), []).append(value)
            seconds = sorted(by_second)
            for q, style in ((0.5, "-"), (0.99, ":")):
                ax.plot(seconds, [_quantile(by_second[s], q) for s in seconds], style,
                        label=f"{label} p{int(q * 100)}")
            ax.set_title(f"{metric} (ms) per second of the run")
            ax.set_xlabel("s")
        ttfts = [s[2] for s in m.samples if s[2] is not None]
        if ttfts:
            axes[2].hist(ttfts, bins=50, alpha=0.5, label=f"{label} ttft")
    axes[2].set_title("TTFT distribution (ms)")
    for ax in axes:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def read_csv(path: Path) -> dict[str, dict[str, float]]:
    """The rows of a metrics CSV written by ``write``: metric (or ``field:key``) -> figures."""
    out: dict[str, dict[str, float]] = {}
    lines = path.read_text().splitlines()
    head = lines[0].split(",")
    for line in lines[1:]:
        cells = line.split(",")
        out[cells[0]] = {k: float(v) for k, v in zip(head[2:], cells[2:], strict=True) if v}
    return out


def read_samples(csv_path: Path) -> Metrics:
    """A Metrics holding only the per-request samples written beside ``csv_path`` (plots)."""
    m = Metrics()
    m.samples = [tuple(s) for s in json.loads(csv_path.with_suffix(".samples.json").read_text())]  # type: ignore[misc]
    return m
