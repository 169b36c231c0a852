"""``--state-file``: what the admin API changed (keys it created, models it loaded or unloaded)
survives a restart. Keys are stored as SHA-256 digests, never in clear.

Writes are atomic: a temporary file in the same folder, flushed and fsynced, renamed over the
old one, and the folder fsynced, so a crash leaves the old file or the new one, never half of
one. A file that cannot be read or parsed at startup is an error, not a silent reset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from .config import ConfigError, ModelSpec, coerce_setting, model_spec
from .keys import KeyEntry

VERSION = 1


@dataclass(slots=True)
class State:
    keys: list[KeyEntry] = field(default_factory=list)
    loaded: list[ModelSpec] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    #: Global settings changed through PATCH /admin/config.
    settings: dict[str, Any] = field(default_factory=dict)


def spec_to_state(spec: ModelSpec) -> dict[str, Any]:
    return {"id": spec.id, "kind": spec.kind, "owned_by": spec.owned_by,
            "created": spec.created, **dict(spec.overrides)}


def read(path: str) -> State:
    """The saved state, an empty one if the file does not exist yet; ConfigError if broken."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return State()
    except OSError as exc:
        raise ConfigError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    try:
        data = orjson.loads(raw)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"not a fastmock state file of version {VERSION}")
        state = State()
        for item in data.get("keys", []):
            state.keys.append(KeyEntry(str(item["name"]), bytes.fromhex(item["sha256"]),
                                       str(item["key_prefix"]), int(item["created"]), "admin"))
        for item in data.get("models", []):
            item = dict(item)
            model_id = item.pop("id")
            created = int(item.pop("created", 1_700_000_000))
            spec = model_spec(model_id, item, f"{path}: models.{model_id}")
            state.loaded.append(ModelSpec(spec.id, spec.kind, spec.owned_by, created,
                                          spec.overrides))
        state.unloaded = [str(i) for i in data.get("unloaded", [])]
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise ValueError("settings must be an object")
        state.settings = {key: coerce_setting(key, value, f"{path}: settings")
                          for key, value in settings.items()}
        return state
    except ConfigError as exc:
        raise ConfigError(f"state file {path} is invalid: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"state file {path} is corrupt: {exc}") from None


def write(path: str, state: State) -> None:
    """Replace the state file atomically (temporary file, fsync, rename, fsync the folder)."""
    data = orjson.dumps({
        "version": VERSION,
        "keys": [k.to_state() for k in state.keys],
        "models": [spec_to_state(m) for m in state.loaded],
        "unloaded": state.unloaded,
        "settings": state.settings,
    }, option=orjson.OPT_INDENT_2)
    import tempfile  # only when writing: it costs startup time

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fastmock-state-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
