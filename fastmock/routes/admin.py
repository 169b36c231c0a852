"""The admin API, on the same paths as the earlier Go mock: keys and the model registry.

It is not open to the world: with ``--admin-key`` every admin request must present that key
(as an API key is presented); without one, only loopback clients may use it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import orjson

from ..config import (
    OPTION_BY_NAME,
    PER_MODEL_OPTIONS,
    RUNTIME_OPTIONS,
    ConfigError,
    coerce_setting,
    model_spec,
)
from ..frames import json_reply
from ..keys import presented_key
from ..reply import Reply
from ..state import App
from .common import Request, invalid, json_object, want_str

if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("fastmock")

MODEL_TYPES = ("chat", "embedding", "rerank", "reasoning")


def authorize(req: Request, app: App) -> Reply | None:
    """None when the request may use the admin API, else the error to send."""
    admin_key = app.config.admin_key
    if admin_key:
        key = presented_key(req.headers)
        import hmac  # only with an admin key

        if key is None or not hmac.compare_digest(key, admin_key.encode()):
            return invalid("The admin API needs the admin key (Authorization: Bearer <key>).",
                           None, "invalid_admin_key", 401, "authentication_error").reply
        return None
    if not req.loopback:
        return invalid("The admin API answers loopback clients only; start fastmock with "
                       "--admin-key to use it from elsewhere.", None, "admin_loopback_only",
                       403, "permission_error").reply
    return None


def list_keys(req: Request, app: App) -> Reply:
    return json_reply(200, {"object": "list", "auth_enabled": app.keys.active,
                            "data": [e.public() for e in app.keys.entries()]})


def create_key(req: Request, app: App) -> Reply:
    body = json_object(req.body) if req.body.strip() else {}
    name = want_str(body, "name") or "unnamed"
    if len(name) > 256:
        raise invalid("'name' must have at most 256 characters.", "name", "invalid_value")
    chosen = want_str(body, "key")
    if chosen is not None:
        if len(chosen) < 8 or len(chosen) > 512 or any(c.isspace() for c in chosen):
            raise invalid("'key' must have 8 to 512 characters and no whitespace.", "key",
                          "invalid_value")
        if app.keys.has(chosen):
            raise invalid("This key exists already.", "key", "key_exists", status=409)
    key, entry = app.keys.create(name, chosen)
    app.changed()
    return json_reply(200, {**entry.public(), "key": key,
                            "message": "Store this key now: it is not shown again."})


def delete_key(req: Request, app: App, handle: str) -> Reply:
    """DELETE /admin/auth/keys/{handle}: by the key, its id, its name or its listed prefix."""
    found = app.keys.find(handle)
    if not found:
        raise invalid("No API key has this key, id, name or prefix.", "key", "key_not_found",
                      status=404)
    if len(found) > 1:
        raise invalid(f"{len(found)} keys answer to this; delete one by its id: "
                      + ", ".join(e.id for e in found) + ".", "key", "ambiguous_key",
                      status=409)
    entry = found[0]
    app.keys.remove_entry(entry)
    app.changed()
    return json_reply(200, {"deleted": True, "id": entry.id, "key_prefix": entry.prefix,
                            "auth_enabled": app.keys.active})


def delete_all_keys(req: Request, app: App) -> Reply:
    count = app.keys.clear()
    app.changed()
    return json_reply(200, {"deleted": count, "auth_enabled": False})


def load_model(req: Request, app: App) -> Reply:
    body = json_object(req.body)
    model_id = want_str(body, "model_id", required=True)
    assert model_id is not None
    kind = want_str(body, "model_type") or "chat"
    if kind not in MODEL_TYPES:
        raise invalid(f"Invalid 'model_type': expected one of {', '.join(MODEL_TYPES)}.",
                      "model_type", "invalid_value")
    settings: dict[str, Any] = {"kind": kind}
    for key, value in body.items():
        if key in ("model_id", "model_type"):
            continue
        if key != "owned_by" and not (key in OPTION_BY_NAME and OPTION_BY_NAME[key].per_model):
            raise invalid(f"Unknown field {key!r} for a model.", key, "unknown_parameter")
        settings[key] = value
    try:
        spec = model_spec(model_id, settings, "model").replace(created=int(time.time()))
    except ConfigError as exc:
        raise invalid(str(exc), _bad_setting(model_id, settings, "model"),
                      "invalid_value") from None
    app.load_model(spec)
    app.changed()
    return json_reply(200, {"id": spec.id, "object": "model", "created": spec.created,
                            "owned_by": spec.owned_by, "model_type": spec.kind,
                            "settings": dict(spec.overrides)})


def _bad_setting(model_id: str, settings: dict[str, Any], where: str,
                 base: Any = None) -> str | None:
    """Which of a model's ``settings`` is refused (tried one at a time, with its kind)."""
    kind = {"kind": settings["kind"]} if "kind" in settings else {}
    for key, value in settings.items():
        try:
            model_spec(model_id, {**kind, key: value}, where, base)
        except ConfigError:
            return key
    return None


