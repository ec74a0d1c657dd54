"""`ui/completion_limits.py`: OpenAI's `max_tokens` and `stop` over a reply fed whole or in any pieces."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.core.tokens import get_encoding
from ui.completion_limits import CompletionLimits, ContentCutter, cut_content, within_tokens

# Short alphabets, so that stop sequences occur and pieces split them; multi-byte characters and runs of
# white space, which tiktoken splits and joins unlike plain words.
TEXT = st.text(alphabet="ab [1]\n æø🎉中", max_size=80)
STOP = st.text(alphabet="ab [1]\næ", min_size=1, max_size=4)


@pytest.fixture(scope="module")
def o200k(tiktoken_cache):
    return get_encoding("o200k_base", tiktoken_cache)


def fed_in_pieces(text: str, cuts: list[int], limits: CompletionLimits, encoding) -> tuple[str, str | None]:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    cutter = ContentCutter(limits, encoding)
    sent = "".join(cutter.feed(text[a:b]) for a, b in itertools.pairwise(bounds))
    return sent + cutter.finish(), cutter.reason


@settings(max_examples=300, deadline=None)
@given(text=TEXT, stops=st.lists(STOP, max_size=4), cuts=st.lists(st.integers(0, 80), max_size=8))
def test_a_stop_sequence_cuts_before_its_first_occurrence_however_the_text_is_split(text, stops, cuts):
    limits = CompletionLimits(stop=tuple(stops))
    # A model stops at the first sequence it completes: the one that ends first, the longer of two ending there.
    found = [(text.find(s) + len(s), text.find(s)) for s in stops if s in text]
    expected = text[: min(found)[1]] if found else text
    assert cut_content(text, limits) == (expected, "stop" if found else None)
    assert fed_in_pieces(text, cuts, limits, None) == (expected, "stop" if found else None)


@settings(max_examples=300, deadline=None)
@given(
    text=TEXT,
    max_tokens=st.integers(1, 30),
    stops=st.lists(STOP, max_size=2),
    cuts=st.lists(st.integers(0, 80)),
)
def test_a_cut_reply_is_a_start_of_the_reply_within_the_token_limit(o200k, text, max_tokens, stops, cuts):
    limits = CompletionLimits(max_tokens=max_tokens, stop=tuple(stops))
    for shown, reason in (cut_content(text, limits, o200k), fed_in_pieces(text, cuts, limits, o200k)):
        assert text.startswith(shown)
        assert len(o200k.encode(shown)) <= max_tokens  # what `usage` reports never passes the limit
        assert not any(s in shown for s in stops)
        assert (reason is None) == (shown == text and not any(s in text for s in stops))
        if reason == "length":
            assert len(o200k.encode(text)) > max_tokens or any(s in text for s in stops)


def test_the_token_cut_keeps_whole_tokens_and_never_half_a_character(o200k):
    text = "Avtalen ble signert i Pyongyang 🎉🎉 i juni."
    tokens = o200k.encode(text)
    for n in range(1, len(tokens) + 1):
        head = within_tokens(text, n, o200k)
        assert text.startswith(head) and len(o200k.encode(head)) <= n
    assert within_tokens(text, 5, o200k) == o200k.decode(tokens[:5])
    assert within_tokens(text, len(tokens), o200k) == text


def test_limits_are_checked_when_made():
    with pytest.raises(ValueError, match="stop sequence cannot be empty"):
        CompletionLimits(stop=("",))
    with pytest.raises(ValueError, match="at least 1"):
        CompletionLimits(max_tokens=0)
    with pytest.raises(ValueError, match="encoding"):
        ContentCutter(CompletionLimits(max_tokens=3))
