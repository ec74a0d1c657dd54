"""Cheap features of (question, candidate chunk) for the reranker and of (question, sentence) for the sentence
picker. The same functions run at training time (`python -m evals.train`) and at query time, so a model
always sees features computed the way it was trained on.

The feature lists below are versioned with the models: a model file records the list it was trained on, and
`assistant.answering.rerank` refuses a model whose list differs from the code's."""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import numpy as np

from assistant.answering.extractive import ANSWER_KINDS
from assistant.core.language import language_group
from assistant.core.types import Hit
from assistant.indexes.chunk_rows import ChunkRow, Sentences
from assistant.indexes.lexical import analyse, analyse_query, analyse_sentences
from assistant.indexes.sentence_vectors import sentence_key

FEATURES_VERSION = 2
MISSING = float("nan")  # LightGBM treats NaN as missing: a BM25-only candidate has no dense score

RERANK_FEATURES = (
    "q_en",
    "q_terms",
    "q_kind",
    "pool_size",
    "pool_best_dense",
    "pool_best_lexical",
    "dense",
    "dense_rank",
    "dense_gap",
    "lexical",
    "lexical_rank",
    "lexical_norm",
    "fused",
    "fused_rank",
    "in_both",
    "cov_idf",
    "cov",
    "cov_idf_gap",
    "title_cov_idf",
    "sent_best_cov_idf",
    "sent_second_cov_idf",
    "pair_best_cov_idf",
    "kind_match",
    "sent_best_kind",
    "names_cov",
    "position",
    "tokens",
    "art_chunks",
    "art_best_dense",
    "art_best_lexical",
    "art_cov_idf",
    "art_dense_rank",
    "art_lexical_rank",
    "neighbour_in_pool",
    "translated_cov_idf",
    # Version 2: the question's cosine with each sentence of the chunk (vectors from ingest,
    # `assistant.indexes.sentence_vectors`); what carries an English question over Norwegian text.
    "sd_best",
    "sd_second",
    "sd_mean",
    "sd_best_gap",
    "sd_best_rank",
    "art_sd_best",
)

PICKER_FEATURES = (
    "q_en",
    "q_terms",
    "q_kind",
    "hit_rank",
    "hit_dense",
    "hit_dense_gap",
    "s_cov_idf",
    "s_cov",
    "s_cov_rank",
    "s_cov_gap",
    "s_terms",
    "s_new_terms",
    "s_kind",
    "s_names_cov",
    "s_index",
    "s_last",
    "s_chars",
    "s_digits",
    "s_quote",
    "prev_cov_idf",
    "next_cov_idf",
    "s_overlap",
    "s_rule",
    "s_dense",
    "s_dense_rank",
    "s_dense_gap",
    "s_dense_hit_gap",
)

_NAME = re.compile(r"\b([A-ZÆØÅ][\wæøåÆØÅ-]+|\d[\d.,]*)")
_WORD = re.compile(r"\w+", re.UNICODE)


def answer_kind(question: str) -> int:
    """0: no particular kind; 1: a number; 2: a date or time; 3: a name (the order of `ANSWER_KINDS`)."""
    for i, (asks, _) in enumerate(ANSWER_KINDS, 1):
        if asks.search(question):
            return i
    return 0


def holds_kind(kind: int, text: str) -> float:
    return float(bool(kind) and ANSWER_KINDS[kind - 1][1].search(text) is not None)


def question_names(question: str) -> list[str]:
    """Names (capitalised words after the first) and numbers of the question, lower-cased."""
    words = _NAME.findall(question)
    first = _WORD.search(question)
    return [w.lower() for w in words if not (first and w == first.group() and not w[0].isdigit())]


@dataclass(frozen=True)
class Query:
    """What the features know of a question: its terms (stemmed both ways, plus the dictionary translation of
    an English question) and their inverse document frequencies in the BM25 index."""

    text: str
    language: str
    terms: tuple[str, ...]
    translated: tuple[str, ...]  # Norwegian stems added by the dictionary (empty for a Norwegian question)
    idf: dict[str, float]
    kind: int
    names: tuple[str, ...]
    vector: np.ndarray | None = field(default=None, compare=False)  # the question's embedding, unit length

    @property
    def english(self) -> bool:
        return language_group(self.language) == "en"


