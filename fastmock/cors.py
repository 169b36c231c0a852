"""CORS, for web front-ends that call the API from a page (``--cors-origins``; off by default).

With origins configured, a request that carries ``Origin`` is answered the long way (never
from a kept reply) and gets ``Access-Control-Allow-Origin`` when its origin is allowed, with
the headers a client may read (``x-request-id``, the rate-limit headers, ...) exposed. A
preflight (``OPTIONS`` with ``Access-Control-Request-Method``) is answered 204 without an API
key, as browsers send it without credentials. Requests without ``Origin`` are untouched.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .reply import Reply

if TYPE_CHECKING:
    from .reply import Header
    from .routes.common import Request
    from .state import App

METHODS = b"GET, POST, PATCH, DELETE, OPTIONS"
EXPOSED = (b"x-request-id, openai-processing-ms, retry-after, retry-after-ms, "
           b"x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
           b"x-ratelimit-reset-requests, x-ratelimit-limit-tokens, "
           b"x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-fastmock-fault")
#: How long a browser may keep a preflight's answer (seconds).
MAX_AGE = b"600"


def _header(headers: list[Header], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def allowed(app: App, origin: bytes | None) -> bytes | None:
    """The ``Access-Control-Allow-Origin`` value for ``origin``, or None (not allowed)."""
    origins = app.config.cors_origins
    if origin is None or not origins:
        return None
    if "*" in origins:
        return b"*"
    return origin if origin.decode("latin-1") in origins else None


def is_preflight(req: Request) -> bool:
    return req.method == b"OPTIONS" and \
        _header(req.headers, b"access-control-request-method") is not None


def preflight(req: Request, app: App) -> Reply:
    """200 (no body) with what the page may send, or 403 for an origin that is not allowed."""
    origin = allowed(app, _header(req.headers, b"origin"))
    if origin is None:
        from .frames import error_reply

        return error_reply(403, "This origin may not call the API (see --cors-origins).",
                           "permission_error", None, "cors_origin_not_allowed")
    asked = _header(req.headers, b"access-control-request-headers") or b"authorization, " \
        b"content-type"
    headers = ((b"access-control-allow-origin", origin),
               (b"access-control-allow-methods", METHODS),
               (b"access-control-allow-headers", asked),
               (b"access-control-max-age", MAX_AGE),
               (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"))
    return Reply(200, headers)


def with_headers(reply: Reply, req: Request, app: App) -> Reply:
    """``reply`` (a copy: replies may be shared) that the page may read, when its origin is
    allowed."""
    origin = allowed(app, _header(req.headers, b"origin"))
    if origin is None:
        return reply
    reply = copy.copy(reply)
    reply.headers = (*reply.headers, (b"access-control-allow-origin", origin),
                     (b"access-control-expose-headers", EXPOSED), (b"vary", b"Origin"))
    reply.cacheable = False
    return reply
