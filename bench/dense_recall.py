"""The dense candidates against exact search. For the NorQuAD news validation questions and their English
versions: the share of each question's exact top-k (numpy over the stored chunk vectors) that
`ChromaStore.nearest` returns at each search breadth, how many questions get a different top-k from a second
fresh process, and the p50 of one `nearest` call.

    python -m bench.dense_recall --data-dir build/eval-index [--breadths 0,100,200,400,1000] [--k 30]
    python -m bench.dense_recall --data-dir ~/.cache/kilde/bench/scale-100000 --out bench/RESULTS-dense-recall-100k.md

Each breadth is measured in two fresh processes: Chroma rebuilds the part of its HNSW graph not yet flushed to
disk in each process that opens the index, in an order of its own. Writes the Markdown report named by --out and
its JSON under bench/results/."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, git_commit, machine, p50

OUT = ROOT / "bench" / "RESULTS-dense-recall.md"


def _store(data_dir: Path, breadth: int):
    from assistant.indexes.store import ChromaStore

    return ChromaStore.open(data_dir, None, "kilde", create=False, search_breadth=breadth)


def question_vectors(path: Path) -> int:
    """Embed the validation questions (Norwegian and English) once, with the product's embedder."""
    from assistant.build import build_embedder
    from assistant.core.config import resolve_settings
    from evals.datasets import DATA, load_dataset

    questions = [
        item.question
        for spec in ("norquad:news:validation", str(DATA / "norquad_news_val_en.jsonl"))
        for item in load_dataset(spec)
    ]
    embedder = build_embedder(resolve_settings())
    np.save(path, np.vstack([embedder.embed_query(q) for q in questions]).astype(np.float32))
    return len(questions)


def exact_neighbours(data_dir: Path, vectors: np.ndarray, k: int) -> list[set[str]]:
    from assistant.core.types import NO_FILTERS
    from evals.train import ExactNeighbours

    exact = ExactNeighbours(_store(data_dir, 0))
    return [{m.chunk_id for m in exact.nearest(v, k, NO_FILTERS)} for v in vectors]


def worker(data_dir: Path, vectors_path: Path, breadth: int, k: int, out: Path) -> None:
    """One fresh process: every question's top-k from the store, and the time of each call."""
    from assistant.core.types import NO_FILTERS

    store = _store(data_dir, breadth)
    vectors = np.load(vectors_path)
    store.nearest(vectors[0], k, NO_FILTERS)  # the first call loads the index
    found, times = [], []
    for vector in vectors:
        t0 = time.perf_counter()
        matches = store.nearest(vector, k, NO_FILTERS)
        times.append((time.perf_counter() - t0) * 1000)
        found.append([m.chunk_id for m in matches])
    out.write_text(json.dumps({"found": found, "ms": times}))


def run_worker(data_dir: Path, vectors: Path, breadth: int, k: int, out: Path) -> dict:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.dense_recall",
            "--worker",
            "--data-dir",
            str(data_dir),
            "--vectors",
            str(vectors),
            "--breadths",
            str(breadth),
            "--k",
            str(k),
            "--worker-out",
            str(out),
        ],
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dense_recall", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="a Kilde index folder")
    parser.add_argument("--breadths", default="0,100,200,400,1000", help="search breadths, comma-separated")
    parser.add_argument("--k", type=int, default=30, help="neighbours kept (the dense side's candidates)")
    parser.add_argument("--out", type=Path, default=OUT, help="Markdown report")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    breadths = [int(b) for b in args.breadths.split(",")]
    if args.worker:
        worker(args.data_dir, args.vectors, breadths[0], args.k, args.worker_out)
        return 0

    from assistant.core.config import Settings

    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        vectors_path = Path(tmp) / "questions.npy"
        n = question_vectors(vectors_path)
        exact = exact_neighbours(args.data_dir, np.load(vectors_path), args.k)
        rows = []
        for breadth in breadths:
            first = run_worker(args.data_dir, vectors_path, breadth, args.k, Path(tmp) / "first.json")
            second = run_worker(args.data_dir, vectors_path, breadth, args.k, Path(tmp) / "second.json")
            recall = [
                len(want & set(got)) / max(len(want), 1)
                for run in (first, second)
                for want, got in zip(exact, run["found"], strict=True)
            ]
            rows.append(
                {
                    "breadth": breadth,
                    "recall": round(float(np.mean(recall)), 4),
                    "questions_missing_one": sum(r < 1 for r in recall) / 2,
                    "differing_between_processes": sum(
                        a != b for a, b in zip(first["found"], second["found"], strict=False)
                    ),
                    "p50_ms": round(p50(first["ms"] + second["ms"]), 2),
                }
            )
            print(rows[-1], flush=True)
    chunks = _store(args.data_dir, 0).chunks.count()
    record = {
        "started": started,
        "commit": git_commit(),
        "machine": machine(),
        "data_dir": args.data_dir.name,
        "chunks": chunks,
        "questions": n,
        "k": args.k,
        "rows": rows,
    }
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{args.out.stem.removeprefix('RESULTS-')}.json").write_text(
        json.dumps(record, indent=2) + "\n"
    )
    lines = [
        "# Dense candidates against exact search",
        "",
        f"Generated by `python -m bench.dense_recall --data-dir <{args.data_dir.name}> --out {args.out.name}`"
        f" at commit `{record['commit']}`, {started}; {record['machine']}.",
        "",
        f"{n} questions (NorQuAD news validation and its English versions), {chunks:,} chunks, top {args.k}."
        " Breadth 0 is Chroma's own search (ef_search 100); the shipped `dense_search_breadth` is"
        f" {Settings.dense_search_breadth}."
        " Each breadth ran in two fresh processes; recall is the share of a question's exact top"
        f" {args.k} returned, averaged over both. In the scale stores (`bench/synthetic.py`) a synthetic"
        " chunk's vector is the mean of five sentence vectors, so those vectors bunch together and their"
        " exact top 30 are near ties: a harder case than real chunks; hit@5 at each size is in"
        " `bench/RESULTS-scale*.md`.",
        "",
        "| breadth | recall | questions missing one or more | top-k differing between the two processes |"
        " nearest() p50 ms |",
        "| --- | --- | --- | --- | --- |",
        *(
            f"| {r['breadth']} | {r['recall']:.4f} | {r['questions_missing_one']:g} |"
            f" {r['differing_between_processes']} | {r['p50_ms']} |"
            for r in rows
        ),
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