def make_query(
    question: str,
    language: str,
    translation: str = "",
    document_frequency=None,
    vector: np.ndarray | None = None,
) -> Query:
    """`document_frequency(terms) -> (df per term, number of chunks)`, e.g. `LexicalIndex.document_frequency`;
    without it every term weighs the same. `vector`: the question's embedding (None: no sentence cosines)."""
    terms = list(dict.fromkeys(analyse_query(question)))
    translated = (
        [t for t in dict.fromkeys(analyse(translation, "nb")) if t not in terms] if translation else []
    )
    every = terms + translated
    idf = dict.fromkeys(every, 1.0)
    if document_frequency is not None and every:
        df, n = document_frequency(every)
        # Terms no chunk holds cannot tell candidates apart; they get no weight.
        idf = {
            t: (math.log(1 + (n - d + 0.5) / (d + 0.5)) if d else 0.0)
            for t, d in zip(every, df, strict=False)
        }
    return Query(
        question,
        language,
        tuple(terms),
        tuple(translated),
        idf,
        answer_kind(question),
        tuple(dict.fromkeys(question_names(question))),
        _unit(vector),
    )


def _unit(vector: np.ndarray | None) -> np.ndarray | None:
    if vector is None:
        return None
    vector = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


class SentenceLookup(Protocol):
    """Stored sentence vectors by `sentence_key` (`SentenceVectorLog`)."""

    def lookup(self, keys) -> tuple[np.ndarray, np.ndarray]: ...


def sentence_cosines(query: Query, keys: np.ndarray, sentences: SentenceLookup | None) -> np.ndarray:
    """The question's cosine with each keyed sentence; NaN where the vector is not stored (or no question
    vector)."""
    out = np.full(len(keys), MISSING)
    if query.vector is None or sentences is None or not len(keys):
        return out
    vectors, found = sentences.lookup(keys)
    out[found] = vectors[found] @ query.vector
    return out


class TermWeights:
    """Share of the query's weight that a set of stems covers."""

    def __init__(self, terms: Sequence[str], idf: dict[str, float] | None = None):
        self.items = [(t, idf[t] if idf is not None else 1.0) for t in terms]
        self.items = [(t, w) for t, w in self.items if w > 0]
        self.total = sum(w for _, w in self.items)
        self._by_mask: dict[int, float] = {}

    def cover(self, found: set[str]) -> float:
        # A list, not a generator: the same sum in the same order, for the ~800 calls of a question.
        return sum([w for t, w in self.items if t in found]) / self.total if self.total > 0 else 0.0

    def cover_mask(self, mask: int, bits: dict[str, int]) -> float:
        """`cover` of the stems whose bits are set in `mask` (`TermBits`), computed once per mask: a question's
        few terms give few masks, and it is the same sum in the same order."""
        share = self._by_mask.get(mask)
        if share is None:
            share = self.cover({t for t, _ in self.items if mask & bits[t]})
            self._by_mask[mask] = share
        return share


class TermBits:
    """The question's terms as bits, so that a chunk's or a sentence pair's stems are matched once and united
    as integers rather than as sets of stems."""

    def __init__(self, terms: Sequence[str]):
        self.bits = {t: 1 << k for k, t in enumerate(dict.fromkeys(terms))}

    def mask(self, stems: set[str]) -> int:
        out = 0
        for term, bit in self.bits.items():
            if term in stems:
                out |= bit
        return out


def _names_coverage(names: Sequence[str], text_lower: str) -> float:
    return sum(1 for n in names if n in text_lower) / len(names) if names else MISSING


@dataclass
class _Analysed:
    title_terms: set[str]
    sentences: list[tuple[int, int, set[str]]]  # offsets in the chunk text and the sentence's stems
    keys: np.ndarray  # `sentence_key` of every sentence (all of them, short ones too)


def _language(hit: Hit) -> str:
    return hit.article.language if hit.article.language in ("nb", "nn", "en") else "nb"


def analyse_chunk(hit: Hit) -> _Analysed:
    return _analysed(hit.chunk.text, hit.article.title or "", _language(hit))


