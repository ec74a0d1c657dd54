"""B of bench/load.py: load and soak against `kilde serve` on a `chroma run` server while the single
writer ingests held-out articles in rounds (docs/scale-out.md).

The held-out articles are NorQuAD passages that questions in the stream are about, so they get cited
once they are committed. A `CommitWatcher` polls the Chroma server for their article records (the commit
points); an answer that cites one and arrived before a poll still found it uncommitted is a citation of
a half-written article."""

from __future__ import annotations

import random
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.load_report import (
    PHASE_HEADER,
    STAGE_HEADER,
    code_state,
    error_lines,
    machine,
    mark,
    phase_json,
    phase_row,
    stage_row,
)
from bench.loadkit import (
    SEED_ARTICLE,
    CommitWatcher,
    Outcome,
    QuestionStream,
    Sampler,
    check_citations,
    corpus_articles,
    eval_questions,
    kilde,
    measure,
    norquad_questions,
    percentile,
    pick_articles,
    question_pool,
    rss_kb,
    rss_split_kb,
    start_server,
    write_articles,
)

RSS_GROWTH_LIMIT = 0.10


@dataclass
class IngestRound:
    file: Path
    articles: int
    threshold: int  # starts once this many measured questions are answered
    start: float = 0.0
    end: float = 0.0
    started_during_load: bool = False
    report: dict | None = None
    error: str | None = None


class Writer(threading.Thread):
    """The single writer: one `kilde ingest` per round, one after another, each once enough questions are
    answered, so that commits land at different points of the run."""

    def __init__(self, rounds: list[IngestRound], env: dict[str, str]):
        super().__init__(daemon=True)
        self.rounds = rounds
        self.env = env
        self.answered = 0
        self.load_over = False
        self._cond = threading.Condition()

    def on_answer(self, _outcome: Outcome) -> None:
        with self._cond:
            self.answered += 1
            self._cond.notify_all()

    def finish_load(self) -> None:
        with self._cond:
            self.load_over = True
            self._cond.notify_all()

    def run(self) -> None:
        for r in self.rounds:
            with self._cond:
                self._cond.wait_for(lambda r=r: self.answered >= r.threshold or self.load_over)
                r.started_during_load = not self.load_over
            r.start = time.monotonic()
            try:
                r.report = kilde(["ingest", str(r.file), "--no-progress"], self.env)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                r.error = str(exc)[:500]
            r.end = time.monotonic()


def soak_index(args, work: Path, writer_env: dict) -> tuple[set[str], list[str], str]:
    """(ids of the articles indexed at the start, held-out ids, a note). Held-out articles are not indexed."""
    corpus = corpus_articles()
    if args.data_dir:
        indexed = {a["id"] for a in kilde(["articles"], writer_env)}
        unknown = sorted(indexed - corpus.keys())
        if unknown:
            raise SystemExit(
                f"{args.data_dir} holds articles that are not in corpus/ ({unknown[:3]} ...); "
                "the soak can only hold out sample-corpus articles"
            )
        held = pick_articles(indexed, args.held_out, args.seed)
        base = sorted(indexed - set(held))
        write_articles(work / "base.jsonl", (corpus[i] for i in base))
        report = kilde(["ingest", str(work / "base.jsonl"), "--prune", "--no-progress"], writer_env)
        if report["removed"] != len(held) or report["chunks_embedded"]:
            raise RuntimeError(f"pruning the held-out articles did something else: {report}")
        return (
            set(base),
            held,
            (
                f"a copy of `{args.data_dir}/chroma` served by `chroma run`, the {len(held)} "
                "held-out articles pruned by the writer before the run"
            ),
        )
    held = pick_articles(corpus, args.held_out, args.seed)
    base = [SEED_ARTICLE, *pick_articles(corpus, args.articles, args.seed + 1, avoid=set(held))]
    write_articles(work / "base.jsonl", (corpus[i] for i in base))
    t0 = time.monotonic()
    print(f"building a base index of {len(base)} corpus articles on the Chroma server ...", flush=True)
    report = kilde(["ingest", str(work / "base.jsonl"), "--no-progress"], writer_env)
    return (
        set(base),
        held,
        (
            f"built by this run on the Chroma server from {len(base)} corpus articles "
            f"({report['chunks_embedded']} chunks, {time.monotonic() - t0:.0f} s)"
        ),
    )


