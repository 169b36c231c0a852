"""What one "token" is in fastmock, and how prompts are estimated.

A token is a word piece, chosen so that the pieces of a text join back to exactly that text:

- a run of up to 8 ASCII letters, with the single space before it if there is one;
- a run of up to 3 digits, with its leading space (as GPT tokenizers group numbers);
- any other single character (a CJK character, an emoji, a punctuation mark), with its
  leading space;
- a whitespace character that is not a word's leading space.

For English prose this gives about 1.3 tokens per word, close to OpenAI's tokenizers, without
shipping (or downloading) a vocabulary. Completion usage counts exactly the pieces that were sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PIECE = re.compile(r" ?[A-Za-z]{1,8}| ?[0-9]{1,3}| ?[^A-Za-z0-9\s]|\s")

#: Tokens OpenAI adds around each chat message ("<|start|>role ... <|end|>"), and the reply primer.
PER_MESSAGE_TOKENS = 4
REPLY_PRIMER_TOKENS = 3


def split(text: str) -> list[str]:
    """Split ``text`` into tokens; ``"".join(split(t)) == t`` for every string."""
    return _PIECE.findall(text)


def count(text: str) -> int:
    """Number of tokens in ``text`` (the same as ``len(split(text))``).

    Longer ASCII text (nearly every prompt) is counted by a few passes of C over its bytes
    (``count_ascii``, a quarter of the pattern's cost per character); short or other text
    is split by the pattern (``count_ascii`` has a fixed cost of about 30 characters' worth).
    """
    if not text.isascii():
        return len(_PIECE.findall(text))
    if len(text) < SHORT:
        # Short ASCII text (a counter at the end of a prompt) is counted by its classes
        # of characters, which is all the pattern looks at: " 12345." -> " 00000.".
        shape = text.encode().translate(_CLASSES)
        found = _SHORT_COUNTS.get(shape)
        if found is None:
            if len(_SHORT_COUNTS) >= _COUNTS_LIMIT:
                _SHORT_COUNTS.clear()
            found = _SHORT_COUNTS[shape] = len(_PIECE.findall(shape.decode()))
        return found
    return count_ascii(text.encode())


#: Below this length the pattern counts faster than ``count_ascii`` (measured: callgrind).
SHORT = 32


_ASCII_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ASCII_DIGITS = b"0123456789"
#: The ASCII characters the pattern's ``\\s`` matches (str patterns: the C0 separators too).
_ASCII_SPACES = b" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def _table(keep: bytes, symbol: bytes, also: bytes = b"", also_symbol: bytes = b"") -> bytes:
    """A ``bytes.translate`` table that maps ``keep`` to ``symbol``, ``also`` to
    ``also_symbol``, and every other byte to ``x``."""
    table = bytearray(b"x" * 256)
    for c in keep:
        table[c] = symbol[0]
    for c in also:
        table[c] = also_symbol[0]
    return bytes(table)


_LETTERS = _table(_ASCII_LETTERS, b"a")
_DIGITS = _table(_ASCII_DIGITS, b"0")
_SPACES = _table(b" ", b" ", _ASCII_SPACES[1:], b"w")
#: ASCII characters that are a token each: punctuation, symbols, controls, non-space whitespace.
_SINGLE = bytes(sorted(set(range(128)) - set(_ASCII_LETTERS + _ASCII_DIGITS + b" ")))
#: ASCII letters to ``a``, digits to ``0``, whitespace as it is, the rest to ``.``: a text and
#: its classes split into the same number of tokens.
_CLASSES = bytes(
    b"a"[0] if c in _ASCII_LETTERS else b"0"[0] if c in _ASCII_DIGITS
    else c if c in _ASCII_SPACES else b"."[0] for c in range(256))
#: Counts of short texts by their classes (a few hundred shapes cover a load test's counters).
_SHORT_COUNTS: dict[bytes, int] = {}


def count_ascii(data: bytes) -> int:
    """Tokens of ASCII ``data``, counted as the pattern would split it, without splitting.

    The tokens are: per run of L letters, ``(L + 7) // 8``; per run of L digits,
    ``(L + 2) // 3``; one per other character; and one per space that does not lead a token
    (a space leads the token after it unless whitespace or the end follows). A run is counted
    by its start (``xa`` once letters are ``a`` and the rest ``x``); a long run's extra tokens
    by counting its letters after the first in eights (``xa`` -> ``xx``, then ``aaaaaaaa``).
    Each step is one pass of C over the bytes, and no word becomes an object.
    """
    if not data:
        return 0
    letters = b"x" + data.translate(_LETTERS)
    digits = b"x" + data.translate(_DIGITS)
    n = letters.count(b"xa") + digits.count(b"x0")
    if b"aaaaaaaaa" in letters:
        n += letters.replace(b"xa", b"xx").count(b"aaaaaaaa")
    if b"0000" in digits:
        n += digits.replace(b"x0", b"xx").count(b"000")
    n += len(data) - len(data.translate(None, _SINGLE))
    return n + data.count(b" ") - data.translate(_SPACES).count(b" x")


#: Counts remembered per text. A conversation resends its earlier messages, and a load test
#: that varies its prompt usually appends a counter to a fixed text: the count of everything
#: before the last space is remembered as well (a space always begins a token, so a text's
#: count is the sum of the counts of the two sides of any space). Emptied when full.
_COUNTS: dict[str, int] = {}
_COUNTS_LIMIT = 4096


def count_cached(text: str) -> int:
    found = _COUNTS.get(text)
    if found is None:
        found = _remember(text, count_by_head(text))
    return found


def count_by_head(text: str) -> int:
    """The tokens of ``text``, its part before the last space counted once (remembered)."""
    cut = text.rfind(" ")
    if cut <= 0:
        return count(text)
    head = text[:cut]
    known = _COUNTS.get(head)
    if known is None:
        known = _remember(head, count(head))
    return known + count(text[cut:])


def _remember(text: str, n: int) -> int:
    if len(_COUNTS) >= _COUNTS_LIMIT:
        _COUNTS.clear()
    _COUNTS[text] = n
    return n


def estimate_chat_prompt(texts: Iterable[str], messages: int) -> int:
    """Estimate prompt tokens: the tokens of every text part, plus the per-message framing."""
    return sum(map(count_cached, texts)) + PER_MESSAGE_TOKENS * messages + REPLY_PRIMER_TOKENS
