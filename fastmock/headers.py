"""Which request headers fastmock reads, looked up by their raw name in any letter case.

A request carries a dozen headers and fastmock acts on a few. Each parser looks a header's
name up as it arrived (``Content-Length`` or ``content-length``) in one table, filled on first
sight of each spelling, so a header costs one dict probe and no lower-casing. Names that do
not matter are remembered as such; the table is bounded (a client sending random names only
makes it forget and relearn).
"""

from __future__ import annotations

IGNORE, KEY, LENGTH, EXPECT, CONNECTION, OTHER = range(6)

#: The headers a client may present an API key in (see ``keys.presented_key``).
KEY_NAMES = frozenset({b"authorization", b"api-key", b"x-api-key"})

_FIXED = {b"content-length": LENGTH, b"expect": EXPECT, b"connection": CONNECTION}

#: Spellings remembered before the table starts again.
TABLE_LIMIT = 4096


class HeaderTable:
    """Raw header name -> what fastmock does with it (one of the kinds above)."""

    __slots__ = ("kinds", "quiet", "_others")

    def __init__(self) -> None:
        #: Read directly by the parsers: ``kinds.get(name)``, None for a new spelling.
        self.kinds: dict[bytes, int] = {}
        #: The spellings a complete request needs nothing from, or reads directly: IGNORE,
        #: LENGTH and EXPECT (which only matter while a body is still to come) and KEY (read
        #: with one ``dict.get`` by the spelling the connection used last). When every name
        #: of a request is in here, one subset test reads its head.
        self.quiet: set[bytes] = set()
        self._others: tuple[bytes, ...] = ()

    def answer_headers(self, prefixes: tuple[bytes, ...]) -> None:
        """Headers (lower-case names, or prefixes ending in ``-``) that change the answer:
        a request that carries one is never answered from a kept reply."""
        self._others = prefixes
        self.kinds.clear()
        self.quiet.clear()

    def kind(self, name: bytes) -> int:
        """What to do with a header of this spelling (learned on first sight)."""
        found = self.kinds.get(name)
        return self.classify(name) if found is None else found

    def classify(self, name: bytes) -> int:
        lower = name.lower()
        if lower in KEY_NAMES:
            kind = KEY
        else:
            kind = _FIXED.get(lower, IGNORE)
            if kind == IGNORE and any(lower == p or (p.endswith(b"-") and lower.startswith(p))
                                      for p in self._others):
                kind = OTHER
        if len(self.kinds) >= TABLE_LIMIT:
            self.kinds.clear()
            self.quiet.clear()
        self.kinds[name] = kind
        if kind in (IGNORE, LENGTH, EXPECT, KEY):
            self.quiet.add(name)
        return kind
