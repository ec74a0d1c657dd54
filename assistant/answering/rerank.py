"""The reranking stage: a LightGBM lambdarank model orders the fused candidate pool (dense top-N and BM25 top-N)
by cheap features of (question, chunk) (`assistant.answering.features`). English questions search the BM25 side with the
dictionary translation of their terms added (`assistant.answering.translate`).

The model is a LightGBM text file in `assistant/models/` that names its features; `python -m evals.train`
rebuilds it from NorQuAD train (model card: `assistant/models/reranker.md`)."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from assistant.answering.features import (
    RERANK_FEATURES,
    Query,
    SentenceLookup,
    analyse_hits,
    make_query,
    rerank_features,
)
from assistant.answering.retrieval import HybridRetriever, Retrieval
from assistant.core.config import MODELS_DIR
from assistant.core.digests import check_recorded, restore_or_rebuild
from assistant.core.errors import ConfigError
from assistant.core.types import NO_FILTERS, Filters, Hit
from assistant.indexes.chunk_rows import ChunkRow

MODELS = MODELS_DIR
RERANKER_MODEL = MODELS / "reranker.txt"
MODELS_META = MODELS / "models.json"
RERANK_MODE = "hybrid+rerank"


_RESTORE = restore_or_rebuild("`make train`")
# An English model of its own is written by the study that trains it (docs/evals.md)
_RESTORE_RECORDED = restore_or_rebuild(
    "`make train` (`python -m evals.train_english` for English questions' own models)", "models.json"
)


def whole_model_text(path: Path) -> str | None:
    """What is wrong with the LightGBM model text at `path`, None when it is whole: its trees section as long as
    its `tree_sizes` line says, then the parameters and the last line LightGBM writes. LightGBM reads a file cut
    short (a copy that stopped, a full disk) past its end: the process died of a segmentation fault."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    sizes = re.search(rb"^tree_sizes=([0-9 ]*)$", text, re.M)
    start, end = text.find(b"\nTree=0\n") + 1, text.find(b"\nend of trees\n") + 1
    if not text.startswith(b"tree\n") or sizes is None or not start:
        return "not a LightGBM model file"
    if not end:
        return "it ends early"
    if end - start != sum(int(size) for size in sizes.group(1).split()):
        return "its trees are not the size its header gives"
    if b"\nend of parameters\n" not in text[end:] or not text.rstrip().rsplit(b"\n", 1)[-1].startswith(
        b"pandas_categorical:"
    ):
        return "it ends early"
    return None


class LightGBMModel:
    """A LightGBM model file whose feature names must equal `features` (the list it was trained on) and, where
    `sha256` is given, whose digest must be that one (what `record`, the models.json beside it, holds for it)."""

    def __init__(
        self, path: Path, features: tuple[str, ...], sha256: object = None, record: Path | None = None
    ):
        import lightgbm

        if not path.is_file():
            raise ConfigError(f"model file {path} is missing; rebuild it with `make train`")
        if (damage := whole_model_text(path)) is not None:
            raise ConfigError(f"model file {path} is damaged ({damage}): {_RESTORE}")
        check_recorded(path, sha256, record or MODELS_META, _RESTORE_RECORDED)
        self.path = path
        try:
            self._booster = lightgbm.Booster(model_file=str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise ConfigError(f"model file {path} cannot be read ({exc}): {_RESTORE}") from None
        names = tuple(self._booster.feature_name())
        if names != features:
            raise ConfigError(
                f"{path.name} was trained on features {list(names)}, but this code computes "
                f"{list(features)}; retrain with `make train`"
            )
        self._lock = threading.Lock()  # one prediction at a time: a Booster is not documented thread-safe

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if not len(rows):
            return np.zeros(0)
        with self._lock:
            return self._booster.predict(rows, num_threads=1)


def load_meta(path: Path | None = None) -> dict:
    """What `make train` recorded beside the models (their settings, the English models and weights); {} before
    the first `make train`. A file that cannot be read is an error: the models would run on default settings,
    English questions on the Norwegian model, without a word. `path`: by default `MODELS_META`."""
    path = path or MODELS_META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}): {_RESTORE}") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path} does not hold a JSON object: {_RESTORE}")
    return meta


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# What each setting `models.json` records must be; JSON's NaN and Infinity parse, and were taken as they were
RECORDED_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "pool_per_side": (
        "a whole number, 1 or more",
        lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
    ),
    "translate_english": ("true or false", lambda v: isinstance(v, bool)),
    "keep_original_terms": ("true or false", lambda v: isinstance(v, bool)),
    "second_same_passage": ("true or false", lambda v: isinstance(v, bool)),
    "second_margin": ("a finite number", _finite),
    "weight": ("a number from 0 to 1", lambda v: _finite(v) and 0 <= v <= 1),
    "languages": (
        "a list of language codes",
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    ),
}


