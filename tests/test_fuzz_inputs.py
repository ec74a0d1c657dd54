"""Fuzzing the loaders and the chunker (hypothesis). Whatever bytes a file holds, loading it gives valid
`Article`s or `BadInputError`s that name the file, and nothing else escapes; the chunker keeps its offset
and size invariants for any text; a bad file in a batch leaves no trace in the index.

    KILDE_FUZZ_EXAMPLES=200           # examples per loader/chunker property (the default, for CI)
    KILDE_FUZZ_PIPELINE_EXAMPLES=10   # examples of the batch property, which embeds for real
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from assistant.build import build_pipeline
from assistant.core.errors import BadInputError
from assistant.core.language import LANGUAGES
from assistant.core.types import Article
from assistant.indexes.lexical import LexicalIndex
from assistant.testing.corpus import make_settings
from ingest.chunking import Chunker
from ingest.loaders import SUFFIXES, load_file, safe_url
from tests.reliability_report import env_count, record
from tests.sample_text import sentence_pool

EXAMPLES = env_count("KILDE_FUZZ_EXAMPLES", 200)
PIPELINE_EXAMPLES = env_count("KILDE_FUZZ_PIPELINE_EXAMPLES", 10)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
POOL = sentence_pool()
# What cleaning strips from every line: none of it may reach an article.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff]")

# -- strategies ---------------------------------------------------------------------------------------

sentences = st.lists(st.sampled_from(POOL), min_size=1, max_size=6).map(" ".join)
names = st.sampled_from(["article", "answers_1", "news-2024", "æøå artikkel"])
suffixes = st.sampled_from(SUFFIXES)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be"])
controls = st.sampled_from([chr(c) for c in (*range(32), 0x7F, 0x85, 0x2028, 0xFEFF, 0x200B)])
noisy_text = st.lists(st.one_of(sentences, st.text(max_size=80), controls, st.just("\n\n")), max_size=12).map(
    "".join
)

JSON_KEYS = [
    "text",
    "body",
    "content",
    "title",
    "id",
    "url",
    "date",
    "published",
    "source",
    "language",
    "author",
    "articles",
    "data",
    "paragraphs",
    "context",
    "document_id",
]
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    sentences,
    st.sampled_from(
        [
            "2024-11-27",
            "27. november 2024",
            "javascript:alert(1)",
            "https://avis.example/a/1",
            "nb",
            "en",
            "xx",
            " ",
        ]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(JSON_KEYS), st.text(max_size=8)), inner, max_size=6),
    ),
    max_leaves=20,
)


article_objects = st.fixed_dictionaries(
    {"text": st.one_of(sentences, noisy_text)},
    optional={
        k: json_scalars for k in ("title", "id", "url", "date", "published", "source", "language", "author")
    },
)
norquad_objects = st.builds(
    lambda paragraphs: {"version": "1", "data": [{"paragraphs": paragraphs}]},
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"context": st.one_of(sentences, noisy_text), "document_id": json_scalars}),
            json_values,
        ),
        max_size=3,
    ),
)


@st.composite
def json_documents(draw) -> bytes:
    """JSON or JSONL text, sometimes with a lone-surrogate escape or a huge integer spliced in."""
    values = draw(st.lists(st.one_of(json_values, article_objects, norquad_objects), min_size=1, max_size=4))
    ascii_only = draw(st.booleans())
    lines = [json.dumps(v, ensure_ascii=ascii_only) for v in values]
    text = draw(st.sampled_from(["\n".join(lines), json.dumps(values, ensure_ascii=ascii_only)]))
    splice = draw(st.sampled_from(["", "", "", "", "\\ud800", "\\udfff\\ud800", "\\ud83d", "9" * 5000]))
    quotes = [i for i, ch in enumerate(text) if ch == '"']
    if splice and quotes:
        at = draw(st.sampled_from(quotes)) + 1
        text = text[:at] + splice + text[at:]
    return text.encode("utf-8")


@st.composite
def html_documents(draw) -> bytes:
    tags = [
        "div",
        "p",
        "article",
        "section",
        "span",
        "h1",
        "b",
        "script",
        "style",
        "nav",
        "table",
        "td",
        "li",
    ]
    head = draw(
        st.lists(
            st.sampled_from(
                [
                    "<title>{}</title>",
                    '<link rel="canonical" href="{}">',
                    '<meta property="og:url" content="{}">',
                    '<meta property="og:site_name" content="{}">',
                    '<base href="{}">',
                    '<meta charset="{}">',
                    '<meta property="article:published_time" content="{}">',
                ]
            ),
            max_size=4,
        )
    )
    body = ""
    for _ in range(draw(st.integers(0, 8))):
        tag = draw(st.sampled_from(tags))
        body = f"<{tag}>{draw(st.one_of(sentences, noisy_text))}{body}</{tag}>"
    values = st.one_of(
        sentences, st.sampled_from(["javascript:alert(1)", "https://avis.example/x", "utf-8", ""])
    )
    head_html = "".join(h.format(draw(values).replace('"', "&quot;")) for h in head)
    text = draw(
        st.sampled_from(
            [
                "<!doctype html><html><head>{}</head><body>{}</body></html>",
                "{}{}",
                "<?xml version='1.0' encoding='latin-1'?><html>{}{}",
            ]
        )
    ).format(head_html, body)
    return text.encode(draw(st.sampled_from(["utf-8", "cp1252"])), errors="replace")


@st.composite
def markdown_documents(draw) -> bytes:
    pieces = st.one_of(
        sentences,
        sentences.map(lambda s: f"# {s}"),
        sentences.map(lambda s: f"- {s}"),
        st.just("```python\nprint('hei')\n```"),
        st.just("| a | b |\n|---|---|\n| 1 | 2 |"),
        sentences.map(lambda s: f"> {s}"),
        st.just("[lenke](javascript:alert(1))"),
        st.just("<!-- kommentar -->"),
        st.just("27. november 2024"),
        st.just("---"),
        st.just(""),
    )
    return "\n".join(draw(st.lists(pieces, max_size=12))).encode("utf-8")


@st.composite
def mixed_encodings(draw) -> bytes:
    """Segments of one file encoded differently, with or without a byte-order mark in front."""
    segments = draw(st.lists(st.tuples(st.one_of(sentences, noisy_text), encodings), min_size=1, max_size=4))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"]))
    return bom + b"".join(text.encode(encoding, errors="replace") for text, encoding in segments)


@st.composite
def truncated(draw, documents) -> bytes:
    """A document cut anywhere, including inside a multi-byte character."""
    raw = draw(documents)
    return raw[: draw(st.integers(0, len(raw)))]


any_document = st.one_of(
    st.binary(max_size=4096),
    json_documents(),
    html_documents(),
    markdown_documents(),
    mixed_encodings(),
    noisy_text.map(lambda t: t.encode("utf-8", errors="replace")),
)

# -- the contract ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tally():
    """Outcome counts per property, recorded when the module ends."""
    counts: dict[str, Counter] = {}
    started = time.perf_counter()
    yield counts
    record(
        "fuzz-inputs",
        {
            "examples_setting": EXAMPLES,
            "pipeline_examples_setting": PIPELINE_EXAMPLES,
            "seconds": round(time.perf_counter() - started, 1),
            **{name: dict(c) for name, c in sorted(counts.items())},
        },
    )


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def load_checked(folder: Path, name: str, suffix: str, raw: bytes, counts: Counter):
    path = folder / f"{name}{suffix}"
    path.write_bytes(raw)
    try:
        result = load_file(path)  # must not raise: anything but a result is a bug
    finally:
        path.unlink()
    check_result(path, result)
    counts["files"] += 1
    counts["articles"] += len(result.articles)
    counts["rejected"] += len(result.rejected)
    for problem in result.rejected:
        counts["reason: " + re.sub(r"\d+", "N", problem.reason.split(":")[0])] += 1
    return result


def check_result(path: Path, result) -> None:
    assert result.articles or result.rejected, "a file gives articles or says why it gives none"
    for problem in result.rejected:
        assert type(problem) is BadInputError
        assert problem.source.startswith(str(path)) and str(path) in str(problem) and problem.reason
    for article in result.articles:
        check_article(article, path)


def check_article(article: Article, path: Path) -> None:
    assert article.id and article.id == article.id.strip()
    assert len(article.text.strip()) >= 20
    for value in (article.id, article.title, article.text, article.source, article.author, article.url):
        if value is not None:
            value.encode("utf-8")  # storable: no lone surrogates
    assert not CONTROL.search(article.text) and not CONTROL.search(article.title)
    assert re.fullmatch(r"[0-9a-f]{64}", article.content_hash)
    assert article.language in LANGUAGES
    assert article.date is None or date.fromisoformat(article.date).isoformat() == article.date
    assert article.url is None or safe_url(article.url) == article.url
    assert (article.origin or "").startswith(str(path))


@FUZZ
@given(raw=st.binary(max_size=8192), name=names, suffix=suffixes)
def test_random_bytes(fuzz_dir, tally, raw, name, suffix):
    load_checked(fuzz_dir, name, suffix, raw, tally.setdefault("random bytes", Counter()))


@FUZZ
@given(
    raw=st.one_of(mixed_encodings(), noisy_text.map(lambda t: t.encode("utf-8"))), name=names, suffix=suffixes
)
def test_mixed_encodings_control_characters_and_nuls(fuzz_dir, tally, raw, name, suffix):
    load_checked(fuzz_dir, name, suffix, raw, tally.setdefault("encodings and control characters", Counter()))


@FUZZ
@given(
    raw=st.one_of(json_documents(), truncated(json_documents())),
    name=names,
    suffix=st.sampled_from([".json", ".jsonl"]),
)
def test_json_and_jsonl_whole_and_truncated(fuzz_dir, tally, raw, name, suffix):
    load_checked(fuzz_dir, name, suffix, raw, tally.setdefault("json and jsonl", Counter()))


@FUZZ
@given(
    raw=st.one_of(html_documents(), truncated(html_documents())), suffix=st.sampled_from([".html", ".htm"])
)
def test_html_whole_and_truncated(fuzz_dir, tally, raw, suffix):
    load_checked(fuzz_dir, "page", suffix, raw, tally.setdefault("html", Counter()))


@FUZZ
@given(
    raw=st.one_of(markdown_documents(), truncated(markdown_documents())),
    suffix=st.sampled_from([".md", ".txt"]),
)
def test_markdown_and_plain_text_whole_and_truncated(fuzz_dir, tally, raw, suffix):
    load_checked(fuzz_dir, "story", suffix, raw, tally.setdefault("markdown and text", Counter()))


@FUZZ
@given(
    title=st.sampled_from(POOL),
    body=st.lists(st.sampled_from(POOL), min_size=1, max_size=5).map("\n\n".join),
    encoding=encodings,
    suffix=st.sampled_from([".txt", ".md"]),
)
def test_every_supported_encoding_reads_the_same_article(fuzz_dir, tally, title, body, encoding, suffix):
    """Real sentences in any encoding that can hold them load exactly as their UTF-8 original does."""
    text = f"{title}\n\n{body}"
    try:
        raw = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    counts = tally.setdefault("encoding round trip", Counter())
    want = load_checked(fuzz_dir, "original", suffix, text.encode("utf-8"), counts)
    got = load_checked(fuzz_dir, "original", suffix, raw, counts)
    assert [(a.title, a.text, a.content_hash) for a in got.articles] == [
        (a.title, a.text, a.content_hash) for a in want.articles
    ]
    assert [e.reason for e in got.rejected] == [e.reason for e in want.rejected]


HUGE_LINE = "x" * 2_000_000
SENTENCE = "Dette er en setning som er lang nok til å bli en artikkel."


@pytest.mark.parametrize(
    "suffix, raw, outcome",
    [
        (".txt", HUGE_LINE.encode(), "article"),  # a text of one line: its text, and its headline cut short
        (".txt", f"Tittel\n\n{HUGE_LINE}".encode(), "article"),
        (".md", f"# Tittel\n\n{HUGE_LINE}".encode(), "article"),
        (".json", json.dumps({"title": "T", "text": HUGE_LINE}).encode(), "article"),
        (".jsonl", json.dumps({"title": "T", "text": HUGE_LINE}).encode(), "article"),
        (".html", f"<html><body><p>{HUGE_LINE}</p></body></html>".encode(), None),
        (".html", ("<div>" * 10_000 + SENTENCE + "</div>" * 10_000).encode(), None),
        (".html", ("<b>" * 10_000 + SENTENCE).encode(), None),
        (".json", ("[" * 10_000 + "]" * 10_000).encode(), "rejected"),
        (".json", ('{"text":' * 10_000 + "1" + "}" * 10_000).encode(), "rejected"),
        (".json", b"1" * 5000, "rejected"),  # more digits than Python converts
        (".json", b"[]", "rejected"),
        (".txt", b"", "rejected"),
        (".md", b"\xef\xbb\xbf", "rejected"),
        (".txt", b"\xff\xfe" + "Tittel\n\n".encode("utf-16-le") + b"\x00\xd8", "rejected"),  # lone surrogate
        (".txt", b"\x00" * 100, "rejected"),
        (".txt", f"Tittel\n\n{SENTENCE}".encode("utf-16-le"), "article"),  # UTF-16 without a byte-order mark
        (".txt", f"Tittel\n\n{SENTENCE}".encode("utf-16-be"), "article"),
        (".json", json.dumps({"title": "T\ud800", "text": SENTENCE + "\udfff"}).encode(), "article"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None,
)
def test_pathological_files(fuzz_dir, tally, suffix, raw, outcome):
    """Huge lines, deep nesting, empty and broken files: a typed outcome, in reasonable time."""
    started = time.perf_counter()
    result = load_checked(fuzz_dir, "extreme", suffix, raw, tally.setdefault("pathological files", Counter()))
    assert time.perf_counter() - started < 60
    if outcome == "article":
        assert result.articles and not result.rejected
    elif outcome == "rejected":
        assert result.rejected and not result.articles


# -- the chunker -------------------------------------------------------------------------------------------

any_text = st.one_of(
    st.text(max_size=3000),
    st.lists(
        st.one_of(
            st.sampled_from(POOL),
            st.text(max_size=30),
            controls,
            st.just("\n"),
            st.just(". "),
            st.integers(1, 3000).map(lambda n: "y" * n),
        ),
        max_size=30,
    ).map("".join),
)


@FUZZ
@given(text=any_text, size=st.integers(32, 400), overlap_share=st.floats(0, 0.49))
def test_chunks_are_exact_slices_within_the_token_bound_for_any_text(
    encoding, tally, text, size, overlap_share
):
    """Any text at all (not only what cleaning lets through): the chunker's own invariants."""
    chunker = Chunker(encoding, size=size, overlap=min(int(size * overlap_share), size // 2 - 1))
    article = Article(id="fuzz", title="", text=text, content_hash="0" * 64, language="en")
    chunks = chunker.split(article)
    counts = tally.setdefault("chunker", Counter())
    counts["texts"] += 1
    counts["chunks"] += len(chunks)
    assert len({c.id for c in chunks}) == len(chunks)
    for position, chunk in enumerate(chunks):
        assert chunk.position == position
        assert text[chunk.start : chunk.end] == chunk.text and chunk.text.strip() == chunk.text != ""
        assert chunk.token_count == chunker.count(chunk.text) <= size
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    # Paragraphs are split on "\n" only; every other character that is not white space lands in a chunk.
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


# -- a bad file in a batch -----------------------------------------------------------------------------------

GOOD = "Ferja er innstilt\n\nFerja mellom Moss og Horten er innstilt i dag på grunn av sterk vind."


@pytest.fixture(scope="module")
def batch_pipeline(tmp_path_factory, tiktoken_cache, embedder):
    return build_pipeline(
        make_settings(tmp_path_factory.mktemp("fuzz-index"), tiktoken_cache), embedder=embedder
    )


@settings(FUZZ, max_examples=PIPELINE_EXAMPLES)
@given(
    raw=st.one_of(st.binary(max_size=2048), truncated(json_documents()), mixed_encodings(), any_document),
    suffix=suffixes,
)
def test_a_bad_file_is_reported_by_name_and_leaves_no_partial_write(
    batch_pipeline, fuzz_dir, tally, raw, suffix
):
    bad = fuzz_dir / f"bad{suffix}"
    bad.write_bytes(raw)
    assume(not load_file(bad).articles)  # only files the loader rejects outright
    batch = fuzz_dir / "batch"
    batch.mkdir(exist_ok=True)
    (batch / "ferje.txt").write_text(GOOD, encoding="utf-8")
    bad = bad.rename(batch / bad.name)
    if batch_pipeline.store.exists():
        batch_pipeline.remove("ferje")  # so every example writes the good article afresh

    report = batch_pipeline.ingest([batch])
    bad.unlink()
    counts = tally.setdefault("batch with one bad file", Counter())
    counts["batches"] += 1
    assert report.added == 1 and report.chunks_embedded >= 1
    assert report.rejected and all(e.source.startswith(str(bad)) for e in report.rejected)

    store = batch_pipeline.store
    stored = store.stored_articles()
    assert set(stored) == {"ferje"}
    assert {aid for aid, _ in store.chunk_owners().values()} == {"ferje"}
    assert all(stored[aid].meta.content_hash == digest for aid, digest in store.chunk_owners().values())
    assert not batch_pipeline.dirty_marker.exists()
    lexical = LexicalIndex.load(batch_pipeline.lexical.root)
    assert lexical.generation == store.generation() and set(lexical.chunk_ids) == set(store.chunk_owners())