def soak_questions(base: set[str], held: list[str], every: int, seed: int):
    """(general stream for the warm-up, an endless mix in which every `every`th question was written about
    a held-out article)."""
    general = QuestionStream(question_pool(base, seed, exclude=set(held)))
    about_held = list(
        dict.fromkeys(q for q in eval_questions() + norquad_questions() if set(held) & set(q.article_ids))
    )
    random.Random(seed).shuffle(about_held)
    about = QuestionStream(about_held) if about_held else general

    def mixed():
        i = 0
        while True:
            i += 1
            yield (about if i % every == 0 else general).take(1)[0]

    return general, mixed()


def run_length(mixed, n: int, writer: Writer, tail: int):
    """At least `n` questions; then more while the writer still ingests, and `tail` after its last commit,
    so every ingest round runs entirely under load and its articles can be cited afterwards."""
    for _ in range(n):
        yield next(mixed)
    if not writer.rounds:
        return
    while writer.is_alive():
        yield next(mixed)
    for _ in range(tail):
        yield next(mixed)


def check_chunks(store, outcomes: list[Outcome]) -> tuple[list[str], int]:
    """Each cited chunk exists, belongs to the cited article's committed version, and holds the quote."""
    cited = {c["chunk_id"]: c for o in outcomes for c in (o.answer or {}).get("citations", ())}
    chunks = store.get_chunks(list(cited))
    hashes = store.article_hashes([c["article_id"] for c in cited.values()])
    problems = []
    for chunk_id, c in cited.items():
        found = chunks.get(chunk_id)
        if found is None:
            problems.append(f"cited chunk {chunk_id} is not in the store")
            continue
        chunk, meta = found
        if chunk.article_id != c["article_id"] or meta.content_hash != hashes.get(c["article_id"]):
            problems.append(f"cited chunk {chunk_id} is not the committed version of {c['article_id']}")
        elif not (chunk.start <= c["start"] and c["end"] <= chunk.end):
            problems.append(f"quote of {chunk_id} lies outside the chunk")
    return problems, len(cited)


def rss_at(samples: list[tuple[float, float]], t: float) -> float:
    """The last RSS sample taken at or before `t` (the first one if none was)."""
    before = [kb for at, kb in samples if at <= t]
    return before[-1] if before else samples[0][1]