def recorded(section: dict, where: str, key: str, default: Any) -> Any:
    """The setting `key` of the `models.json` section `where`, `default` where it records none; a value that is
    not of its kind (`RECORDED_KINDS`) is an error naming it: a margin of NaN, an English weight of 5, a pool of
    -3 each answered without a word."""
    value = section.get(key, default) if isinstance(section, dict) else default
    expected, ok = RECORDED_KINDS[key]
    if not ok(value):
        raise ConfigError(
            f"{MODELS_META}: {where}.{key} = {json.dumps(value)[:80]} is not {expected}: {_RESTORE}"
        )
    return value


def recorded_sha256(section: object, path: Path) -> object:
    """The SHA-256 a `models.json` section records for `path`, None where it names another file or none."""
    if isinstance(section, dict) and section.get("file", path.name) == path.name:
        return section.get("sha256")
    return None


def english_file(meta: dict, model: str, folder: Path) -> Path | None:
    """The file of English questions' own `model` ("reranker" or "picker") that `models.json` names, or None
    where it names none. A named file that is missing is an error: English questions would be ordered by a model
    never chosen for them."""
    name = meta.get("english", {}).get(model, {}).get("file")
    if not name:
        return None
    path = folder / name
    if not path.is_file():
        raise ConfigError(f"models.json names {path}, which is missing; rebuild it with `make train`")
    return path


def blended_scores(english: Callable, norwegian: Callable, rows: np.ndarray, weight: float) -> np.ndarray:
    """An English question's candidate scores: `weight` × the English model's + (1 − `weight`) × the Norwegian
    model's (`english`, `norwegian`: rows -> scores; a model whose share is 0 is not asked)."""
    scores = np.zeros(len(rows))
    if len(rows):
        if weight:
            scores += weight * english(rows)
        if weight < 1:
            scores += (1 - weight) * norwegian(rows)
    return scores


@dataclass(frozen=True)
class RerankSettings:
    pool_per_side: int = 30  # dense top-N and BM25 top-N
    translate_english: bool = True
    keep_original_terms: bool = True  # BM25 query of an English question: original words + translation
    # (False: the translation plus the question's names and numbers)


