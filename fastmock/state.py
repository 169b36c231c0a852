"""What the routes read: the config, one resolved Profile per served model, precomputed lists.

Profiles are built when the state is built (at startup, and again whenever the set of models
changes), so that nothing per request resolves settings or re-tokenizes canned text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from . import content, tokens
from .config import Config, Kind, Mode, ModelSpec


@dataclass(slots=True)
class Profile:
    """A model's effective settings, with its canned tokens and a cache for route modules."""

    spec: ModelSpec
    mode: Mode
    text_tokens: list[str]
    ttft: float
    itl: float
    tokens_per_chunk: int
    delay_nonstream: bool
    #: Route modules keep their precomputed bytes here, keyed as they need (bounded by them).
    cache: dict[Any, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        return self.spec.kind


def build_profile(config: Config, spec: ModelSpec) -> Profile:
    mode: Mode = config.model_setting(spec, "mode")
    if mode == "lorem":
        text_tokens = content.lorem(config.model_setting(spec, "lorem_tokens"))
    else:
        text_tokens = tokens.split(config.model_setting(spec, "response_text"))
    return Profile(
        spec=spec,
        mode=mode,
        text_tokens=text_tokens,
        ttft=config.model_setting(spec, "ttft_ms") / 1000.0,
        itl=config.model_setting(spec, "itl_ms") / 1000.0,
        tokens_per_chunk=config.model_setting(spec, "tokens_per_chunk"),
        delay_nonstream=config.model_setting(spec, "delay_nonstream"),
    )


class App:
    """Routes' view of the server: immutable config plus the current model registry."""

    __slots__ = ("config", "profiles", "default_profile", "models_body", "model_bodies")

    def __init__(self, config: Config) -> None:
        self.config = config
        self.profiles: dict[str, Profile] = {}
        self.default_profile = build_profile(config, ModelSpec("*"))
        self.models_body = b""
        self.model_bodies: dict[str, bytes] = {}
        self.set_models(config.models)

    def set_models(self, specs: tuple[ModelSpec, ...] | list[ModelSpec]) -> None:
        """Replace the served models and rebuild everything precomputed from them."""
        self.profiles = {s.id: build_profile(self.config, s) for s in specs}
        objects = {s.id: {"id": s.id, "object": "model", "created": s.created,
                          "owned_by": s.owned_by} for s in specs}
        self.models_body = orjson.dumps({"object": "list", "data": list(objects.values())})
        self.model_bodies = {k: orjson.dumps(v) for k, v in objects.items()}

    def profile(self, model: str) -> Profile | None:
        """The profile serving ``model``; None when strict_models is set and it is unknown."""
        found = self.profiles.get(model)
        if found is not None:
            return found
        return None if self.config.strict_models else self.default_profile
