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
        "pacing": app.pacing.as_dict(),
        "faults_injected": dict(sorted(c.faults.items())),
        "trouble": app.trouble.as_dict() if app.trouble is not None else None,
        "config_changes": app.config_changes,
    })
