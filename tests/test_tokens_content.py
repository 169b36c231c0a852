from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastmock import content, tokens


@given(st.text())
def test_tokens_join_back_to_the_text(text: str) -> None:
    assert "".join(tokens.split(text)) == text
    assert tokens.count(text) == len(tokens.split(text))


#: ASCII with every kind of character the rule tells apart, long runs made likely.
PIECES = [chr(c) for c in range(128)] + ["a" * 9, "b" * 17, "7" * 4, "0" * 7, "  ", "\x1f"]
ASCII_TEXT = st.lists(st.sampled_from(PIECES)).map("".join)


@given(ASCII_TEXT)
def test_ascii_count_is_the_pattern_count(text: str) -> None:
    assert tokens.count_ascii(text.encode()) == len(tokens.split(text))
    # (short texts are counted by their classes of characters, then remembered: twice)
    assert tokens.count(text) == tokens.count(text) == len(tokens.split(text))


@given(ASCII_TEXT, st.text())
def test_a_space_always_begins_a_token(head: str, tail: str) -> None:
    text = head + " " + tail
    cut = len(head)
    assert tokens.count(text) == tokens.count(text[:cut]) + tokens.count(text[cut:])
    assert tokens.count_cached(text) == tokens.count(text)
    assert tokens.count_cached(text + "x 1") == tokens.count(text + "x 1")


def test_token_rule_examples() -> None:
    assert tokens.split("Hello, world!") == ["Hello", ",", " world", "!"]
    assert tokens.split("extraordinarily") == ["extraord", "inarily"]
    assert tokens.split("in 2026") == ["in", " 202", "6"]
    assert tokens.split("你好") == ["你", "好"]
    assert tokens.split("a  b") == ["a", " ", " b"]


def test_prompt_estimate_counts_framing() -> None:
    # 2 messages: 4 framing tokens each, plus 3 for the reply primer.
    assert tokens.estimate_chat_prompt(["hi", "Hello world"], 2) == 1 + 2 + 8 + 3


def test_lorem_is_deterministic_and_exact() -> None:
    a = content.lorem(50)
    assert a == content.lorem(50)
    assert len(a) == 50
    assert content.lorem(50, seed=1) != a
    assert content.lorem(10) == a[:10]
    text = "".join(a)
    assert text[0].isupper() and "." in text


def test_last_user_text_handles_parts() -> None:
    msgs = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "a"},
                                         {"type": "image_url", "image_url": {"url": "u"}},
                                         {"type": "text", "text": "b"}]}]
    assert content.last_user_text(msgs) == "ab"
    assert content.last_user_text([{"role": "system", "content": "s"}]) == ""


def test_character_tables_are_the_pattern_classes() -> None:
    import re

    for c in range(128):
        ch = chr(c)
        assert (tokens._LETTERS[c] == ord("a")) == bool(re.fullmatch("[A-Za-z]", ch))
        assert (tokens._DIGITS[c] == ord("0")) == bool(re.fullmatch("[0-9]", ch))
        assert (tokens._SPACES[c] == ord(" ")) == (ch == " ")
        assert (tokens._SPACES[c] == ord("w")) == (ch != " " and bool(re.fullmatch(r"\s", ch)))
        assert (c in tokens._SINGLE) == (not re.fullmatch(r"[A-Za-z0-9 ]", ch))
