"""What every benchmark shares: the machine's description, percentiles, RSS readings, the eval questions, and
the bench corpus (the seed article plus the NorQuAD news articles the test questions are about)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

from assistant.core.config import resolve_settings
from evals.machine import description, hardware_line

ROOT = Path(__file__).resolve().parent.parent
# Outside the clone, like pip's cache: the 1M store takes the better part of an hour to build and several GB,
# so a fresh clone on the same machine reuses it. It sits under Kilde's own cache dir (KILDE_CACHE_DIR);
# KILDE_BENCH_CACHE moves it elsewhere.
CACHE = Path(os.environ.get("KILDE_BENCH_CACHE") or resolve_settings().cache_dir / "bench")


def machine() -> str:
    return f"{hardware_line(description())}, load average {os.getloadavg()[0]:.2f} at the start"


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


def test_items(limit: int | None = None):
    """NorQuAD's official news test split (Norwegian, never tuned on)."""
    from evals.datasets import load_dataset

    return load_dataset("norquad:news:test", limit=limit)


def english_items(limit: int | None = None):
    from evals.datasets import load_dataset

    return load_dataset(str(ROOT / "evals" / "data" / "norquad_news_val_en.jsonl"), limit=limit)


def write_bench_corpus(dest: Path, article_ids: set[str]) -> Path:
    """A corpus folder with the seed article and just the NorQuAD news articles in `article_ids`, in
    NorQuAD's own file format so the ingest loads them under the same ids as the full sample corpus."""
    import re
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "corpus" / "seed", dest / "seed", dirs_exist_ok=True)
    news = dest / "norquad" / "news"
    news.mkdir(parents=True, exist_ok=True)
    for source in sorted((ROOT / "corpus" / "norquad" / "news").glob("answers_*.json")):
        annotator = re.search(r"answers_(\d+)", source.name).group(1)
        data = json.loads(source.read_text(encoding="utf-8"))
        kept = []
        for entry in data["data"]:
            paragraphs = [
                p
                for p in entry.get("paragraphs", [])
                if f"news-a{annotator}-d{p.get('document_id')}" in article_ids
            ]
            if paragraphs:
                kept.append({**entry, "paragraphs": paragraphs})
        (news / source.name).write_text(
            json.dumps({**data, "data": kept}, ensure_ascii=False), encoding="utf-8"
        )
    return dest


def bench_corpus(dest: Path) -> Path:
    """The seed plus the 105 NorQuAD articles behind the test questions (~560 chunks): big enough for
    hit@5 on the test split, small enough to embed in a few minutes."""
    ids = {a for item in test_items() for a in item.gold_article_ids}
    return write_bench_corpus(dest, ids)


def write_results(result: dict, json_name: str, report: str, out: Path) -> None:
    """A bench's figures as JSON under bench/results/ and its report as Markdown at `out`, the report printed."""
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / json_name).write_text(json.dumps(result, indent=1), encoding="utf-8")
    out.write_text(report, encoding="utf-8")
    print(report)
