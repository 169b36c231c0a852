"""GET /stats: pacing lateness and traffic counters, as JSON (not a hot path)."""

from __future__ import annotations

from ..frames import json_reply
from ..reply import Reply
from ..state import App
from .common import Request


def stats(req: Request, app: App) -> Reply:
    c = app.counters
    return json_reply(200, {
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
    })


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

    return Reply(200, METRICS_HEADERS, exposition.render(app))
