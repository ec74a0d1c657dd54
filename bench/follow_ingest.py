"""A reader following the ingests run beside it on an embedded index (`kilde serve` while `kilde ingest` runs).

Embedded Chroma keeps its vector index in memory, so after each publish the reader opens a fresh client
(`ChromaStore._reopen`) and stops the replaced one once no query can still use it. This measures, in one run
over one synthetic store, what that costs: the reader's memory across ingests with replaced clients stopped,
against the same reader never stopping them, and the first query after a publish (the reload) against a steady
query.

    python -m bench.follow_ingest [--chunks 100000] [--ingests 12]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT, git_commit, machine, percentile, rss_mb

DIM = 384
NAME = "kilde"
WRITE_ONE = """
import sys, numpy as np
from pathlib import Path
from assistant.indexes.store import ChromaStore
store = ChromaStore.open(Path(sys.argv[1]), None, {name!r})
vector = np.frombuffer(bytes.fromhex(sys.argv[3]), dtype=np.float32)
store.chunks.add(ids=[sys.argv[2]], embeddings=[vector], metadatas=[{{"article_id": sys.argv[2]}}])
store.set_generation(sys.argv[2])
"""


def build(folder: Path, chunks: int) -> None:
    from assistant.indexes.store import ChromaStore

    store = ChromaStore.open(folder, None, NAME)
    store.ensure_embedder("synthetic", DIM)
    rng = np.random.default_rng(0)
    for start in range(0, chunks, 5000):
        n = min(5000, chunks - start)
        vectors = rng.normal(size=(n, DIM)).astype(np.float32)
        store.chunks.add(
            ids=[f"c{start + i}" for i in range(n)],
            embeddings=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
            metadatas=[{"article_id": f"a{(start + i) // 5}"} for i in range(n)],
        )
    store.set_generation("g0")


def follow(folder: Path, ingests: int, stop_replaced: bool) -> dict:
    """Runs in its own process, so that its memory is its own."""
    import assistant.indexes.store as store_module
    from assistant.core.types import Filters

    store_module.RETIRED_CLIENT_GRACE_S = 0.0 if stop_replaced else float("inf")
    reader = store_module.ChromaStore.open(folder, None, NAME, create=False)
    rng = np.random.default_rng(1)
    probe = rng.normal(size=DIM).astype(np.float32)
    reader.generation()
    reader.nearest(probe, 30, Filters())
    rss, reload_ms, steady_ms = [rss_mb()[0]], [], []
    for i in range(ingests):
        vector = rng.normal(size=DIM).astype(np.float32)
        new_id = f"new{i}"
        subprocess.run(
            [sys.executable, "-c", WRITE_ONE.format(name=NAME), str(folder), new_id, vector.tobytes().hex()],
            cwd=ROOT,
            check=True,
        )
        t0 = time.perf_counter()
        reader.generation()
        found = reader.nearest(vector, 30, Filters())
        reload_ms.append((time.perf_counter() - t0) * 1000)
        if found[0].chunk_id != new_id:
            raise SystemExit(f"the reader did not find {new_id} after its publish")
        for _ in range(10):
            t0 = time.perf_counter()
            reader.nearest(rng.normal(size=DIM).astype(np.float32), 30, Filters())
            steady_ms.append((time.perf_counter() - t0) * 1000)
        rss.append(rss_mb()[0])
    return {"rss_mb": rss, "reload_ms": reload_ms, "steady_ms": steady_ms}


def run_follower(folder: Path, ingests: int, stop_replaced: bool) -> dict:
    command = [
        sys.executable,
        "-m",
        "bench.follow_ingest",
        "--follow",
        str(folder),
        "--ingests",
        str(ingests),
    ]
    done = subprocess.run(
        command + ([] if stop_replaced else ["--keep-replaced"]),
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth_per_ingest(rss: list[float]) -> float:
    """The slope of RSS over the ingests (least squares), MB per ingest."""
    return float(np.polyfit(np.arange(len(rss)), rss, 1)[0])


def report(args, stopped: dict, kept: dict, seconds: float) -> str:
    grow_stopped, grow_kept = growth_per_ingest(stopped["rss_mb"]), growth_per_ingest(kept["rss_mb"])
    reload_p50 = percentile(stopped["reload_ms"], 0.5)
    steady_p50 = percentile(stopped["steady_ms"], 0.5)
    return "\n".join(
        [
            "# A reader following ingests (embedded Chroma)",
            "",
            f"`python -m bench.follow_ingest --chunks {args.chunks} --ingests {args.ingests}` at commit "
            f"{git_commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s.  ",
            f"Machine: {machine()}.",
            "",
            f"A store of {args.chunks:,} synthetic {DIM}-dimension chunks; another process adds one chunk and "
            f"publishes, {args.ingests} times; after each publish the reader checks the generation, reloads and "
            "must find the new chunk first. Both readers ran in this run, each in a process of its own.",
            "",
            "| measure | replaced clients stopped (shipped) | never stopped | |",
            "| --- | --- | --- | --- |",
            f"| reader RSS at the start, MB | {stopped['rss_mb'][0]:.0f} | {kept['rss_mb'][0]:.0f} | |",
            f"| reader RSS after the last ingest, MB | {stopped['rss_mb'][-1]:.0f} | {kept['rss_mb'][-1]:.0f} | |",
            f"| RSS growth per ingest (slope), MB | {grow_stopped:.1f} | {grow_kept:.1f} | "
            f"{grow_stopped / grow_kept:.2f}× |"
            if grow_kept > 0
            else "| RSS growth per ingest | n/a | n/a | |",
            "",
            f"The first query after a publish (generation check, fresh client, its vector index loaded, the query) "
            f"p50 {reload_p50:.0f} ms, against a steady query p50 {steady_p50:.1f} ms "
            f"({reload_p50 / steady_p50:.0f}×): once per ingest, on the first question after it.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--ingests", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-follow-ingest.md")
    parser.add_argument("--follow", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep-replaced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.follow:
        print(json.dumps(follow(args.follow, args.ingests, not args.keep_replaced)))
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kilde-follow-") as tmp:
        stores = {}
        for mode in ("stopped", "kept"):  # a store each: both readers start from the same state
            stores[mode] = Path(tmp) / mode
            print(f"building a {args.chunks:,}-chunk store for the reader whose replaced clients are {mode}")
            build(stores[mode], args.chunks)
        results = {mode: run_follower(stores[mode], args.ingests, mode == "stopped") for mode in stores}
    text = report(args, results["stopped"], results["kept"], time.perf_counter() - started)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
