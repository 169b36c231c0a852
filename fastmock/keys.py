"""API keys: kept as SHA-256 digests, compared in constant time, never logged or echoed.

Zero-config by default: with no key the API is open. Once a key exists, every API request
must present one as ``Authorization: Bearer <key>``, ``api-key: <key>`` (Azure clients) or
``x-api-key: <key>``. Removing the last key opens the API again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .reply import Header


class KeyEntry:
    """A key as it is kept: never the key itself. Never changed once built."""

    __slots__ = ("name", "digest", "prefix", "created", "source")

    def __init__(self, name: str, digest: bytes, prefix: str, created: int,
                 source: str) -> None:
        self.name = name
        self.digest = digest
        self.prefix = prefix    # enough of the key to recognise it, never enough to use it
        self.created = created
        self.source = source    # "config" (flags, environment, file) or "admin" (at run time)

    @property
    def id(self) -> str:
        """A stable handle for the admin API (from the digest: it says nothing of the key)."""
        return "key_" + self.digest[:6].hex()

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "key_prefix": self.prefix,
                "created": self.created, "source": self.source}

    def to_state(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.digest.hex(), "key_prefix": self.prefix,
                "created": self.created}


def digest(key: bytes) -> bytes:
    import hashlib  # only once keys exist (hashlib, hmac and secrets cost a start ~4 ms)

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


#: Accepted key headers remembered as they arrived; see ``KeyRing.accepted``.
ACCEPTED_LIMIT = 1024


class KeyRing:
    """The keys that open the API."""

    __slots__ = ("_entries", "accepted", "active", "admin", "read", "forget")

    def __init__(self, admin: bool = False) -> None:
        self._entries: dict[bytes, KeyEntry] = {}
        #: Values of key headers (``Bearer sk-...``, or a bare key) that were checked and
        #: accepted: a load test sends the same header again and again, and looking it up here
        #: costs one dict probe instead of a SHA-256 and a comparison with every key. Only
        #: accepted values are kept, so a client cannot fill it; CPython compares a stored
        #: value's bytes only after its full 64-bit hash (keyed per process) matched, so the
        #: probe's time says nothing about the keys. Emptied whenever the keys change.
        self.accepted: dict[bytes, bool] = {}
        #: Whether any key exists (then every API request must present one).
        self.active = False
        #: Whether an admin key is set (admin requests present it like an API key).
        self.admin = admin
        #: Whether requests must be read for a key at all (API keys exist, or an admin key).
        self.read = admin
        #: Called when the keys change, after ``accepted`` is emptied: the connections forget
        #: the key they accepted last (see ``protocol.BaseProtocol.known``).
        self.forget: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: str, name: str, source: str, created: int | None = None) -> KeyEntry:
        entry = KeyEntry(name, digest(key.encode()), mask(key),
                         int(time.time()) if created is None else created, source)
        self._entries[entry.digest] = entry
        self._changed()
        return entry

    def restore(self, entry: KeyEntry) -> None:
        self._entries[entry.digest] = entry
        self._changed()

    def create(self, name: str, key: str | None = None) -> tuple[str, KeyEntry]:
        """A new key (the caller's, or a fresh ``sk-mock-...``; shown to its creator once) and
        its entry."""
        if key is None:
            import secrets

            key = "sk-mock-" + secrets.token_hex(24)
        return key, self.add(key, name, "admin")

    def has(self, key: str) -> bool:
        return digest(key.encode()) in self._entries

    def find(self, handle: str) -> list[KeyEntry]:
        """The entries ``handle`` names: the key itself, else an id, else a name or a listed
        masked prefix (which may name several)."""
        entry = self._entries.get(digest(handle.encode()))
        if entry is not None:
            return [entry]
        for field in ("id", "name", "prefix"):
            found = [e for e in self._entries.values() if getattr(e, field) == handle]
            if found:
                return found
        return []

    def remove_entry(self, entry: KeyEntry) -> None:
        self._entries.pop(entry.digest, None)
        self._changed()

    def clear(self) -> int:
        count = len(self._entries)
        self._entries.clear()
        self._changed()
        return count

    def _changed(self) -> None:
        self.active = bool(self._entries)
        self.read = self.active or self.admin
        self.accepted.clear()
        if self.forget is not None:
            self.forget()

    def check_headers(self, headers: list[Header]) -> bool:
        """Whether the request's headers (lower-case names) present one of our keys."""
        return self.check(presented_key(headers))

    def remember(self, header: Header) -> None:
        """Remember ``header`` (its name as sent, its value) if it presents one of our keys,
        so that the next request that sends it costs a dict probe (see ``accepted``)."""
        if header[1] not in self.accepted \
                and self.check(presented_key([(header[0].lower(), header[1])])):
            if len(self.accepted) >= ACCEPTED_LIMIT:
                self.accepted.clear()
            self.accepted[header[1]] = True

    def check(self, key: bytes | None) -> bool:
        """Whether ``key`` is one of ours; every digest is compared, in constant time each."""
        if key is None:
            return False
        import hmac

        wanted = digest(key)
        found = False
        for known in self._entries:
            found |= hmac.compare_digest(known, wanted)
        return found

    def entries(self) -> list[KeyEntry]:
        return list(self._entries.values())
