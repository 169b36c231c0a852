"""GET /v1/models and GET /v1/models/{id}: bodies precomputed whenever the model set changes."""

from __future__ import annotations

from ..frames import JSON_HEADERS
from ..reply import Reply
from ..state import App
from .common import Request, invalid


def list_models(req: Request, app: App) -> Reply:
    return Reply(200, JSON_HEADERS, app.models_body, cacheable=True)


def retrieve(req: Request, app: App, model_id: str) -> Reply:
    body = app.model_bodies.get(model_id)
    if body is None:
        raise invalid(f"The model '{model_id}' does not exist", "model", "model_not_found",
                      status=404)
    return Reply(200, JSON_HEADERS, body, cacheable=True)
