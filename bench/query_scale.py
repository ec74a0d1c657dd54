"""Query latency (retrieval plus the extractive answer) at 10k, 100k and 1M chunks, embedded Chroma and a
`chroma run` server side by side, with hit@5 on the NorQuAD news test questions and the RSS of a
`kilde serve` process at each size.

    python -m bench.query_scale [--sizes 10000,100000,1000000] [--questions 100]

Stores are built once into ~/.cache/kilde/bench/ (KILDE_BENCH_CACHE moves it; see bench/synthetic.py) and reused
while their manifest matches the recipe.
Every measurement runs in a fresh process, so an embedded client and the Chroma server never hold the
same store at once. Writes bench/RESULTS-scale.md and bench/results/scale.json."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CACHE, ROOT, english_items, git_commit, machine, p50, percentile, rss_mb, test_items

TARGETS = {100_000: (50.0, 150.0), 1_000_000: (None, 300.0)}  # size -> (p50 ms, p95 ms)
RSS_TARGET_MB = {100_000: 1536.0}


def settings_for(data_dir: Path, chroma_url: str | None = None):
    from assistant.core.config import resolve_settings

    return resolve_settings(
        {"data_dir": data_dir, "chroma_url": chroma_url}, environ={}, config_file=Path("/nonexistent")
    )


# -- building ------------------------------------------------------------------------------------


def ensure_base(cache: Path) -> Path:
    """The real index: the bench corpus ingested by the real pipeline."""
    from assistant.build import build_pipeline
    from bench.common import bench_corpus

    data_dir = cache / "base"
    if (data_dir / "base.done").exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    corpus = bench_corpus(cache / "bench-corpus")
    from ingest.progress import TqdmProgress

    pipeline = build_pipeline(settings_for(data_dir))
    report = pipeline.ingest([corpus], progress=TqdmProgress(True))
    (data_dir / "base.done").write_text(
        json.dumps({"articles": report.added, "chunks": report.chunks_embedded})
    )
    return data_dir


def build_store(size: int, base_dir: Path, cache: Path, smaller: Path | None) -> Path:
    """A Kilde data dir with `size` chunks: the real ones plus synthetic ones. Starts from a copy of the
    next smaller store when there is one, so 1M reuses the 100k rows."""
    from assistant.build import build_embedder
    from assistant.indexes.lexical import LexicalIndex
    from assistant.indexes.store import ChromaStore
    from bench import synthetic

    data_dir = cache / f"scale-{size}"
    done = data_dir / "manifest.json"
    base = ChromaStore.open(base_dir, None, "kilde")
    real = base.chunks.get(include=["documents", "metadatas"])
    real_rows = list(zip(real["ids"], real["documents"], real["metadatas"], strict=False))
    recipe = synthetic.recipe(real["ids"])
    built = synthetic.manifest(done)
    embedder = build_embedder(settings_for(base_dir))
    excluded = {m["article_id"] for _, _, m in real_rows}
    pool = synthetic.SentencePool.build(excluded, embedder, cache)
    if built.get("size") == size and built.get("recipe") == recipe:
        settings = settings_for(data_dir)
        lexical = LexicalIndex.load(settings.lexical_root)
        if lexical is None or not lexical.has_rows:  # a snapshot from before chunk rows were kept
            store = ChromaStore.open(data_dir, None, "kilde")
            t0 = time.perf_counter()
            synthetic.publish_lexical(
                store, pool, real_rows, built["synthetic_articles"], settings.lexical_root
            )
            done.write_text(json.dumps({**built, "lexical_s": round(time.perf_counter() - t0, 1)}))
        _publish_sentences(pool, base_dir, data_dir, embedder)
        return data_dir
    synthetic.check_tokens(pool)

    start_article = 0
    real_articles = len({m["article_id"] for _, _, m in real_rows})
    resumable = data_dir / "resumable"
    if resumable.exists() and resumable.read_text() == recipe:
        # An interrupted build: article records are written after their chunks, so every synthetic
        # article on record is complete; the batch after it is rewritten (upserts).
        store = ChromaStore.open(data_dir, None, "kilde")
        start_article = store.articles.count() - real_articles
        print(f"resuming the {size:,}-chunk store after {start_article:,} synthetic articles", flush=True)
    elif smaller is not None and synthetic.manifest(smaller / "manifest.json").get("recipe") == recipe:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.copytree(smaller, data_dir)
        done.unlink()
        start_article = synthetic.manifest(smaller / "manifest.json")["synthetic_articles"]
        store = ChromaStore.open(data_dir, None, "kilde")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        store = ChromaStore.open(data_dir, None, "kilde")
        store.ensure_embedder(embedder.name, embedder.dim)
        synthetic.copy_real_chunks(base, store)
    articles = -(-(size - len(real_rows)) // synthetic.CHUNKS_PER_ARTICLE)
    resumable.write_text(recipe)
    t0 = time.perf_counter()
    synthetic.extend(store, pool, start_article, articles)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    settings = settings_for(data_dir)
    synthetic.publish_lexical(store, pool, real_rows, articles, settings.lexical_root)
    lexical_s = time.perf_counter() - t0
    _publish_sentences(pool, base_dir, data_dir, embedder)
    chunks = store.chunks.count()
    done.write_text(
        json.dumps(
            {
                "size": size,
                "recipe": recipe,
                "chunks": chunks,
                "real_chunks": len(real_rows),
                "synthetic_articles": articles,
                "pool_sentences": len(pool.texts),
                "write_s": round(write_s, 1),
                "lexical_s": round(lexical_s, 1),
            }
        )
    )
    resumable.unlink()
    return data_dir


def _publish_sentences(pool, base_dir: Path, data_dir: Path, embedder) -> None:
    from assistant.build import build_pipeline, build_sentence_vectors
    from bench import synthetic

    held = synthetic.publish_sentences(
        pool,
        build_sentence_vectors(settings_for(base_dir), embedder),
        build_sentence_vectors(settings_for(data_dir), embedder),
    )
    print(
        f"sentence vectors: {held:.1%} of a sample of synthetic chunks' sentences are stored",
        flush=True,
    )
    # A synthetic chunk's sentences, split again, are not always the pool's sentences it was joined from; the
    # rest are embedded as an ingest would, so the reranker and the picker meet the store the product would.
    from ingest.progress import TqdmProgress

    pipeline = build_pipeline(settings_for(data_dir), embedder)
    embedded = pipeline.complete_sentence_vectors(TqdmProgress(True))
    if embedded:
        print(f"sentence vectors: {embedded:,} more embedded for the store's other sentences", flush=True)


# -- measuring -----------------------------------------------------------------------------------


def measure(data_dir: Path, chroma_url: str | None, questions: int, english: int) -> dict:
    """Runs in its own process: ask every question once, after a short warm-up."""
    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant
    from evals.metrics import chunk_hits

    assistant = build_assistant(settings_for(data_dir, chroma_url))
    items = test_items()[:questions]
    # Warm-up on questions that are not measured: loads the HNSW index and the BM25 snapshot with its chunk
    # rows, as on a server that has been answering for a while.
    for item in test_items()[questions : questions + 30]:
        assistant.ask(AskRequest(item.question))
    out: dict[str, dict] = {}
    for label, batch in (("nb", items), ("en", english_items()[:english])):
        wall, hits, stages = [], [], {}
        for item in batch:
            t0 = time.perf_counter()
            answer = assistant.ask(AskRequest(item.question))
            wall.append((time.perf_counter() - t0) * 1000)
            hits.append(any(chunk_hits(h.chunk.text, item) for h in answer.retrieved[:5]))
            for stage, ms in answer.timings_ms.items():
                stages.setdefault(stage, []).append(ms)
        out[label] = {
            "n": len(batch),
            "p50": p50(wall),
            "p95": percentile(wall, 0.95),
            "hit5": sum(hits) / max(len(hits), 1),
            "stages": {k: [p50(v), percentile(v, 0.95)] for k, v in stages.items()},
        }
    # The baseline of this run: embedding the same questions and nothing else, the floor any answer pays.
    embedder, floor = assistant.retriever.embedder, []
    for item in items:
        t0 = time.perf_counter()
        embedder.embed_query(item.question)
        floor.append((time.perf_counter() - t0) * 1000)
    out["nb"]["floor"] = [p50(floor), percentile(floor, 0.95)]
    out["rss_mb"], out["peak_rss_mb"] = rss_mb()
    return out


def measure_in_subprocess(data_dir: Path, chroma_url: str | None, questions: int, english: int) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.query_scale",
        "--measure",
        str(data_dir),
        "--questions",
        str(questions),
        "--english",
        str(english),
    ] + (["--chroma-url", chroma_url] if chroma_url else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def with_chroma_server(data_dir: Path, fn):
    from assistant.testing.servers import chroma_server

    with chroma_server(data_dir / "chroma", timeout_s=300) as url:
        return fn(url)


def serve_rss(data_dir: Path, questions: int = 20) -> dict:
    """RSS of a real `kilde serve` process on the store after it answered `questions` questions."""
    import httpx

    from assistant.testing.servers import KILDE, free_port, stop, wait_http

    port = free_port()
    env = {
        **os.environ,
        "KILDE_DATA_DIR": str(data_dir),
        "KILDE_RATE_LIMIT": "100000",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("KILDE_CHROMA_URL", None)
    server = subprocess.Popen(
        [KILDE, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout_s=600, process=server)
        idle, _ = rss_mb(server.pid)
        for item in test_items()[:questions]:
            reply = httpx.post(
                f"http://127.0.0.1:{port}/api/ask", json={"question": item.question}, timeout=120
            )
            reply.raise_for_status()
        rss, peak = rss_mb(server.pid)
        return {"idle_mb": idle, "rss_mb": rss, "peak_mb": peak, "questions": questions}
    finally:
        stop(server)


# -- report --------------------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "" if ok is None else (" ✅" if ok else " ❌")


def report(results: dict, args) -> str:
    lines = [
        "# Query latency at scale",
        "",
        f"Command: `python -m bench.query_scale --sizes {args.sizes} --backends {args.backends} "
        f"--questions {args.questions} --english {args.english}` at commit {git_commit()}  ",
        f"Machine: {results['machine']}",
        "",
        "Each store holds the real chunks of the bench corpus (the seed and the 105 NorQuAD news articles of "
        "the test split, embedded for real) plus synthetic chunks of real NorQuAD sentences from the other "
        "articles (vectors re-used from the sentences' own embeddings; bench/synthetic.py), with every chunk's "
        "sentence vectors, as an ingest leaves them (the sentences a chunk splits into otherwise embedded by "
        "`IngestPipeline.complete_sentence_vectors`). Every question is "
        "embedded for real. Latency is wall time of `Assistant.ask` (retrieval, the reranker over the fused pool and the extractive answer: the shipped default) "
        "in a fresh process after 30 warm-up questions (not measured); hit@5 asks whether a top-5 chunk holds the gold "
        "passage. `nb`: NorQuAD news test questions; `en`: English questions over the Norwegian articles "
        "(their articles are mostly not in the bench corpus, so only their latency means anything). "
        "The baseline of each row, measured in the same process right after: embedding the same nb questions "
        "and nothing else, the floor every answer pays; the ratio is p50 over that floor's p50.",
        "",
        "| chunks | backend | questions | p50 ms | p95 ms | bare embedding p50 ms | p50 / floor | hit@5 (nb) | "
        "en p50 / p95 ms | target |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for size, by_backend in results["sizes"].items():
        size = int(size)
        for backend, r in by_backend["latency"].items():
            nb, en = r["nb"], r["en"]
            target_p50, target_p95 = TARGETS.get(size, (None, None))
            ok = None
            target = ""
            if target_p95 is not None:
                ok = nb["p95"] <= target_p95 and (target_p50 is None or nb["p50"] <= target_p50)
                target = (f"p50 ≤ {target_p50:.0f}, " if target_p50 else "") + f"p95 ≤ {target_p95:.0f}"
            floor = nb.get("floor", [float("nan")])[0]
            lines.append(
                f"| {size:,} | {backend} | {nb['n']} | {nb['p50']:.1f} | {nb['p95']:.1f} | {floor:.1f} | "
                f"{nb['p50'] / floor:.2f}× | {nb['hit5']:.1%} | {en['p50']:.1f} / {en['p95']:.1f} | "
                f"{target}{verdict(ok)} |"
            )
    lines += [
        "",
        "## Where the time goes (median ms per stage, nb questions)",
        "",
        "| chunks | backend | embed | dense | lexical (beside the dense query) | fuse + committed rows | "
        "rerank (features + model) | answer | total |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size, by_backend in results["sizes"].items():
        for backend, r in by_backend["latency"].items():
            s = r["nb"]["stages"]

            def m(key: str, s: dict = s) -> str:
                return f"{s[key][0]:.1f}" if key in s else "–"

            lines.append(
                f"| {int(size):,} | {backend} | {m('retrieve.embed')} | {m('retrieve.dense')} | "
                f"{m('retrieve.lexical')} | {m('retrieve.fuse')} | {m('rerank')} | {m('answer')} | "
                f"{m('total')} |"
            )
    lines += [
        "",
        "## Memory of a `kilde serve` process (embedded Chroma)",
        "",
        "| chunks | RSS idle MB | RSS after 20 questions MB | peak MB | target |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for size, by_backend in results["sizes"].items():
        rss = by_backend.get("serve_rss")
        if not rss:
            continue
        target = RSS_TARGET_MB.get(int(size))
        ok = None if target is None else rss["peak_mb"] <= target
        lines.append(
            f"| {int(size):,} | {rss['idle_mb']:.0f} | {rss['rss_mb']:.0f} | {rss['peak_mb']:.0f} | "
            f"{f'≤ {target:.0f} MB' if target else ''}{verdict(ok)} |"
        )
    lines += [
        "",
        "## Building the stores (cached in ~/.cache/kilde/bench/)",
        "",
        "| chunks | real | synthetic articles | Chroma write s | BM25 snapshot s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for by_backend in results["sizes"].values():
        b = by_backend["build"]
        lines.append(
            f"| {b['chunks']:,} | {b['real_chunks']} | {b['synthetic_articles']:,} | {b['write_s']} | "
            f"{b['lexical_s']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--questions", type=int, default=100, help="NorQuAD test questions per measurement")
    parser.add_argument("--english", type=int, default=30, help="English questions per measurement")
    parser.add_argument("--backends", default="embedded,server")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-scale.md")
    parser.add_argument(
        "--build-only", action="store_true", help="build (or reuse) the stores, measure nothing"
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chroma-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.chroma_url, args.questions, args.english)))
        return

    results = {"machine": machine(), "sizes": {}}
    base = ensure_base(args.cache)
    smaller = None
    for size in sorted(int(s) for s in args.sizes.split(",")):
        print(f"== {size:,} chunks", flush=True)
        data_dir = build_store(size, base, args.cache, smaller)
        smaller = data_dir
        if args.build_only:
            continue
        entry = {"build": json.loads((data_dir / "manifest.json").read_text()), "latency": {}}
        if "embedded" in args.backends:
            entry["latency"]["embedded"] = measure_in_subprocess(data_dir, None, args.questions, args.english)
        if "server" in args.backends:
            entry["latency"]["chroma run"] = with_chroma_server(
                data_dir, lambda url, d=data_dir: measure_in_subprocess(d, url, args.questions, args.english)
            )
        entry["serve_rss"] = serve_rss(data_dir)
        results["sizes"][str(size)] = entry
        print(json.dumps(entry["latency"], indent=1)[:2000], flush=True)
    if args.build_only:
        return
    # bench/RESULTS-scale.md -> bench/results/scale.json; RESULTS-scale-rerank.md -> scale-rerank.json
    out_json = ROOT / "bench" / "results" / f"{args.out.stem.removeprefix('RESULTS-')}.json"
    out_json.parent.mkdir(exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1))
    text = report(results, args)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
