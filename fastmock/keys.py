"""API keys: kept as SHA-256 digests, compared in constant time, never logged or echoed.

Zero-config by default: with no key the API is open. Once a key exists, every API request
must present one as ``Authorization: Bearer <key>``, ``api-key: <key>`` (Azure clients) or
``x-api-key: <key>``. Removing the last key opens the API again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from .reply import Header


@dataclass(frozen=True, slots=True)
class KeyEntry:
    name: str
    digest: bytes
    prefix: str        # enough of the key to recognise it, never enough to use it
    created: int
    source: str        # "config" (flags, environment, file) or "admin" (created at run time)

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "key_prefix": self.prefix, "created": self.created,
                "source": self.source}

    def to_state(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.digest.hex(), "key_prefix": self.prefix,
                "created": self.created}


def digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def mask(key: str) -> str:
    return key[:11] + "..." if len(key) > 14 else key[:3] + "..."


def presented_key(headers: list[Header]) -> bytes | None:
    """The key a request presents, from any of the three headers clients use."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
        elif name in (b"api-key", b"x-api-key") and value.strip():
            return value.strip()
    return None


class KeyRing:
    """The keys that open the API."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[bytes, KeyEntry] = {}

    @property
    def active(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, name: str, source: str, created: int | None = None) -> KeyEntry:
        entry = KeyEntry(name, digest(key.encode()), mask(key),
                         int(time.time()) if created is None else created, source)
        self._entries[entry.digest] = entry
        return entry

    def restore(self, entry: KeyEntry) -> None:
        self._entries[entry.digest] = entry

    def create(self, name: str) -> tuple[str, KeyEntry]:
        """A new ``sk-mock-...`` key (shown to its creator once) and its entry."""
        key = "sk-mock-" + secrets.token_hex(24)
        return key, self.add(key, name, "admin")

    def remove(self, key: bytes) -> KeyEntry | None:
        return self._entries.pop(digest(key), None)

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        return count

    def check(self, key: bytes | None) -> bool:
        """Whether ``key`` is one of ours; every digest is compared, in constant time each."""
        if key is None:
            return False
        wanted = digest(key)
        found = False
        for known in self._entries:
            found |= hmac.compare_digest(known, wanted)
        return found

    def entries(self) -> list[KeyEntry]:
        return list(self._entries.values())
