"""Keys, the admin API and the state file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from fastmock import statefile
from fastmock.config import Config, ConfigError
from fastmock.protocol_h11 import H11Protocol
from fastmock.protocol_httptools import HttpToolsProtocol
from fastmock.reply import Reply
from fastmock.routes import route
from fastmock.routes.common import Request
from fastmock.server import restore_state
from fastmock.state import App
from helpers import Rig, parse_responses, request_bytes

KEY = "sk-config-0123456789"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def call(app: App, method: str, path: str, body: Any = None, headers: list[tuple[bytes, bytes]]
         | None = None, loopback: bool = True) -> Reply:
    raw = b"" if body is None else orjson.dumps(body)
    return route(Request(method.encode(), path.encode(), headers or [], raw, loopback), app)


def bearer(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", b"Bearer " + key.encode())]


def test_open_without_keys() -> None:
    app = App(Config())
    assert call(app, "POST", "/v1/chat/completions", CHAT).status == 200


@pytest.mark.parametrize("header", [b"authorization", b"api-key", b"x-api-key"])
def test_a_key_is_needed_once_one_exists(header: bytes) -> None:
    app = App(Config(api_keys=(KEY,)))
    denied = call(app, "POST", "/v1/chat/completions", CHAT)
    assert denied.status == 401
    error = orjson.loads(denied.body)["error"]
    assert error["code"] == "invalid_api_key" and set(error) == {"message", "type", "param",
                                                                  "code"}
    value = (b"Bearer " if header == b"authorization" else b"") + KEY.encode()
    assert call(app, "POST", "/v1/chat/completions", CHAT, [(header, value)]).status == 200
    # the same rule without the /v1 prefix, and for every API route
    assert call(app, "GET", "/models").status == 401
    assert call(app, "GET", "/models", headers=bearer(KEY)).status == 200
    # liveness and counters stay open
    assert call(app, "GET", "/health").status == 200
    assert call(app, "GET", "/stats").status == 200


def test_wrong_key_is_refused_and_never_echoed() -> None:
    app = App(Config(api_keys=(KEY,)))
    reply = call(app, "GET", "/v1/models", headers=bearer("sk-wrong-guess-123"))
    assert reply.status == 401 and b"sk-wrong" not in reply.body and KEY.encode() not in \
        reply.body
    assert call(app, "GET", "/v1/models", headers=[(b"authorization", KEY.encode())]).status \
        == 401   # no Bearer scheme


def test_admin_keys_lifecycle() -> None:
    app = App(Config())
    created = orjson.loads(call(app, "POST", "/admin/auth/keys", {"name": "ci"}).body)
    key = created["key"]
    assert key.startswith("sk-mock-") and len(key) > 30 and created["name"] == "ci"
    listing = call(app, "GET", "/admin/auth/keys")
    assert key.encode() not in listing.body                      # never shown again
    (entry,) = orjson.loads(listing.body)["data"]
    assert entry["key_prefix"].endswith("...") and key.startswith(entry["key_prefix"][:-3])
    assert call(app, "GET", "/v1/models").status == 401          # auth is now on
    assert call(app, "GET", "/v1/models", headers=bearer(key)).status == 200
    assert call(app, "DELETE", "/admin/auth/keys/sk-mock-nope").status == 404
    assert call(app, "DELETE", f"/admin/auth/keys/{key}").status == 200
    assert call(app, "GET", "/v1/models").status == 200          # the last key gone: open
    call(app, "POST", "/admin/auth/keys", {"name": "a"})
    call(app, "POST", "/admin/auth/keys", {})
    out = orjson.loads(call(app, "DELETE", "/admin/auth/keys").body)
    assert out == {"deleted": 2, "auth_enabled": False}


def test_admin_models_load_unload() -> None:
    app = App(Config())
    loaded = call(app, "POST", "/admin/models/load", {
        "model_id": "custom-gpt-4", "model_type": "chat", "owned_by": "my-org",
        "itl_ms": 20, "response_text": "custom reply"})
    assert loaded.status == 200
    ids = [m["id"] for m in orjson.loads(call(app, "GET", "/v1/models").body)["data"]]
    assert "custom-gpt-4" in ids
    one = orjson.loads(call(app, "GET", "/v1/models/custom-gpt-4").body)
    assert one["owned_by"] == "my-org"
    reply = call(app, "POST", "/v1/chat/completions", dict(CHAT, model="custom-gpt-4"))
    assert reply.steps is None and b"custom reply" in reply.body   # its text ...
    assert reply.pace is not None and reply.pace.delay(reply.wait_steps) > 0   # ... paced
    emb = call(app, "POST", "/admin/models/load", {"model_id": "e", "model_type": "embedding",
                                                    "embedding_dimensions": 8})
    assert emb.status == 200
    vec = orjson.loads(call(app, "POST", "/v1/embeddings", {"model": "e", "input": "x"}).body)
    assert len(vec["data"][0]["embedding"]) == 8
    for bad, param in [({"model_type": "chat"}, "model_id"),
                       ({"model_id": "x", "model_type": "video"}, "model_type"),
                       ({"model_id": "x", "speed": 1}, "speed")]:
        reply = call(app, "POST", "/admin/models/load", bad)
        assert reply.status == 400 and orjson.loads(reply.body)["error"]["param"] == param
    assert call(app, "POST", "/admin/models/load", {"model_id": "x", "itl_ms": -1}).status == 400
    assert call(app, "POST", "/admin/models/unload", {"model_id": "custom-gpt-4"}).status == 200
    assert call(app, "GET", "/v1/models/custom-gpt-4").status == 404
    assert call(app, "POST", "/admin/models/unload", {"model_id": "custom-gpt-4"}).status == 404
    out = orjson.loads(call(app, "POST", "/admin/models/unload_all").body)
    assert out["deleted"] > 5
    assert orjson.loads(call(app, "GET", "/v1/models").body)["data"] == []
    assert call(app, "POST", "/v1/chat/completions", CHAT).status == 200   # any name still


def test_admin_needs_loopback_or_the_admin_key() -> None:
    app = App(Config())
    far = call(app, "GET", "/admin/auth/keys", loopback=False)
    assert far.status == 403 and orjson.loads(far.body)["error"]["code"] == "admin_loopback_only"
    keyed = App(Config(admin_key="admin-secret-1"))
    assert call(keyed, "GET", "/admin/auth/keys").status == 401          # even from loopback
    assert call(keyed, "GET", "/admin/auth/keys", headers=bearer("wrong-key-123")).status == 401
    assert call(keyed, "GET", "/admin/auth/keys", headers=bearer("admin-secret-1"),
                loopback=False).status == 200
    # API keys do not open the admin API, and the admin key is not an API key
    both = App(Config(admin_key="admin-secret-1", api_keys=(KEY,)))
    assert call(both, "GET", "/admin/auth/keys", headers=bearer(KEY)).status == 401
    assert call(both, "GET", "/v1/models", headers=bearer("admin-secret-1")).status == 401


@pytest.mark.parametrize("handler", [H11Protocol, HttpToolsProtocol])
@pytest.mark.parametrize(("peer", "status"), [(("10.1.2.3", 5000), 403),
                                               (("192.168.0.9", 5000), 403),
                                               (("::ffff:127.0.0.1", 5000, 0, 0), 200),
                                               (("::1", 5000, 0, 0), 200),
                                               (("127.0.0.2", 5000), 200)])
def test_admin_peer_address_through_the_protocol(handler: Any, peer: tuple[Any, ...],
                                                 status: int) -> None:
    rig = Rig(Config(), handler=handler, peer=peer)
    (resp,) = parse_responses(rig.feed(request_bytes("GET", "/admin/auth/keys")), method=b"GET")
    assert resp.status == status


def test_state_file_round_trip(tmp_path: Path) -> None:
    path = str(tmp_path / "state.json")
    app = App(Config(state_file=path))
    restore_state(app, path)
    key = orjson.loads(call(app, "POST", "/admin/auth/keys", {"name": "kept"}).body)["key"]
    call(app, "POST", "/admin/models/load", {"model_id": "kept-model", "model_type": "rerank"})
    call(app, "POST", "/admin/models/unload", {"model_id": "gpt-4o"})
    text = Path(path).read_text()
    assert key not in text                                   # only the digest is stored
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]   # no temporary file left
    again = App(Config(state_file=path))
    restore_state(again, path)
    assert call(again, "GET", "/v1/models", headers=bearer(key)).status == 200
    assert call(again, "GET", "/v1/models").status == 401
    assert again.profiles["kept-model"].kind == "rerank"
    assert "gpt-4o" not in again.profiles and "gpt-4o-mini" in again.profiles
    call(again, "DELETE", "/admin/auth/keys", headers=bearer(key))
    third = App(Config(state_file=path))
    restore_state(third, path)
    assert not third.keys.active


@pytest.mark.parametrize("content", [b"{broken", b"[]", b'{"version": 9}',
                                     b'{"version": 1, "keys": [{"name": "x"}]}',
                                     b'{"version": 1, "models": [{"id": "m", "kind": "video"}]}'])
def test_corrupt_state_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="state file"):
        statefile.read(str(path))


def test_unreadable_state_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read state file"):
        statefile.read(str(tmp_path))            # a folder, not a file
    assert statefile.read(str(tmp_path / "new.json")).keys == []   # missing: a fresh start


def test_state_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    statefile.write(str(path), statefile.State(unloaded=["a"]))
    before = path.read_bytes()

    def crash(*_: Any) -> None:
        raise OSError("disk died")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        statefile.write(str(path), statefile.State(unloaded=["b"]))
    assert path.read_bytes() == before                       # the old file, whole
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