def run_soak(args, work: Path) -> tuple[str, bool, dict]:
    from assistant.indexes.store import ChromaStore
    from assistant.testing.servers import chroma_server

    if args.data_dir:
        shutil.copytree(args.data_dir / "chroma", work / "chroma")
    with chroma_server(work / "chroma") as chroma_url:
        writer_env = {"KILDE_CHROMA_URL": chroma_url, "KILDE_DATA_DIR": str(work / "writer")}
        base, held, index_note = soak_index(args, work, writer_env)
        corpus = corpus_articles()
        rounds = []
        per_round = -(-len(held) // max(args.ingest_rounds, 1))
        for k in range(args.ingest_rounds):
            path = work / f"ingest-round-{k + 1}.jsonl"
            count = write_articles(path, (corpus[i] for i in held[k * per_round : (k + 1) * per_round]))
            rounds.append(
                IngestRound(path, count, int(args.questions * (0.1 + 0.8 * k / args.ingest_rounds)))
            )
        general, mixed = soak_questions(base, held, args.held_every, args.seed)

        watcher = CommitWatcher(chroma_url, held)
        watcher.poll()
        if watcher.present_at:
            raise RuntimeError(
                f"held-out articles are committed before the run: {sorted(watcher.present_at)}"
            )
        server = start_server(work / "replica", work / "serve.log", KILDE_CHROMA_URL=chroma_url)
        pid, url = server.process.pid, server.url
        writer = Writer(rounds, writer_env)
        rss = Sampler(lambda: rss_kb(pid), 0.5)
        try:
            rss.start()
            measure(url, general.take(args.warmup), args.clients, pid, "warm-up", args.timeout)
            warm_t, warm_split = time.monotonic(), rss_split_kb(pid)
            watcher.start()
            writer.start()
            figures, outcomes = measure(
                url,
                run_length(mixed, args.questions, writer, args.tail),
                args.clients,
                pid,
                f"soak, {args.clients} clients",
                args.timeout,
                on_answer=writer.on_answer,
                total=args.questions,
            )
            load_t1, end_split = time.monotonic(), rss_split_kb(pid)
            writer.finish_load()
            writer.join()
            watcher.join(timeout=30)
            watcher.stop()
            rss_during = [(t, kb) for t, kb in rss.samples if warm_t <= t <= load_t1]
            citations = check_citations(url, outcomes)
            store = ChromaStore.open(None, chroma_url, "kilde")
            chunk_problems, chunks_checked = check_chunks(store, outcomes)
            committed_at_end = store.article_hashes(held)
        finally:
            rss.stop()
            writer.finish_load()
            server.stop()
    load_t0 = min(o.sent for o in outcomes)

    held_set = set(held)
    early, held_citations, lags = [], 0, []
    for o in outcomes:
        for c in (o.answer or {}).get("citations", ()):
            if c["article_id"] not in held_set:
                continue
            held_citations += 1
            absent = watcher.absent_at.get(c["article_id"], float("-inf"))
            if o.received <= absent:
                early.append(
                    f"{c['article_id']} cited in an answer received {absent - o.received:.2f} s before a "
                    "poll still found it uncommitted"
                )
            if c["article_id"] in watcher.present_at:
                lags.append(o.received - watcher.present_at[c["article_id"]])
    windows = [(r.start, r.end) for r in rounds if r.end]
    during_ingest = sum(any(o.sent < e and o.received > s for s, e in windows) for o in outcomes)
    round_problems = [
        f"ingest round {i + 1}: {r.error or 'did not run'}" for i, r in enumerate(rounds) if not r.report
    ]
    round_problems += [
        f"ingest round {i + 1}: added {r.report['added']} of {r.articles}"
        for i, r in enumerate(rounds)
        if r.report and r.report["added"] != r.articles
    ]
    round_problems += [
        f"ingest round {i + 1} started after the load had ended"
        for i, r in enumerate(rounds)
        if r.report and not r.started_during_load
    ]
    missing = sorted(held_set - committed_at_end.keys())
    warm_kb, peak_kb, end_kb = rss_during[0][1], max(kb for _, kb in rss_during), rss_during[-1][1]
    growth = (end_kb - warm_kb) / warm_kb
    timeline = [rss_at(rss_during, warm_t + f * (load_t1 - warm_t)) for f in (0, 0.25, 0.5, 0.75, 1)]
    started_kb = rss.samples[0][1]
    ok = {
        "errors": figures.errors == 0,
        "citations": not citations.problems and not chunk_problems,
        "commit order": not early,
        "rss": growth <= RSS_GROWTH_LIMIT,
        "ingest": not round_problems and not missing,
    }

    def rel(t: float) -> str:
        return f"{t - load_t0:.0f} s"

    lines = [
        f"Measured {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Command: `{args.command}`  ",
        f"Machine: {machine(args.load_at_start)}  ",
        f"Code: {code_state()}",
        "",
        (
            f"Setup: a `chroma run` server on 127.0.0.1; `kilde serve` reading it (`KILDE_CHROMA_URL`, a data dir of "
            f"its own, `KILDE_RATE_LIMIT=0`, `ui_concurrency` 4); the single writer, `kilde ingest` in a separate "
            f"process with its own data dir (docs/scale-out.md). Index: {index_note}; {len(base)} articles at the "
            f"start. {len(held)} held-out NorQuAD articles are ingested in {len(rounds)} rounds while the questions "
            f"run; every {args.held_every}th question was written about a held-out article. {args.warmup} warm-up "
            f"questions ({args.clients} clients, not counted), then the measured run: at least {args.questions} "
            f"questions, on until the last ingest round has finished, then {args.tail} more."
        ),
        "",
        *PHASE_HEADER,
        phase_row("soak", figures),
        "",
        "| target | result | |",
        "| --- | --- | --- |",
        f"| 0 errors (non-200, timeout, malformed Answer) | **{figures.errors}** | {mark(ok['errors'])} |",
        (
            f"| every citation's article exists (GET /api/articles/{{id}} after the run) and its quote = "
            f"text[start:end]; every cited chunk is the committed version | **{len(citations.problems) + len(chunk_problems)}** "
            f"problems in {citations.checked} citations ({citations.articles_fetched} articles fetched; "
            f"{chunks_checked} distinct cited chunks checked on the Chroma server) | {mark(ok['citations'])} |"
        ),
        (
            f"| a held-out article is cited only once committed | **{len(early)}** early, of {held_citations} "
            f"citations of held-out articles | {mark(ok['commit order'])} |"
        ),
        (
            f"| RSS growth from after warm-up to the end ≤ {RSS_GROWTH_LIMIT:.0%} | **{growth:+.1%}**: "
            f"{warm_kb / 1024:.0f} MiB after warm-up, {peak_kb / 1024:.0f} MiB peak, {end_kb / 1024:.0f} MiB at the "
            f"end ({len(rss_during)} samples of VmRSS, every 0.5 s) | {mark(ok['rss'])} |"
        ),
        (
            f"| (RSS when the server was ready; then at 0 / 25 / 50 / 75 / 100% of the run after warm-up) | "
            f"{started_kb / 1024:.0f} MiB; {' / '.join(f'{kb / 1024:.0f}' for kb in timeline)} MiB | |"
        ),
        (
            f"| (of which anonymous / file-backed, after warm-up → end) | {warm_split['RssAnon'] / 1024:.0f} → "
            f"{end_split['RssAnon'] / 1024:.0f} MiB / {warm_split['RssFile'] / 1024:.0f} → "
            f"{end_split['RssFile'] / 1024:.0f} MiB | |"
        ),
        (
            f"| every ingest round succeeds and starts during the load; all held-out articles committed at the end | "
            f"{len(held) - len(missing)} of {len(held)} committed | {mark(ok['ingest'])} |"
        ),
        "",
        (
            f"Ingest rounds (times from the first measured question; the load ran {load_t1 - load_t0:.0f} s; "
            f"{during_ingest} of {len(outcomes)} questions ({during_ingest / len(outcomes):.0%}) were in flight "
            "while an ingest ran):"
        ),
        "",
        "| round | articles | added | chunks embedded | started | ended | ingest time | server RSS at its end |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            (
                f"| {i + 1} | {r.articles} | {r.report['added'] if r.report else '–'} | "
                f"{r.report['chunks_embedded'] if r.report else '–'} | {rel(r.start)} | {rel(r.end)} | "
                f"{r.end - r.start:.0f} s | {rss_at(rss_during, r.end) / 1024:.0f} MiB |"
            )
            for i, r in enumerate(rounds)
        ],
        "",
        (
            f"Commit timeline: the bench polled the Chroma server for the held-out article records every "
            f"{watcher.every_s:.1f} s ({watcher.polls} polls). {held_citations} citations of held-out articles; the "
            f"earliest arrived {min(lags, default=float('nan')):.1f} s after its article's commit was seen, the "
            f"median {percentile(lags, 0.5):.1f} s after."
        ),
        "",
        "Median server-side stage timings (ms):",
        "",
        *STAGE_HEADER,
        stage_row("soak", figures),
        "",
        *error_lines(outcomes),
        *[f"- {p}" for p in (citations.problems + chunk_problems + early + round_problems)[:20]],
    ]
    result = {
        **phase_json(figures),
        "citations_checked": citations.checked,
        "citation_problems": len(citations.problems) + len(chunk_problems),
        "held_out_citations": held_citations,
        "early_citations": len(early),
        "rss_after_warmup_mib": round(warm_kb / 1024, 1),
        "rss_peak_mib": round(peak_kb / 1024, 1),
        "rss_end_mib": round(end_kb / 1024, 1),
        "rss_growth": round(growth, 4),
        "rss_timeline_mib": [round(kb / 1024, 1) for kb in timeline],
        "rss_ready_mib": round(started_kb / 1024, 1),
        "rss_split_kib": {"after_warmup": warm_split, "end": end_split},
        "questions_during_ingest": during_ingest,
        "ingest_rounds": [
            {
                "articles": r.articles,
                "report": r.report,
                "error": r.error,
                "start_s": round(r.start - load_t0, 1),
                "end_s": round(r.end - load_t0, 1),
            }
            for r in rounds
        ],
        "index": index_note,
        "command": args.command,
        "targets": ok,
    }
    return "\n".join(lines), all(ok.values()), result
