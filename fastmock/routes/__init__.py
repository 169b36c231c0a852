"""The route table: (path, method) -> endpoint. Every path also answers without ``/v1``.

Endpoints are pure functions of (request, app state) returning a Reply; they raise ``Invalid``
with a ready error reply for bad input. Nothing here touches a transport.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from ..frames import IDS, error_reply
from ..reply import Reply
from ..state import App
from .common import Invalid, Request

log = logging.getLogger("fastmock")

Handler = Callable[[Request, App], Reply]
ItemHandler = Callable[[Request, App, str], Reply]

# Handlers are named "module.function" and imported on their route's first request: a server
# that never answers embeddings never loads them (the route modules cost every start a few
# milliseconds and their memory; the first request of a kind pays its import once).

#: Exact paths, after the optional ``/v1`` prefix is removed.
ROUTES: dict[str, dict[bytes, Any]] = {
    "/chat/completions": {b"POST": "chat.handle"},
    "/completions": {b"POST": "completions.handle"},
    "/embeddings": {b"POST": "embeddings.handle"},
    "/rerank": {b"POST": "rerank.handle"},
    "/v2/rerank": {b"POST": "rerank.handle"},
    "/responses": {b"POST": "responses.handle"},
    "/conversations": {b"POST": "conversations.create"},
    "/admin/auth/keys": {b"GET": "admin.list_keys", b"POST": "admin.create_key",
                         b"DELETE": "admin.delete_all_keys"},
    "/admin/models": {b"GET": "admin.list_models"},
    "/admin/models/load": {b"POST": "admin.load_model"},
    "/admin/models/unload": {b"POST": "admin.unload_model"},
    "/admin/models/unload_all": {b"POST": "admin.unload_all"},
    "/admin/config": {b"GET": "admin.get_config", b"PATCH": "admin.patch_config"},
    "/models": {b"GET": "models.list_models"},
    "/health": {b"GET": "health.health"},
    "/healthz": {b"GET": "health.health"},
    "/stats": {b"GET": "stats.stats"},
    "/metrics": {b"GET": "stats.metrics"},
}

#: Paths that end in an item id (which may itself contain slashes, like "org/model").
PREFIX_ROUTES: tuple[tuple[str, dict[bytes, Any]], ...] = (
    ("/models/", {b"GET": "models.retrieve"}),
    ("/responses/", {b"GET": "responses.retrieve", b"DELETE": "responses.delete",
                     b"POST": "responses.cancel"}),
    ("/conversations/", {b"GET": "conversations.read", b"POST": "conversations.write",
                         b"DELETE": "conversations.delete"}),
    ("/admin/auth/keys/", {b"DELETE": "admin.delete_key"}),
)


def _handler(table: dict[bytes, Any], method: bytes) -> Any:
    """The handler of ``method`` in ``table`` (imported the first time), or None."""
    handler = table.get(method)
    if type(handler) is str:
        module, name = handler.rsplit(".", 1)
        handler = table[method] = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    return handler


_paths: dict[bytes, str] = {}


def canonical_path(target: bytes) -> str:
    """The request path without query string and without a leading ``/v1`` (remembered)."""
    path = _paths.get(target)
    if path is None:
        path = target.split(b"?", 1)[0].decode("latin-1")
        if path.startswith("/v1/"):
            path = path[3:]
        if len(_paths) >= 4096:
            _paths.clear()
        _paths[target] = path
    return path


def route_label(target: bytes) -> str:
    """The route a request went to, as a metric label: its path without ``/v1``, an item path
    with ``{id}``, or ``other`` (so that random paths cannot grow the label set)."""
    path = canonical_path(target)
    if path in ROUTES:
        return path
    for prefix, _ in PREFIX_ROUTES:
        if path.startswith(prefix):
            return prefix + "{id}"
    return "other"


#: Answered without an API key even when keys exist: liveness probes and counters.
OPEN_PATHS = frozenset({"/health", "/healthz", "/stats", "/metrics"})


def open_path(target: bytes) -> bool:
    """Whether ``target`` is answered without an API key even when keys exist."""
    return canonical_path(target) in OPEN_PATHS


UNAUTHORIZED = error_reply(
    401, "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>', 'api-key' or "
    "'x-api-key'.", "invalid_request_error", None, "invalid_api_key",
    extra=((b"www-authenticate", b'Bearer realm="fastmock"'),))


def route(req: Request, app: App) -> Reply:
    """Answer one complete request with a fresh id, and run what the reply does once sent
    (for direct callers and tests; the protocol calls :func:`dispatch`). Never raises."""
    if req.ident is None:
        req.ident = IDS.new()
    reply = dispatch(req, app)
    if reply.after is not None:
        reply.after(req.ident)
    return reply


def dispatch(req: Request, app: App) -> Reply:
    """The reply to one complete request, with ``req.ident`` where the id goes. Never raises:
    every failure becomes an error reply. Only an endpoint's reply may be ``cacheable``."""
    if app.config.cors_origins:
        from .. import cors

        if cors.is_preflight(req):
            return cors.preflight(req, app)
        return cors.with_headers(_dispatch(req, app), req, app)
    return _dispatch(req, app)


def _dispatch(req: Request, app: App) -> Reply:
    method = b"GET" if req.method == b"HEAD" else req.method
    path = canonical_path(req.target)
    if path.startswith("/admin/"):
        from . import admin

        if app.before_admin is not None:
            app.before_admin()
        denied = admin.authorize(req, app)
        if denied is not None:
            return denied
    elif app.keys.active and path not in OPEN_PATHS and not app.keys.check_headers(req.headers):
        return UNAUTHORIZED
    try:
        table = ROUTES.get(path)
        if table is not None:
            handler = _handler(table, method)
            if handler is not None:
                return handler(req, app)
            return _wrong_method(req, table)
        for prefix, items in PREFIX_ROUTES:
            if path.startswith(prefix) and len(path) > len(prefix):
                item = _handler(items, method)
                if item is None:
                    return _wrong_method(req, items)
                from urllib.parse import unquote  # (only here: it costs a start ~3 ms)

                return item(req, app, unquote(path[len(prefix):]))
    except Invalid as exc:
        return exc.reply
    except Exception:  # a bug must cost one 500, never the connection or the server
        log.exception("error while answering %s %s", req.method.decode(), req.target.decode(
            "latin-1"))
        return error_reply(500, "The server had an error while processing your request.",
                           "server_error")
    reply = error_reply(404, f"Invalid URL ({req.method.decode('latin-1')} "
                             f"{req.target.decode('latin-1')})")
    reply.cacheable = True
    return reply


def _wrong_method(req: Request, table: dict[bytes, Any]) -> Reply:
    allow = b", ".join(sorted(table))
    reply = error_reply(405, f"Invalid method for URL ({req.method.decode('latin-1')} "
                             f"{req.target.decode('latin-1')}). Allowed: {allow.decode()}.",
                        extra=((b"allow", allow),))
    reply.cacheable = True
    return reply
