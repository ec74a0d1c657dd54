"""Large stores for the scale benchmark, made of real NorQuAD sentences.

A synthetic chunk is five sentences drawn from the NorQuAD news articles that the bench corpus leaves out,
so no gold passage of a test question is ever copied into a distractor. Each pool sentence is embedded once
for real (cached); a chunk's vector is the normalised mean of its sentences' vectors, and its BM25 tokens are
the concatenation of its sentences' tokens (checked against `analyse` on a sample). Queries in the benchmark
embed for real. The real chunks of the bench corpus, with their real vectors, are copied in first, so hit@5
on the test questions stays measurable at every size. The index's sentence vectors
(`assistant.indexes.sentence_vectors`) are the real chunks' own plus the pool's: a synthetic chunk's sentences
are pool sentences."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import uuid
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.core.sentences import sentence_spans
from assistant.core.types import Article, ArticleMeta, Chunk
from assistant.indexes.chunk_rows import ChunkRowsWriter
from assistant.indexes.embeddings import Embedder
from assistant.indexes.lexical import LexicalIndex, analyse, analyse_sentences
from assistant.indexes.sentence_vectors import SentenceVectorLog, chunk_sentences
from assistant.indexes.store import ChromaStore, date_int

SENTENCES_PER_CHUNK = 5
CHUNKS_PER_ARTICLE = 8
SOURCE = "NorQuAD news (synthetic)"
_WRITE_BATCH = 5000
# Bump when the way a store is made changes, so a cached store of the old kind is rebuilt, not reused.
RECIPE_VERSION = 2


@dataclass
class SentencePool:
    texts: list[str]
    vectors: np.ndarray  # (n, dim), normalised
    tokens: list[list[str]]

    @classmethod
    def build(
        cls, excluded_ids: set[str], embedder: Embedder, cache: Path, limit: int = 1500
    ) -> SentencePool:
        """Sentences of the NorQuAD news articles not in `excluded_ids`, embedded once and cached."""
        from ingest.loaders import load_paths

        texts: list[str] = []
        for _, result in load_paths([Path(__file__).resolve().parent.parent / "corpus" / "norquad"]):
            for article in sorted(result.articles, key=lambda a: a.id):
                if article.id in excluded_ids:
                    continue
                for start, end in sentence_spans(article.text):
                    sentence = article.text[start:end].strip()
                    if 40 <= len(sentence) <= 300 and "\n" not in sentence:
                        texts.append(sentence)
        random.Random(7).shuffle(texts)
        texts = sorted(dict.fromkeys(texts[:limit]))
        key = hashlib.sha256(("\n".join(texts) + embedder.name).encode()).hexdigest()[:16]
        path = cache / f"sentence-pool-{key}.npy"
        if path.exists():
            vectors = np.load(path)
        else:
            vectors = np.vstack(
                [
                    embedder.embed_passages(texts[i : i + 32])
                    for i in tqdm(range(0, len(texts), 32), desc="embedding the sentence pool", unit="batch")
                ]
            )
            cache.mkdir(parents=True, exist_ok=True)
            np.save(path, vectors)
        return cls(texts, vectors.astype(np.float32), [analyse(t, "nb") for t in texts])


def _article(pool: SentencePool, number: int) -> tuple[Article, list[Chunk], np.ndarray, list[list[str]]]:
    """Synthetic article `number`: the same every time (seeded by its number)."""
    rng = np.random.default_rng(number)
    picks = rng.integers(0, len(pool.texts), size=(CHUNKS_PER_ARTICLE, SENTENCES_PER_CHUNK))
    title = " ".join(pool.texts[int(rng.integers(len(pool.texts)))].split()[:8])
    bodies = [" ".join(pool.texts[i] for i in row) for row in picks]
    text = "\n".join(bodies)
    year, month, day = 2012 + number % 12, 1 + number % 12, 1 + number % 28
    article_id = f"syn-{number:07d}"
    article = Article(
        id=article_id,
        title=title,
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest()[:32],
        language="nb",
        date=f"{year:04d}-{month:02d}-{day:02d}",
        source=SOURCE,
        origin="bench/synthetic",
    )
    chunks, start = [], 0
    for position, body in enumerate(bodies):
        chunks.append(
            Chunk(
                id=f"{article_id}-c{position}",
                article_id=article_id,
                position=position,
                text=body,
                start=start,
                end=start + len(body),
                token_count=len(body.split()),
            )
        )
        start += len(body) + 1
    vectors = pool.vectors[picks].mean(axis=1)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    title_tokens = analyse(title, "nb")
    tokens = [title_tokens + [t for i in row for t in pool.tokens[i]] for row in picks]
    return article, chunks, vectors.astype(np.float32), tokens


def check_tokens(pool: SentencePool, sample: int = 200) -> None:
    """The concatenated tokens must be exactly what the lexical index's own analysis makes of the chunk."""
    for number in range(sample):
        article, chunks, _, tokens = _article(pool, number)
        for chunk, chunk_tokens in zip(chunks, tokens, strict=False):
            expected = analyse(f"{article.title}\n{chunk.text}", "nb")
            if expected != chunk_tokens:
                raise AssertionError(f"synthetic tokens differ from analyse() for {chunk.id}")


