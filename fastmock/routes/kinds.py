"""Which model kinds each route accepts, and the one lookup every route uses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import invalid

if TYPE_CHECKING:
    from ..config import Kind
    from ..state import App, Profile

#: Route family -> (kinds it serves, the kind an unknown model name is taken as, its path).
ACCEPTS: dict[str, tuple[frozenset[Kind], Kind, str]] = {
    "chat": (frozenset({"chat", "reasoning"}), "chat", "/v1/chat/completions"),
    "completions": (frozenset({"chat", "reasoning"}), "chat", "/v1/completions"),
    "responses": (frozenset({"chat", "reasoning"}), "chat", "/v1/responses"),
    "embeddings": (frozenset({"embedding"}), "embedding", "/v1/embeddings"),
    "rerank": (frozenset({"rerank"}), "rerank", "/v1/rerank"),
}

_SUGGEST: dict[Kind, str] = {
    "chat": "/v1/chat/completions", "reasoning": "/v1/chat/completions",
    "embedding": "/v1/embeddings", "rerank": "/v1/rerank",
}


def profile_for(app: App, model: str, route: str) -> Profile:
    """The profile serving ``model`` on ``route``: 404 if unknown under strict_models, 400 if
    the model is of a kind the route does not serve; an unknown name (not strict) is taken as
    a model of the route's own kind with the global settings."""
    kinds, default_kind, path = ACCEPTS[route]
    profile = app.profiles.get(model)
    if profile is None:
        if app.config.strict_models:
            raise invalid(f"The model '{model}' does not exist or you do not have access to it.",
                          "model", "model_not_found", status=404)
        return app.default_profiles[default_kind]
    if profile.kind not in kinds:
        article = "an" if profile.kind[0] in "aeiou" else "a"
        raise invalid(f"The model '{model}' is {article} {profile.kind} model and is not "
                      "supported by "
                      f"{path}; use {_SUGGEST[profile.kind]}.", "model", "model_not_supported")
    return profile
