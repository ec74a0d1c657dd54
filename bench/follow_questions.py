"""Questions asked while `kilde ingest` publishes beside a running reader, as `kilde serve` meets them.

On a copy of the cached scale store (`python -m bench.query_scale` builds it), one reader process asks NorQuAD
news test questions without pause while it runs `kilde ingest` of one new article, several times. Each publish
makes the reader reopen the store (a fresh client whose vector index is read from disk) and load the new BM25
snapshot. Two readers, one after the other, each on its own copy: one that follows in the background (what
`kilde serve`, `demo` and `mcp` do: `LexicalSide(follow_in_background=True)`) and one whose question that
finds the publish loads it itself (what a command that asks once does). Measured: the questions that began in
the three seconds after each publish against those that began before the ingest, and how soon after the publish
a question finds the new article.

    python -m bench.follow_questions [--size 100000] [--ingests 4]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import CACHE, ROOT, git_commit, machine, percentile, test_items

AFTER_PUBLISH_S = 3.0
MODES = ("background", "inline")


def _article(number: int) -> dict:
    """Article `number` (-1: the first ingest's, before the readers start)."""
    word = f"Kildeferja{number}"
    return {
        "id": f"follow-bench-{number}",
        "title": f"{word} satt i rute",
        "text": f"Den nye elferja {word} gikk sin første tur over fjorden mandag morgen. "
        f"Ferja tar 120 biler og erstatter en dieselferje fra 1987.",
        "date": "2026-12-01",
        "source": "Kilde bench",
        "language": "nb",
    }


def ingest(data_dir: Path, path: Path, article: dict) -> None:
    """`kilde ingest` of one article, in a process of its own, as beside a server."""
    path.write_text(json.dumps(article, ensure_ascii=False), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant.cli",
            "ingest",
            str(path),
            "--data-dir",
            str(data_dir),
            "--no-progress",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def reader(data_dir: Path, mode: str, ingests: int, out: Path) -> None:
    """Runs in its own process: builds the assistant, asks questions in a thread, runs the ingests."""
    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant
    from bench.query_scale import settings_for

    assistant = build_assistant(settings_for(data_dir), follow_in_background=mode == "background")
    questions = [item.question for item in test_items(40)]
    for question in questions[:10]:
        assistant.ask(AskRequest(question))
    asked: list[tuple[float, float]] = []  # (start, ms)
    stop = threading.Event()

    def ask_without_pause() -> None:
        for question in itertools.cycle(questions):
            if stop.is_set():
                return
            started = time.monotonic()
            assistant.ask(AskRequest(question))
            asked.append((started, (time.monotonic() - started) * 1000))

    asking = threading.Thread(target=ask_without_pause, daemon=True)
    asking.start()
    ingests_at: list[tuple[float, float]] = []  # (started, published)
    found_after_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="kilde-follow-articles-") as tmp:
        for number in range(ingests):
            time.sleep(AFTER_PUBLISH_S)
            started = time.monotonic()
            ingest(data_dir, Path(tmp) / f"article-{number}.json", _article(number))
            published = time.monotonic()
            ingests_at.append((started, published))
            wanted = f"follow-bench-{number}"
            while time.monotonic() - published < 60:
                hits = assistant.retriever.retrieve(f"Hva heter Kildeferja{number}?", 5).hits
                if any(hit.article.id == wanted for hit in hits):
                    found_after_s.append(time.monotonic() - published)
                    break
                time.sleep(0.05)
            else:
                raise SystemExit(f"the {mode} reader never found {wanted}")
        time.sleep(AFTER_PUBLISH_S)
    stop.set()
    asking.join()
    out.write_text(json.dumps({"asked": asked, "ingests": ingests_at, "found_after_s": found_after_s}))


def windows(result: dict) -> tuple[list[float], list[float]]:
    """The latencies of questions begun within `AFTER_PUBLISH_S` of a publish, and of those begun before any
    ingest started or in the quiet seconds before each later one."""
    after, steady = [], []
    starts = [s for s, _ in result["ingests"]]
    published = [p for _, p in result["ingests"]]
    for began, ms in result["asked"]:
        if any(p <= began < p + AFTER_PUBLISH_S for p in published):
            after.append(ms)
        elif not any(s <= began < p for s, p in result["ingests"]) and began < max(starts, default=began):
            steady.append(ms)
    return after, steady


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="the cached scale store to copy")
    parser.add_argument("--ingests", type=int, default=4)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-follow-questions.md")
    parser.add_argument("--reader", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reader-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reader:
        reader(args.data_dir, args.reader, args.ingests, args.reader_out)
        return 0
    source = args.cache / f"scale-{args.size}"
    if not source.is_dir():
        raise SystemExit(
            f"no store at {source}: build it with python -m bench.query_scale --sizes {args.size}"
        )
    begun = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="kilde-follow-questions-") as tmp:
        base = Path(tmp) / "base"
        print(f"copying {source}; a first ingest computes the sentence vectors it lacks (minutes)")
        shutil.copytree(source, base)
        prepared = time.perf_counter()
        ingest(base, Path(tmp) / "first.json", _article(-1))
        prepare_s = time.perf_counter() - prepared
        for mode in MODES:
            copy = Path(tmp) / mode
            print(f"copying the store for the {mode} reader")
            shutil.copytree(base, copy)
            result_file = Path(tmp) / f"{mode}.json"
            subprocess.run(
                [
                    *(
                        sys.executable,
                        "-m",
                        "bench.follow_questions",
                        "--reader",
                        mode,
                        "--data-dir",
                        str(copy),
                    ),
                    *("--ingests", str(args.ingests), "--reader-out", str(result_file)),
                ],
                cwd=ROOT,
                check=True,
            )
            results[mode] = json.loads(result_file.read_text())
            shutil.rmtree(copy)
    text = report(args, results, time.perf_counter() - begun, prepare_s)
    args.out.write_text(text, encoding="utf-8")
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / "follow-questions.json").write_text(json.dumps(results) + "\n")
    print(text)
    return 0