def copy_real_chunks(base: ChromaStore, target: ChromaStore) -> int:
    """Copies the base index's chunks (with their real vectors) and articles into `target`."""
    got = base.chunks.get(include=["embeddings", "documents", "metadatas"])
    for i in range(0, len(got["ids"]), _WRITE_BATCH):
        target.chunks.add(
            ids=got["ids"][i : i + _WRITE_BATCH],
            embeddings=got["embeddings"][i : i + _WRITE_BATCH],
            documents=got["documents"][i : i + _WRITE_BATCH],
            metadatas=got["metadatas"][i : i + _WRITE_BATCH],
        )
    articles = base.articles.get(include=["documents", "metadatas"])
    target.articles.add(
        ids=articles["ids"],
        embeddings=[[1.0]] * len(articles["ids"]),
        documents=articles["documents"],
        metadatas=articles["metadatas"],
    )
    return len(got["ids"])


def extend(store: ChromaStore, pool: SentencePool, first_article: int, last_article: int) -> None:
    """Writes synthetic articles [first_article, last_article): every chunk row first, then the article
    records (the commit points), in batches as large as Chroma takes."""
    numbers = range(first_article, last_article)
    per_batch = _WRITE_BATCH // CHUNKS_PER_ARTICLE
    bar = tqdm(total=len(numbers) * CHUNKS_PER_ARTICLE, desc="writing synthetic chunks", unit="chunk")
    for i in range(0, len(numbers), per_batch):
        batch = [_article(pool, n) for n in numbers[i : i + per_batch]]
        store.chunks.upsert(
            ids=[c.id for _, chunks, _, _ in batch for c in chunks],
            embeddings=np.vstack([v for _, _, v, _ in batch]),
            documents=[c.text for _, chunks, _, _ in batch for c in chunks],
            metadatas=[ChromaStore.chunk_metadata(a, c) for a, chunks, _, _ in batch for c in chunks],
        )
        store.articles.upsert(
            ids=[a.id for a, _, _, _ in batch],
            embeddings=[[1.0]] * len(batch),
            documents=[a.text for a, _, _, _ in batch],
            metadatas=[
                ChromaStore.article_metadata(a, "synthetic", len(chunks)) for a, chunks, _, _ in batch
            ],
        )
        bar.update(sum(len(chunks) for _, chunks, _, _ in batch))
    bar.close()


def publish_lexical(
    store: ChromaStore, pool: SentencePool, real_rows: list, synthetic_articles: int, root: Path
) -> str:
    """One BM25 snapshot over the real and synthetic chunks, with their rows (`ChunkRows`), stamped with a new
    generation."""
    ids, tokens, dates, sources, languages = [], [], [], [], []
    rows = ChunkRowsWriter()
    real = store.get_chunks([chunk_id for chunk_id, _, _ in real_rows])
    for chunk_id, text, meta in real_rows:
        ids.append(chunk_id)
        tokens.append(analyse(f"{meta['title']}\n{text}", meta["language"]))
        dates.append(int(meta.get("date_int", 0)))
        sources.append(meta.get("source", ""))
        languages.append(meta["language"])
        chunk, article_meta = real[chunk_id]
        rows.add(
            chunk,
            article_meta,
            analyse_sentences(text, meta["language"]),
            analyse(meta["title"], meta["language"]),
        )
    stems = lru_cache(maxsize=200_000)(lambda sentence: analyse(sentence, "nb"))  # pool sentences repeat
    for number in tqdm(range(synthetic_articles), desc="analysing synthetic chunks", unit="article"):
        article, chunks, _, chunk_tokens = _article(pool, number)
        meta = ArticleMeta(
            article.id, article.title, article.date, article.source, article.url, "nb", article.content_hash
        )
        title_stems = analyse(article.title, "nb")
        for chunk, toks in zip(chunks, chunk_tokens, strict=False):
            ids.append(chunk.id)
            tokens.append(toks)
            dates.append(date_int(article.date))
            sources.append(SOURCE)
            languages.append("nb")
            sentences = [(s, e, stems(chunk.text[s:e])) for s, e in sentence_spans(chunk.text)]
            rows.add(chunk, meta, sentences, title_stems)
    generation = uuid.uuid4().hex
    LexicalIndex.from_tokens(ids, tokens, dates, sources, languages, generation, rows).save(root)
    store.set_generation(generation)
    return generation


def publish_sentences(pool: SentencePool, real: SentenceVectorLog, target: SentenceVectorLog) -> float:
    """The sentence vectors of the real chunks (from the base index) and of the pool, in the store's log;
    returns the share of a sample of synthetic chunks' sentences it holds."""
    if real.root.is_dir() and not len(target):
        shutil.copytree(real.root, target.root, dirs_exist_ok=True)
    missing = set(target.missing(pool.texts))
    target.append([t for t in pool.texts if t in missing], pool.vectors[[t in missing for t in pool.texts]])
    sample = [s for number in range(50) for c in _article(pool, number)[1] for s in chunk_sentences(c.text)]
    return 1 - len(target.missing(sample)) / max(len(set(sample)), 1)


def recipe(real_chunk_ids: list[str]) -> str:
    """What a cached store was made from: this module's recipe and the real chunks copied into it."""
    digest = hashlib.sha256("\n".join(sorted(real_chunk_ids)).encode()).hexdigest()[:16]
    return f"v{RECIPE_VERSION}-{SENTENCES_PER_CHUNK}x{CHUNKS_PER_ARTICLE}-{digest}"


def manifest(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