def analyse_hits(
    hits: Sequence[Hit], stored: Callable[[str], ChunkRow | None] | None = None
) -> list[_Analysed]:
    """Each hit's sentences and stems: as the index analysed them at ingest (`stored`: the lexical snapshot's
    rows) when it holds the same text, title and language, else analysed now."""
    out = []
    for hit in hits:
        row = stored(hit.chunk.id) if stored is not None else None
        if row is not None and (row.chunk.text, row.article.title, row.article.language) == (
            hit.chunk.text,
            hit.article.title,
            hit.article.language,
        ):
            out.append(_from_stems(hit.chunk.text, row.sentences, row.title_stems, row.sentence_keys))
        else:
            out.append(analyse_chunk(hit))
    return out


# Stemming every sentence of the ~55 candidates costs more than the rest of the reranker; the questions of a
# busy archive keep meeting the same chunks. 1,024 of them hold about 50 MB. Callers only read the sets.
@lru_cache(maxsize=1024)
def _analysed(text: str, title: str, language: str) -> _Analysed:
    return _from_stems(text, analyse_sentences(text, language), analyse(title, language))


def _from_stems(
    text: str, sentences: Sentences, title_stems: list[str], keys: list[int] | None = None
) -> _Analysed:
    sets = [(s, e, set(stems)) for s, e, stems in sentences]
    if keys is None:
        keys = [sentence_key(text[s:e]) for s, e, _ in sets]
    return _Analysed(set(title_stems), sets, np.array(keys, dtype=np.uint64))