def list_models(req: Request, app: App) -> Reply:
    """GET /admin/models: the registry, each model with its effective settings."""
    config = app.config
    return json_reply(200, {"object": "list", "data": [
        {"id": spec.id, "object": "model", "owned_by": spec.owned_by, "model_type": spec.kind,
         "created": spec.created,
         "source": "admin" if spec.id in app.admin_loaded else "config",
         "settings": {o.name: config.model_setting(spec, o.name) for o in PER_MODEL_OPTIONS}}
        for spec in app.specs.values()]})


def _config_view(app: App) -> dict[str, Any]:
    config = app.config
    return {
        "object": "fastmock.config",
        "settings": {name: getattr(config, name) for name in RUNTIME_OPTIONS},
        "models": {spec.id: {name: value for name, value in spec.overrides.items()
                             if name in RUNTIME_OPTIONS}
                   for spec in app.specs.values() if spec.overrides},
        "changed_through_admin": dict(app.admin_settings),
        "changes": app.config_changes,
    }


def get_config(req: Request, app: App) -> Reply:
    """GET /admin/config: the settings that may change while the server runs."""
    return json_reply(200, _config_view(app))


def patch_config(req: Request, app: App) -> Reply:
    """PATCH /admin/config: change them, globally or per model (``"models": {"<id>": {...}}``);
    the change applies to the next request and is logged."""
    body = json_object(req.body)
    settings: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for key, value in body.items():
        if key == "models":
            if not isinstance(value, dict):
                raise invalid("'models' must be an object of model ids to settings.", "models",
                              "invalid_type")
            for model_id, changes in value.items():
                spec = app.specs.get(model_id)
                if spec is None:
                    raise invalid(f"The model '{model_id}' is not served; load it first "
                                  "(POST /admin/models/load).", f"models.{model_id}",
                                  "model_not_found", status=404)
                if not isinstance(changes, dict):
                    raise invalid(f"'models.{model_id}' must be an object of settings.",
                                  f"models.{model_id}", "invalid_type")
                try:
                    models[model_id] = model_spec(model_id, changes, f"models.{model_id}",
                                                  spec)
                except ConfigError as exc:
                    name = _bad_setting(model_id, changes, f"models.{model_id}", spec)
                    raise invalid(str(exc), f"models.{model_id}.{name}" if name else None,
                                  "invalid_value") from None
            continue
        try:
            settings[key] = coerce_setting(key, value, "settings")
        except ConfigError as exc:
            raise invalid(str(exc), key, "invalid_value") from None
    try:
        app.reconfigure(settings, models)
    except ConfigError as exc:
        raise invalid(str(exc), None, "invalid_value") from None
    log.info("config changed through the admin API: %s", orjson.dumps(body).decode())
    app.changed()
    return json_reply(200, _config_view(app))


def unload_model(req: Request, app: App) -> Reply:
    body = json_object(req.body)
    model_id = want_str(body, "model_id", required=True)
    assert model_id is not None
    if not app.unload_models([model_id]):
        raise invalid(f"The model '{model_id}' is not loaded.", "model_id", "model_not_found",
                      status=404)
    app.changed()
    return json_reply(200, {"id": model_id, "object": "model", "deleted": True})


def unload_all(req: Request, app: App) -> Reply:
    gone = app.unload_models(list(app.specs))
    app.changed()
    return json_reply(200, {"deleted": len(gone), "ids": gone})
