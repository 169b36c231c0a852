"""Reply text: canned, an echo of the request, or deterministic lorem."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import tokens

if TYPE_CHECKING:
    from typing import Any

_LOREM_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum eu fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
).split()


def lorem(n_tokens: int, seed: int = 0) -> list[str]:
    """Exactly ``n_tokens`` tokens of pseudo-Latin; the same (n, seed) gives the same text."""
    state = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    out: list[str] = []
    sentence_len = 0
    while len(out) < n_tokens:
        # A 32-bit LCG (Numerical Recipes): deterministic across runs and platforms.
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        word = _LOREM_WORDS[(state >> 8) % len(_LOREM_WORDS)]
        if sentence_len == 0:
            word = word.capitalize()
        piece = word if not out else " " + word
        sentence_len += 1
        if sentence_len >= 6 + (state >> 24) % 9:
            piece += "."
            sentence_len = 0
        out.extend(tokens.split(piece))
    return out[:n_tokens]


def message_text(content: Any) -> str:
    """The text of a chat message's ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""