def rerank_features(
    query: Query,
    hits: Sequence[Hit],
    analysed: Sequence[_Analysed] | None = None,
    sentences: SentenceLookup | None = None,
) -> np.ndarray:
    """One row of `RERANK_FEATURES` per candidate. `hits` is the fused pool (dense top-N and BM25 top-N), each
    with its dense similarity and BM25 score where that side found it, in fused order. `sentences`: the stored
    sentence vectors (None: the sentence cosines are missing)."""
    n = len(hits)
    out = np.full((n, len(RERANK_FEATURES)), MISSING, dtype=np.float64)
    if not n:
        return out
    analysed = analysed or analyse_hits(hits)
    every = query.terms + query.translated
    dense = np.array([h.dense_score if h.dense_score is not None else np.nan for h in hits])
    lexical = np.array([h.lexical_score if h.lexical_score is not None else np.nan for h in hits])
    dense_rank = _ranks(dense)
    lexical_rank = _ranks(lexical)
    best_dense = _best(dense)
    best_lexical = _best(lexical)

    weights, flat, translated = (
        TermWeights(every, query.idf),
        TermWeights(every),
        TermWeights(query.translated, query.idf),
    )
    term_bits = TermBits(every)
    bits = term_bits.bits
    sentence_masks = [[term_bits.mask(s[2]) for s in a.sentences] for a in analysed]
    title_masks = [term_bits.mask(a.title_terms) for a in analysed]
    chunk_masks = [
        functools.reduce(operator.or_, m, t) for m, t in zip(sentence_masks, title_masks, strict=True)
    ]
    cov = np.array([weights.cover_mask(m, bits) for m in chunk_masks])
    # Per article: what the pool holds of it (its chunks, its best scores, the terms of all its chunks).
    articles: dict[str, list[int]] = {}
    for i, h in enumerate(hits):
        articles.setdefault(h.article.id, []).append(i)
    art_dense = {a: max([*_known(dense[ix]), -1.0]) for a, ix in articles.items()}
    art_lexical = {a: max([*_known(lexical[ix]), 0.0]) for a, ix in articles.items()}
    art_dense_rank = {a: r for r, a in enumerate(sorted(articles, key=lambda a: -art_dense[a]), 1)}
    art_lexical_rank = {a: r for r, a in enumerate(sorted(articles, key=lambda a: -art_lexical[a]), 1)}
    art_cov = {
        a: weights.cover_mask(functools.reduce(operator.or_, (chunk_masks[i] for i in ix)), bits)
        for a, ix in articles.items()
    }
    positions = {(h.article.id, h.chunk.position) for h in hits}
    cosines = _per_chunk_cosines(query, analysed, sentences)
    sd = np.array([c[0] for c in cosines])
    sd_best = _best(sd)
    sd_rank = _ranks(sd)
    art_sd = {a: _best(sd[ix]) for a, ix in articles.items()}

    cov_best = float(cov.max())
    for i, (h, a) in enumerate(zip(hits, analysed, strict=False)):
        masks = sentence_masks[i]
        per_sentence = [weights.cover_mask(m, bits) for m in masks]
        sent_cov = sorted(per_sentence, reverse=True) or [0.0]
        pairs = [weights.cover_mask(masks[j] | masks[j + 1], bits) for j in range(len(masks) - 1)]
        best_sentence = a.sentences[per_sentence.index(max(per_sentence))] if per_sentence else None
        text_lower = h.titled_text.lower()
        row = {
            "q_en": float(query.english),
            "q_terms": float(len(query.terms)),
            "q_kind": float(query.kind),
            "pool_size": float(n),
            "pool_best_dense": best_dense,
            "pool_best_lexical": best_lexical,
            "dense": dense[i],
            "dense_rank": dense_rank[i],
            "dense_gap": best_dense - dense[i] if np.isfinite(dense[i]) else MISSING,
            "lexical": lexical[i],
            "lexical_rank": lexical_rank[i],
            "lexical_norm": lexical[i] / best_lexical
            if np.isfinite(lexical[i]) and best_lexical > 0
            else MISSING,
            "fused": h.score,
            "fused_rank": float(i + 1),
            "in_both": float(np.isfinite(dense[i]) and np.isfinite(lexical[i])),
            "cov_idf": cov[i],
            "cov": flat.cover_mask(chunk_masks[i], bits),
            "cov_idf_gap": cov_best - cov[i],
            "title_cov_idf": weights.cover_mask(title_masks[i], bits),
            "sent_best_cov_idf": sent_cov[0],
            "sent_second_cov_idf": sent_cov[1] if len(sent_cov) > 1 else 0.0,
            "pair_best_cov_idf": max(pairs, default=sent_cov[0]),
            "kind_match": holds_kind(query.kind, h.chunk.text),
            "sent_best_kind": holds_kind(query.kind, h.chunk.text[best_sentence[0] : best_sentence[1]])
            if best_sentence
            else 0.0,
            "names_cov": _names_coverage(query.names, text_lower),
            "position": float(h.chunk.position),
            "tokens": float(h.chunk.token_count),
            "art_chunks": float(len(articles[h.article.id])),
            "art_best_dense": art_dense[h.article.id],
            "art_best_lexical": art_lexical[h.article.id],
            "art_cov_idf": art_cov[h.article.id],
            "art_dense_rank": float(art_dense_rank[h.article.id]),
            "art_lexical_rank": float(art_lexical_rank[h.article.id]),
            "neighbour_in_pool": float(
                (h.article.id, h.chunk.position - 1) in positions
                or (h.article.id, h.chunk.position + 1) in positions
            ),
            "translated_cov_idf": translated.cover_mask(chunk_masks[i], bits)
            if query.translated
            else MISSING,
            "sd_best": cosines[i][0],
            "sd_second": cosines[i][1],
            "sd_mean": cosines[i][2],
            "sd_best_gap": sd_best - sd[i] if np.isfinite(sd[i]) else MISSING,
            "sd_best_rank": sd_rank[i],
            "art_sd_best": art_sd[h.article.id],
        }
        out[i] = [row[name] for name in RERANK_FEATURES]
    return out


def _per_chunk_cosines(
    query: Query, analysed: Sequence[_Analysed], sentences: SentenceLookup | None
) -> list[tuple[float, float, float]]:
    """(best, second best, mean) sentence cosine of each chunk, looked up for the whole pool at once."""
    keys = np.concatenate([a.keys for a in analysed]) if analysed else np.zeros(0, dtype=np.uint64)
    flat = sentence_cosines(query, keys, sentences)
    out, at = [], 0
    for a in analysed:
        own = flat[at : at + len(a.keys)]
        at += len(a.keys)
        known = np.sort(own[np.isfinite(own)])[::-1]
        out.append(
            (
                float(known[0]) if len(known) else MISSING,
                float(known[1]) if len(known) > 1 else MISSING,
                float(known.mean()) if len(known) else MISSING,
            )
        )
    return out


def _known(values: np.ndarray) -> list[float]:
    """The values that are not missing (NaN), as Python floats: numpy's reductions cost more than the few
    candidates they would run over."""
    return [v for v in values.tolist() if v == v]


def _best(values: np.ndarray) -> float:
    """The highest value, ignoring NaN; NaN (missing) when there is none."""
    known = _known(values)
    return max(known) if known else MISSING


