"""GET /stats: pacing lateness and traffic counters, as JSON (not a hot path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..frames import json_reply
from ..reply import Reply
from ..state import App
from .common import Request


def stats(req: Request, app: App) -> Reply:
    """GET /stats: this process's counters, with every sibling worker's added."""
    own = stats_dict(app)
    if app.shared is None:
        return json_reply(200, own)
    others = [s["stats"] for s in siblings(app)]
    return json_reply(200, {**add_up([own, *others]), "workers": len(others) + 1,
                            "worker_restarts": restarts(app)})


def restarts(app: App) -> int:
    """How many times the supervisor restarted a worker that died."""
    assert app.shared is not None
    try:
        return int((Path(app.shared) / "restarts").read_text())
    except (OSError, ValueError):
        return 0


def siblings(app: App) -> list[dict[str, Any]]:
    """The figures the other workers wrote in the shared folder (each once a second)."""
    import orjson

    assert app.shared is not None
    out = []
    for path in Path(app.shared).glob("worker-*.json"):
        if path.name == f"worker-{app.worker}.json":
            continue
        try:
            out.append(orjson.loads(path.read_bytes()))
        except (OSError, orjson.JSONDecodeError):
            continue   # (being replaced, or a worker that is starting)
    return out


#: Figures that are the same in every worker, or the worst of them, rather than a sum.
_KEEP = frozenset({"pace", "trouble", "config_changes"})


def add_up(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers summed key by key (worst lateness: the largest), nested dicts likewise."""
    total: dict[str, Any] = {}
    for d in dicts:
        for key, value in d.items():
            if key not in total or key in _KEEP:
                total[key] = value if key not in total else total[key]
            elif isinstance(value, dict):
                total[key] = add_up([total[key], value])
            elif key.startswith("worst"):
                total[key] = max(total[key], value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] = total[key] + value
    return total


def stats_dict(app: App) -> dict[str, Any]:
    app.meter.fold()   # (streams sent whole are counted from the metrics' records)
    c = app.counters
    return {
        "requests": app.connections.requests(),
        "connections": {"open": c.connections_open, "total": c.connections_total,
                        "rejected_over_limit": c.rejected},
        "protocol_errors": c.protocol_errors,
        "request_timeouts": c.timeouts,
        "pace": pace(app),
        "pacing": app.pacing.as_dict(),
        "faults_injected": dict(sorted(c.faults.items())),
        "trouble": app.trouble.as_dict() if app.trouble is not None else None,
        "config_changes": app.config_changes,
        "event_loop_lag_ms": {"last": round(c.loop_lag * 1000.0, 3),
                              "worst": round(c.loop_lag_max * 1000.0, 3)},
    }


def pace(app: App) -> dict[str, float]:
    """The server-wide pace (models may set their own), per chunk and per token both."""
    config = app.config
    chunk = config.tokens_per_chunk
    itl = config.ms_per_token * chunk if config.ms_per_token else config.itl_ms
    return {"ttft_ms": config.ttft_ms, "itl_ms": itl, "tokens_per_chunk": chunk,
            "ms_per_token": itl / chunk}


METRICS_HEADERS = ((b"content-type", b"text/plain; version=0.0.4; charset=utf-8"),)


def metrics(req: Request, app: App) -> Reply:
    """GET /metrics: Prometheus text, vLLM's names (see ``fastmock.metrics``)."""
    from .. import metrics as exposition

    if app.shared is None:
        return Reply(200, METRICS_HEADERS, exposition.render(app))
    others = [s["metrics"] for s in siblings(app)]
    text = exposition.render(app, others) + (
        b"# HELP fastmock_worker_restarts_total Workers the supervisor restarted.\n"
        b"# TYPE fastmock_worker_restarts_total counter\n"
        b"fastmock_worker_restarts_total %d\n" % restarts(app))
    return Reply(200, METRICS_HEADERS, text)
