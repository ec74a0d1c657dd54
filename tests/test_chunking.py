"""Chunking invariants, property-based: size bound, exact offsets, full coverage, stable ids."""

import itertools
import random
import re
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.core.errors import ConfigError
from assistant.core.sentences import sentence_spans
from assistant.testing.corpus import SEED
from ingest.articles import make_article
from ingest.chunking import Chunker
from ingest.loaders import load_file

WORDS = [
    "Nord-Korea",
    "avtalen",
    "Putin",
    "sa",
    "at",
    "det",
    "er",
    "1961",
    "«sitat»",
    "–",
    "bl.a.",
    "kl.",
    "14",
    "Artikkel",
    "4",
    "FN-pakten",
    "ærlig",
    "går",
    "Hello",
    "world",
    "x" * 60,
    "e.g.",
    "Dr.",
    "USA",
]
paragraph = st.lists(st.sampled_from(WORDS), min_size=1, max_size=120).map(" ".join)
body = st.lists(paragraph, min_size=1, max_size=12).map("\n".join)


def _check(chunker, article):
    chunks = chunker.split(article)
    assert chunks, "a non-empty article has at least one chunk"
    for position, chunk in enumerate(chunks):
        assert chunk.position == position and chunk.article_id == article.id
        assert article.text[chunk.start : chunk.end] == chunk.text
        assert chunk.token_count == chunker.count(chunk.text) <= chunker.size
        assert chunk.text == chunk.text.strip()
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(article.text) if not ch.isspace()), (
        "text lost between chunks"
    )
    assert [c.start for c in chunks] == sorted(c.start for c in chunks)
    return chunks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=body, size=st.integers(min_value=32, max_value=300), overlap_share=st.floats(0, 0.45))
def test_chunks_respect_size_offsets_and_cover_the_text(encoding, text, size, overlap_share):
    article = make_article(title="Tittel", body=text, given_id="a", language="nb")
    if not article.text:
        return
    chunker = Chunker(encoding, size=size, overlap=int(size * overlap_share))
    first = _check(chunker, article)
    assert [c.id for c in chunker.split(article)] == [c.id for c in first]  # stable across runs


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=3000))
def test_arbitrary_unicode_never_breaks_the_invariants(encoding, text):
    article = make_article(title="T", body=text, given_id="u", language="en")
    if article.text:
        _check(Chunker(encoding, size=40, overlap=8), article)


def test_seed_article_chunks_keep_the_article4_paragraph_whole(encoding):
    [article] = load_file(SEED).articles
    chunks = _check(Chunker(encoding, size=180, overlap=30), article)
    paragraph = next(p for p in article.text.split("\n\n") if p.startswith("Artikkel 4 i avtalen sier"))
    assert any(paragraph in c.text for c in chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_overlap_repeats_whole_sentences(encoding):
    text = " ".join(f"Setning nummer {i} handler om noe helt eget." for i in range(60))
    article = make_article(title="T", body=text, given_id="o", language="nb")
    chunks = Chunker(encoding, size=64, overlap=20).split(article)
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end, "consecutive chunks overlap"
        assert re.match(r"Setning nummer \d+", b.text), "a chunk starts at a sentence"


def test_settings_are_validated_when_the_chunker_is_built(encoding):
    with pytest.raises(ConfigError):
        Chunker(encoding, size=400, overlap=500)
    with pytest.raises(ConfigError):
        Chunker(encoding, size=8)


@pytest.mark.parametrize(
    "sentences",
    [
        [
            "Møtet er 27. november kl. 14 i Oslo.",
            "Bl.a. Putin deltok.",
            "«Hvis en part angripes.»",
            "Det sa Kim.",
        ],
        # an abbreviation opening a parenthesis or a quote: "(ca. 25% av Makedonias befolkning)" was quoted as
        # "... befolkningen (ca."
        [
            "Avtalen bedret rettighetene (ca. 25% av befolkningen).",
            "Bydelene (St. Hanshaugen) ligger vest.",
            "«Mr. Robot» går.",
        ],
    ],
)
def test_sentence_spans_do_not_split_abbreviations_or_ordinal_dates(sentences):
    text = " ".join(sentences)
    assert [text[s:e] for s, e in sentence_spans(text)] == sentences


class _CountingEncoding:
    """The real encoding, keeping a tally of how many characters it was asked to encode."""

    def __init__(self, encoding):
        self._encoding = encoding
        self.name = encoding.name
        self.characters = 0

    def encode(self, text, **kwargs):
        self.characters += len(text)
        return self._encoding.encode(text, **kwargs)


def test_a_huge_word_is_cut_with_linear_tokenizer_work(encoding):
    """One 200 KB "word" (no white space) is cut looking at a window near each cut, never at the whole rest
    of the word: the tokenizer sees a constant multiple of the text (about 23× here), not hundreds of times
    it (about 800× when every cut recounted the rest, growing with the length)."""
    text = "".join(random.Random(SEED.name).choices(string.ascii_letters + string.digits + "/+=", k=200_000))
    article = make_article(title="T", body=text, given_id="w", language="en")
    counting = _CountingEncoding(encoding)
    chunker = Chunker(counting, size=180, overlap=30)
    chunks = chunker.split(article)
    work, length = counting.characters, len(article.text)
    assert work < 40 * length, f"encoded {work:,} characters to cut a {length:,}-character word"
    assert "".join(c.text for c in chunks) == article.text, "the pieces of one word tile it"
    _check(chunker, article)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    word=st.one_of(
        st.integers(1, 6000).map(lambda n: "x" * n),
        st.text(alphabet=string.ascii_letters + "/+=æø", min_size=1, max_size=6000),
    ),
    size=st.integers(min_value=32, max_value=300),
)
def test_words_longer_than_a_chunk_keep_the_invariants(encoding, word, size):
    """Cut inside the first window, after doubling it ("x" * n packs 8 characters a token), or at its end."""
    article = make_article(title="T", body=f"Putin sa {word} i går.", given_id="l", language="nb")
    _check(Chunker(encoding, size=size, overlap=size // 4), article)
