"""A page of the MCP server's `resources/list` over a large archive: the page taken from a heap of its size
(`ui.mcp_pages.newest_first`) against the whole archive sorted for each page, as the server did before, in
the same run on the same rows.

    python -m bench.mcp_pages [--articles 100000] [--out bench/RESULTS-mcp-pages.md]

Only the choice of the page is timed: reading the store's article list (`stored_articles`), which each page does
as well, is not, so the figures say what the heap saves of a page's work, not what a client waits in all."""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from pathlib import Path

from assistant.core.types import ArticleMeta
from assistant.indexes.store import StoredArticle
from bench.common import ROOT, write_results
from ui.mcp_pages import MAX_LISTED, listing_key, newest_first


def archive(articles: int, seed: int = 7) -> list[StoredArticle]:
    """Articles over twenty years, several a day, some undated, in the store's order (not the listing's)."""
    rng = random.Random(seed)
    rows = []
    for n in range(articles):
        dated = rng.random() > 0.02
        date = (
            f"{rng.randint(2005, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if dated else None
        )
        meta = ArticleMeta(f"sak-{n:06d}", f"Sak {n}", date, "Kilde", None, "nb", f"{n:x}")
        rows.append(StoredArticle(meta, "signature", 1, None))
    rng.shuffle(rows)
    return rows


def sorted_whole(rows, after, size):
    """The page as the server chose it before: every article sorted, those after the cursor kept, then sliced."""
    ordered = sorted(rows, key=listing_key, reverse=True)
    if after is not None:
        ordered = [s for s in ordered if listing_key(s) < after]
    return ordered[:size], len(ordered) > size


def seconds(choose, rows, after, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        choose(rows, after, MAX_LISTED)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(articles: int) -> dict:
    rows = archive(articles)
    ordered = sorted(rows, key=listing_key, reverse=True)
    places = {
        "first page": None,
        "a page in the middle": listing_key(ordered[len(ordered) // 2]),
        "the last page": listing_key(ordered[-MAX_LISTED // 2]),
    }
    figures = {}
    for name, after in places.items():
        assert newest_first(rows, after, MAX_LISTED) == sorted_whole(rows, after, MAX_LISTED)  # the same page
        before, now = seconds(sorted_whole, rows, after), seconds(newest_first, rows, after)
        figures[name] = {
            "sorted_s": round(before, 4),
            "heap_s": round(now, 4),
            "ratio": round(before / now, 2),
        }
    return {
        "articles": articles,
        "page": MAX_LISTED,
        "pages": figures,
        "machine": platform.processor() or platform.machine(),
    }


def report(result: dict) -> str:
    lines = [
        "# A page of the MCP server's resources/list",
        "",
        f"`python -m bench.mcp_pages --articles {result['articles']}` on {result['machine']}: choosing one page of "
        f"{result['page']:,} articles, newest first, from {result['articles']:,} (median of 5), as the server does "
        "now (a heap of the page's size, `newest_first`) and as it did before (the whole archive sorted for each "
        "page), in the same run on the same rows; both give the same page. Reading the store's article list, which "
        "each page does too, is not timed.",
        "",
        "| page | sorted whole (s) | heap (s) | sorted / heap |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, figure in result["pages"].items():
        lines.append(
            f"| {name} | {figure['sorted_s']:.4f} | {figure['heap_s']:.4f} | {figure['ratio']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS-mcp-pages.md")
    args = parser.parse_args()
    result = measure(args.articles)
    write_results(result, "mcp-pages.json", report(result), args.out)


if __name__ == "__main__":
    main()
