"""`python -m evals.reader_eval`: the reader alone, reading-comprehension style: EM and F1 on NorQuAD news
validation and test with the gold passage given (what NorQuAD's paper reports; human F1 on news is 94.5).

The reader reads each question with its whole passage (in windows, as at run time) and its best span is the
answer, whatever its no-answer score (every question here has an answer). Scored against every gold answer,
the best one counting, after SQuAD's normalisation (lower case, punctuation and the English articles a/an/the
removed, whitespace collapsed) with « » – — “ ” ‘ ’ … counted as punctuation too, as for NorQuAD's human
figures in `../shared/docs/norquad.md`.

`validation-en`: the English versions of validation questions (`evals/data/norquad_news_val_en.jsonl`) with
their Norwegian passage, the multilingual transfer (no English question was trained on).

Beside them, on validation only: how often the no-answer score beats the span on the gold passage (a false
"no answer"); and when an index is given (`--data-dir`), on a near miss (the best BM25 chunk of the eval index
without the answer) and on the index's chunk that holds the answer (with the median margin there), each chunk
read as the reading stage reads it (under its article's title, where `read_titles` says so)."""

from __future__ import annotations

import argparse
import json
import re
import statistics
import string
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.answering.reader import MODEL_FILE, SETTINGS_FILE, Reader
from evals.datasets import DATA, NORQUAD_EVAL
from evals.metrics import interval

PUNCTUATION = set(string.punctuation) | set("«»–—“”‘’…")
ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalise(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalise(prediction) == normalise(gold))


def f1(prediction: str, gold: str) -> float:
    p, g = normalise(prediction).split(), normalise(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g:
        return float(p == g)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]


def gold_questions(split: str, domain: str = "news") -> list[GoldQuestion]:
    path = NORQUAD_EVAL / domain / f"{split}_dataset_flattened.json"
    out = []
    for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in entry["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a.get("text")))
                out.append(GoldQuestion(str(qa["id"]), qa["question"], paragraph["context"], answers))
    return out


def english_questions() -> list[GoldQuestion]:
    """The English versions of news validation questions (`evals/data/norquad_news_val_en.jsonl`) with their
    Norwegian passage: the multilingual transfer, as no English question was trained on. Each is read as the
    reading stage reads it, with its dictionary translation after it (`reading.as_read`)."""
    from assistant.answering.reading import as_read
    from assistant.answering.translate import default_translator

    translator = default_translator()
    by_key = {(q.id, q.question): q for q in gold_questions("validation")}
    out = []
    for line in (DATA / "norquad_news_val_en.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        gold = by_key.get((str(item["norquad_question_id"]), item["question_nb"]))
        if gold is not None:
            question = as_read(item["question"], "en", translator)
            out.append(GoldQuestion(item["id"], question, gold.context, gold.answers))
    return out


SPLITS = {
    "validation": lambda: gold_questions("validation"),
    "test": lambda: gold_questions("test"),
    "validation-en": english_questions,
}


def score_split(reader: Reader, split: str, limit: int | None = None) -> dict:
    questions = SPLITS[split]()[:limit] if limit else SPLITS[split]()
    ems, f1s, refused = [], [], 0
    started = time.perf_counter()
    for q in questions:
        start, end, span, null = reader.read_texts(q.question, [q.context])[0]
        prediction = q.context[start:end]
        ems.append(max(exact_match(prediction, a) for a in q.answers))
        f1s.append(max(f1(prediction, a) for a in q.answers))
        refused += null > span
    n = len(questions)
    (em_lo, em_hi), (f1_lo, f1_hi) = interval(ems), interval(f1s)
    return {
        "split": f"news {split}",
        "questions": n,
        "em": round(sum(ems) / n, 4),
        "f1": round(sum(f1s) / n, 4),
        "em_interval": [round(em_lo, 4), round(em_hi, 4)],
        "f1_interval": [round(f1_lo, 4), round(f1_hi, 4)],
        "no_answer_wins_on_gold_passage": round(refused / n, 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def near_miss_refusal(reader: Reader, data_dir: Path, limit: int | None = None) -> dict:
    """Validation questions read against their best BM25 chunk that does not hold the answer."""
    from assistant.core.types import Filters
    from assistant.indexes.lexical import LexicalIndex
    from assistant.indexes.store import ChromaStore

    store = ChromaStore.open(data_dir, None, "kilde", None, create=False)
    texts = {chunk.id: (chunk.text, meta.title) for chunk, meta in store.iter_chunks()}
    lexical = LexicalIndex.load(data_dir / "lexical" / "kilde")
    questions = gold_questions("validation")[:limit] if limit else gold_questions("validation")
    refused = n = 0
    for q in questions:
        answers = [a.casefold() for a in q.answers]
        for hit in lexical.search(q.question, 10, Filters()):
            text, title = texts[hit.chunk_id]
            if not any(a in text.casefold() for a in answers):
                _, _, span, null = reader.read_texts(q.question, [text], [title])[0]
                refused += null > span
                n += 1
                break
    return {
        "split": "news validation, near miss",
        "questions": n,
        "no_answer_wins": round(refused / max(n, 1), 4),
    }


def answer_chunk_reading(reader: Reader, data_dir: Path, limit: int | None = None) -> dict:
    """Validation questions read against the index's chunk that holds their answer (what the reading stage
    reads when retrieval is right): how often "no answer" wins there, and the median margin."""
    from assistant.indexes.store import ChromaStore
    from evals.train_reader import squeezed

    store = ChromaStore.open(data_dir, None, "kilde", None, create=False)
    # Ingest moves the title out and doubles line breaks: chunks are found in the passage with whitespace squeezed.
    texts = [
        (text, squeezed(text)[0], title)
        for text, title in sorted((chunk.text, meta.title) for chunk, meta in store.iter_chunks())
    ]
    questions = gold_questions("validation")[:limit] if limit else gold_questions("validation")
    margins = []
    for q in questions:
        context = squeezed(q.context)[0]
        holding = [
            (t, title)
            for t, flat, title in texts
            if flat and any(a in t for a in q.answers) and flat in context
        ]
        if holding:
            text, title = holding[0]
            _, _, span, null = reader.read_texts(q.question, [text], [title])[0]
            margins.append(span - null)
    return {
        "split": "news validation, answer chunk",
        "questions": len(margins),
        "no_answer_wins": round(sum(m < 0 for m in margins) / max(len(margins), 1), 4),
        "median_margin": round(float(statistics.median(margins)), 3) if margins else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.reader_eval", description=__doc__)
    parser.add_argument("--splits", nargs="*", default=["validation", "test"], choices=list(SPLITS))
    parser.add_argument("--data-dir", type=Path, default=None, help="eval index, for the near-miss figure")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--model", type=Path, default=MODEL_FILE)
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE)
    args = parser.parse_args(argv)
    reader = Reader(args.model, args.settings)
    results = [score_split(reader, split, args.limit) for split in args.splits]
    if args.data_dir is not None:
        results.append(near_miss_refusal(reader, args.data_dir, args.limit))
        results.append(answer_chunk_reading(reader, args.data_dir, args.limit))
    for row in results:
        print(json.dumps(row, ensure_ascii=False))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("done", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
