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
    """Number of tokens in ``text`` (the same as ``len(split(text))``)."""
    return len(_PIECE.findall(text))


#: Load tests send the same prompts again and again: counts are remembered per text (the
#: cache is emptied when full, which costs one recount per text).
_COUNTS: dict[str, int] = {}
_COUNTS_LIMIT = 4096


def count_cached(text: str) -> int:
    found = _COUNTS.get(text)
    if found is None:
        found = len(_PIECE.findall(text))
        if len(_COUNTS) >= _COUNTS_LIMIT:
            _COUNTS.clear()
        _COUNTS[text] = found
    return found


def estimate_chat_prompt(texts: Iterable[str], messages: int) -> int:
    """Estimate prompt tokens: the tokens of every text part, plus the per-message framing."""
    return sum(map(count_cached, texts)) + PER_MESSAGE_TOKENS * messages + REPLY_PRIMER_TOKENS
