"""How the extractive answerer should score sentences: stemmed term overlap alone, or with sentence embeddings.
Retrieval runs once per question; each scoring mode then answers from the same passages.

    python -m evals.sentence_scoring --data-dir /tmp/kilde-full-index [--dataset norquad:news:validation]

Prints answer_found (share of questions whose answer text is in the quoted sentences) per mode, and the time
the modes spent scoring. The answerer's choice (embeddings only across languages) rests on this run over the
validation split."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tqdm import tqdm

from assistant.build import build_assistant
from assistant.core.config import resolve_settings
from evals.datasets import load_dataset
from evals.metrics import contains_answer, strip_citations


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--dataset", action="append", help="eval set(s); default norquad:news:validation")
    args = parser.parse_args()

    assistant = build_assistant(resolve_settings({"data_dir": args.data_dir}))
    answerer = assistant.extractive
    for spec in args.dataset or ["norquad:news:validation"]:
        items = [i for i in load_dataset(spec) if i.answerable and i.answers]
        retrieved = [
            (item, assistant.retriever.retrieve(item.question, assistant.settings.top_k))
            for item in tqdm(items, desc=f"retrieving {spec}", unit="question")
        ]
        for mode, vector_of in (
            ("term overlap only", lambda r: None),
            ("with sentence embeddings", lambda r: r.query_vector),
        ):
            t0 = time.perf_counter()
            found = [
                contains_answer(
                    strip_citations(answerer.answer(item.question, r.hits, vector_of(r)).answer), item.answers
                )
                for item, r in retrieved
            ]
            print(
                f"{spec}\t{mode}\tanswer_found {sum(found) / len(found):.1%} ({len(found)} questions)\t"
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
