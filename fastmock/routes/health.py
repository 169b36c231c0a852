"""GET /health and /healthz: a fixed body, cheap enough to be polled every second."""

from __future__ import annotations

from ..frames import JSON_HEADERS
from ..reply import Reply
from ..state import App
from .common import Request

_OK = Reply(200, JSON_HEADERS, b'{"status":"ok"}', cacheable=True)


def health(req: Request, app: App) -> Reply:
    return _OK