def report(args, results: dict, seconds: float, prepare_s: float) -> str:
    lines = [
        "# Questions asked while ingests publish beside a running reader",
        "",
        f"`python -m bench.follow_questions --size {args.size} --ingests {args.ingests}"
        f"{'' if args.cache == CACHE else f' --cache {args.cache.name}'}` at commit {git_commit()}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s.  ",
        f"Machine: {machine()}.",
        "",
        f"A copy of the {args.size:,}-chunk scale store per reader; the reader asks NorQuAD news test questions "
        f"(`Assistant.ask`, the shipped default) one after another in a thread while it runs `kilde ingest` of "
        f"one new article, {args.ingests} times, {AFTER_PUBLISH_S:.0f} s apart, and after each publish asks for "
        "the new article until a search finds it. `after a publish`: the questions begun in the "
        f"{AFTER_PUBLISH_S:.0f} s after one; `steady`: those begun before an ingest started (none while an "
        "ingest ran: it shares the two cores). Before the readers start, a first ingest into the copy "
        f"({prepare_s:.0f} s) does what only a store's first `kilde ingest` does: it computes the sentence vectors "
        "of the chunks that lack them (the scale store's synthetic chunks split into sentences other than their "
        "pool's), so that each reader's ingests add one article's.",
        "",
        "| reader | questions steady | steady p50 ms | after a publish | after p50 ms | after p95 ms | after max ms "
        "| new article found after, s (median, max) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for mode in MODES:
        after, steady = windows(results[mode])
        found = results[mode]["found_after_s"]
        label = "follows in the background (servers)" if mode == "background" else "the question loads it"
        lines.append(
            f"| {label} | {len(steady)} | {percentile(steady, 0.5):.1f} | {len(after)} | "
            f"{percentile(after, 0.5):.1f} | {percentile(after, 0.95):.1f} | {max(after):.1f} | "
            f"{percentile(found, 0.5):.2f}, {max(found):.2f} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    raise SystemExit(main())