class Reranker:
    def __init__(
        self,
        model: LightGBMModel | None,
        translator=None,
        settings: RerankSettings = RerankSettings(),
        sentences: SentenceLookup | None = None,
        english_model: LightGBMModel | None = None,
        english_weight: float = 1.0,
    ):
        self.model = model
        # English questions are ordered by english_weight × this model's score + the rest × `model`'s (None: by
        # `model` alone).
        self.english_model = english_model
        self.english_weight = english_weight
        self.translator = translator
        self.settings = settings
        self.sentences = sentences  # the index's stored sentence vectors (None: those features are missing)

    @classmethod
    def load(cls, path: Path = RERANKER_MODEL, sentences: SentenceLookup | None = None) -> Reranker:
        from assistant.answering.translate import default_translator

        every = load_meta()
        meta = every.get("reranker", {})
        recorded_settings = meta.get("settings", {}) if isinstance(meta, dict) else {}
        settings = RerankSettings(
            **{
                k: recorded(recorded_settings, "reranker.settings", k, None)
                for k in recorded_settings
                if k in RerankSettings.__dataclass_fields__
            }
        )
        # Without its file (before the first `make train`) the pool still works, ordering does not.
        record = MODELS_META
        model = (
            LightGBMModel(path, RERANK_FEATURES, recorded_sha256(meta, path), record)
            if path.is_file()
            else None
        )
        english = english_file(every, "reranker", path.parent)
        english_meta = every.get("english", {}).get("reranker", {})
        english_model = (
            LightGBMModel(english, RERANK_FEATURES, recorded_sha256(english_meta, english), record)
            if english
            else None
        )
        weight = float(recorded(english_meta, "english.reranker", "weight", 1.0))
        return cls(model, default_translator(), settings, sentences, english_model, weight)

    @classmethod
    def untrained(cls, sentences: SentenceLookup | None = None) -> Reranker:
        """The pool without a model (training builds its candidates with this)."""
        from assistant.answering.translate import default_translator

        return cls(None, default_translator(), sentences=sentences)

    def lexical_query(
        self,
        question: str,
        language: str,
        document_frequency: Callable[[list[str]], tuple[list[int], int]] | None = None,
    ) -> tuple[str | None, str]:
        """(the BM25 query, or None for the question itself; the translation used). An English question is
        searched with its dictionary translation; so, given the archive's `document_frequency`, is a keyword
        search read as Norwegian whose words the archive never uses ("Article 4": "artikkel" too;
        `translate.search_translation`). Any other question is searched with the archive's spelling of a word
        it misspells ("Fossenholm": "fossesholm"; `unseen.spelling_corrections`), which the features do not
        see as a translation."""
        from assistant.answering.translate import search_translation
        from assistant.answering.unseen import spelling_corrections
        from assistant.core.language import language_group

        translation = (
            search_translation(self.translator, question, language, document_frequency)
            if self.settings.translate_english
            else ""
        )
        if not translation:
            corrections = (
                spelling_corrections(question, document_frequency)
                if document_frequency is not None and language_group(language) != "en"
                else []
            )
            return (f"{question} {' '.join(corrections)}" if corrections else None), ""
        if self.settings.keep_original_terms or language_group(language) != "en":
            return f"{question} {translation}", translation
        from assistant.answering.features import question_names

        # Names and numbers are never translated: they stay, the other English words are replaced.
        return " ".join([*question_names(question), translation]), translation

    def order(
        self, query: Query, hits: tuple[Hit, ...], stored: Callable[[str], ChunkRow | None] | None = None
    ) -> tuple[tuple[Hit, ...], np.ndarray]:
        """The pool in the model's order, each hit's `score` replaced by the model's; also the feature rows.
        `stored`: the index's rows, whose sentences were stemmed at ingest (`features.analyse_hits`)."""
        if self.model is None:
            raise ConfigError(
                f"the reranker's model {RERANKER_MODEL} is missing; rebuild it with `make train` "
                "or choose another retriever"
            )
        analysed = analyse_hits(hits, stored)
        rows = np.round(rerank_features(query, hits, analysed, sentences=self.sentences), 6)
        if self.english_model is not None and query.english:
            scores = blended_scores(self.english_model.predict, self.model.predict, rows, self.english_weight)
        else:
            scores = self.model.predict(rows)
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], hits[i].chunk.id))
        return tuple(replace(hits[i], score=float(scores[i])) for i in order), rows


class RerankingRetriever(HybridRetriever):
    """`HybridRetriever` plus the `hybrid+rerank` mode; the other modes are unchanged."""

    def __init__(self, *args, reranker: Reranker, **kwargs):
        super().__init__(*args, **kwargs)
        self.reranker = reranker

    def pool(
        self,
        query: str,
        filters: Filters = NO_FILTERS,
        language: str | None = None,
        query_vector: np.ndarray | None = None,
    ) -> tuple[Retrieval, Query]:
        """The fused candidate pool (in fused order) and the question as the features see it."""
        from assistant.core.language import detect_language

        language = language or detect_language(query)
        document_frequency = self.lexical.current().document_frequency
        lexical_query, translation = self.reranker.lexical_query(query, language, document_frequency)
        per_side = self.reranker.settings.pool_per_side
        retrieval = super().retrieve(
            query,
            2 * per_side,
            filters,
            "hybrid",
            lexical_query=lexical_query,
            candidates=per_side,
            query_vector=query_vector,
        )
        return retrieval, make_query(query, language, translation, document_frequency, retrieval.query_vector)

    def retrieve(
        self,
        query: str,
        k: int,
        filters: Filters = NO_FILTERS,
        mode: str = "hybrid",
        lexical_query: str | None = None,
        candidates: int | None = None,
        query_vector: np.ndarray | None = None,
    ) -> Retrieval:
        if mode != RERANK_MODE:
            return super().retrieve(
                query,
                k,
                filters,
                mode,
                lexical_query=lexical_query,
                candidates=candidates,
                query_vector=query_vector,
            )
        t0 = time.perf_counter()
        pool, question = self.pool(query, filters, query_vector=query_vector)
        timings = dict(pool.timings_ms)
        timings["pool"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        ordered, _ = self.reranker.order(question, pool.hits, self.lexical.current().row)
        timings["rerank"] = (time.perf_counter() - t0) * 1000
        return Retrieval(ordered[:k], pool.query_vector, pool.best_dense, timings)