def _ranks(values: np.ndarray) -> np.ndarray:
    """1 = highest; NaN stays NaN."""
    ranks = np.full(len(values), np.nan)
    order = [
        i for i in np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable") if np.isfinite(values[i])
    ]
    for r, i in enumerate(order, 1):
        ranks[i] = r
    return ranks


@dataclass(frozen=True)
class SentenceSpan:
    hit_index: int
    start: int  # offsets into the chunk text
    end: int
    text: str


def picker_features(
    query: Query,
    hits: Sequence[Hit],
    spans: Sequence[SentenceSpan],
    sentences: SentenceLookup | None = None,
) -> np.ndarray:
    """One row of `PICKER_FEATURES` per sentence of the top passages (`hits` in the reranker's order). Only
    ranks and similarities of the passages are used, not their scores, so any retriever's order will do."""
    out = np.full((len(spans), len(PICKER_FEATURES)), MISSING, dtype=np.float64)
    if not spans:
        return out
    every = query.terms + query.translated
    weights, flat = TermWeights(every, query.idf), TermWeights(every)
    terms = [set(analyse(s.text, _language(hits[s.hit_index]))) for s in spans]
    cov = np.array([weights.cover(t) for t in terms])
    # The rule of ExtractiveAnswerer.candidates (term overlap stemmed both ways, passage order, answer kind).
    question_terms = set(analyse_query(query.text))
    overlap = [len(question_terms & set(analyse_query(s.text))) / max(len(question_terms), 1) for s in spans]
    order = np.argsort(-cov, kind="stable")
    cov_rank = np.empty(len(spans))
    cov_rank[order] = np.arange(1, len(spans) + 1)
    dense_scores = [h.dense_score for h in hits if h.dense_score is not None]
    top_dense = max(dense_scores) if dense_scores else MISSING
    query_set = set(every)
    by_hit: dict[int, list[int]] = {}
    for i, s in enumerate(spans):
        by_hit.setdefault(s.hit_index, []).append(i)
    dense = sentence_cosines(
        query, np.array([sentence_key(s.text) for s in spans], dtype=np.uint64), sentences
    )
    dense_rank = _ranks(dense)
    dense_best = _best(dense)
    hit_best = {h: _best(dense[ix]) for h, ix in by_hit.items()}
    for i, (s, t) in enumerate(zip(spans, terms, strict=False)):
        siblings = by_hit[s.hit_index]
        k = siblings.index(i)
        hit = hits[s.hit_index]
        row = {
            "q_en": float(query.english),
            "q_terms": float(len(query.terms)),
            "q_kind": float(query.kind),
            "hit_rank": float(s.hit_index + 1),
            "hit_dense": hit.dense_score if hit.dense_score is not None else MISSING,
            "hit_dense_gap": top_dense - hit.dense_score if hit.dense_score is not None else MISSING,
            "s_cov_idf": cov[i],
            "s_cov": flat.cover(t),
            "s_cov_rank": cov_rank[i],
            "s_cov_gap": float(cov.max() - cov[i]),
            "s_terms": float(len(t)),
            "s_new_terms": float(len(t - query_set)),
            "s_kind": holds_kind(query.kind, s.text),
            "s_names_cov": _names_coverage(query.names, s.text.lower()),
            "s_index": float(k),
            "s_last": float(k == len(siblings) - 1),
            "s_chars": float(len(s.text)),
            "s_digits": float(sum(ch.isdigit() for ch in s.text)),
            "s_quote": float(s.text.lstrip()[:1] in '«"–—-'),
            "prev_cov_idf": cov[siblings[k - 1]] if k > 0 else MISSING,
            "next_cov_idf": cov[siblings[k + 1]] if k + 1 < len(siblings) else MISSING,
            "s_overlap": overlap[i],
            "s_rule": 0.25 * overlap[i] + 0.02 * (2 - s.hit_index) + 0.04 * holds_kind(query.kind, s.text),
            "s_dense": dense[i],
            "s_dense_rank": dense_rank[i],
            "s_dense_gap": dense_best - dense[i],
            "s_dense_hit_gap": hit_best[s.hit_index] - dense[i],
        }
        out[i] = [row[name] for name in PICKER_FEATURES]
    return out
