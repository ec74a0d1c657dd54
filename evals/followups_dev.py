"""`followups_dev`: follow-up dialogues made from validation questions, for tuning how follow-ups are
answered without touching the `followups` sets, which are only scored.

Two validation questions about the same article make a dialogue when the second names something the first
question or its answer named: the first is asked and answered (its gold sentence is the previous answer), the second is asked
with that name replaced by a pronoun, as a person continuing the conversation would ("How many golds has
Svindal won?" → "How many golds has they won?"; the grammar is rough, the reference back is what counts),
and its original wording is the `standalone_question`. Norwegian from NorQuAD news validation and from the
news questions of NorQuAD train (those in no official split, as `make train` uses them), English from
`norquad_news_val_en.jsonl` (English versions of news validation). Never from test. Deterministic:

    python -m evals.followups_dev        # writes evals/data/followups_dev.jsonl

followed by the hand-written dialogues of `evals/data/followups_dev_bare.jsonl`, whose follow-up is a question
word alone, which no pronoun makes.

`--test` makes the same kind of dialogues from NorQuAD news test instead (Norwegian only: test has no English
versions), written to `evals/data/followups_test.jsonl`: scored by `make eval`, never used for a choice. Like
the dev dialogues, and like Kilde's own extractive answers, the previous answer is a passage's sentence word for
word (`followups.jsonl` paraphrases them, as a person or a language model would)."""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from assistant.answering.condense import salient_terms
from evals.datasets import EvalItem, load_dataset, split_keys
from evals.train import train_items

OUT = Path("evals/data/followups_dev.jsonl")
TEST_OUT = Path("evals/data/followups_test.jsonl")
# written by hand: a question word alone ("Når?", "Where?") after a validation question or one about the seed article
BARE = Path("evals/data/followups_dev_bare.jsonl")
TEST_SOURCE = "norquad:news:test"
SOURCES = {"nb": "norquad:news:validation", "en": "evals/data/norquad_news_val_en.jsonl"}
TRAIN_DIALOGUES = 120  # from NorQuAD train, after those of validation
PRONOUN = {"nb": ("de", "deres"), "en": ("they", "their")}
PER_ARTICLE = 4  # dialogues per article, so a few long articles do not dominate


def refer_back(question: str, name: str, language: str) -> str | None:
    """The question with `name` (and its possessive) replaced by a pronoun; None when it does not occur."""
    subject, possessive = PRONOUN[language]
    pattern = re.compile(rf"\b{re.escape(name)}(?:'s|’s|s)?\b")
    match = pattern.search(question)
    if not match:
        return None
    pronoun = possessive if match.group() != name else subject
    return question[: match.start()] + pronoun + question[match.end() :]


def dialogues(items: list[EvalItem], language: str, prefix: str) -> list[dict]:
    by_article: dict[str, list[EvalItem]] = defaultdict(list)
    for item in items:
        if item.answerable and item.gold_article_ids and item.gold_passages:
            by_article[item.gold_article_ids[0]].append(item)
    out: list[dict] = []
    for article_id in sorted(by_article):
        made = 0
        questions = by_article[article_id]
        for first in questions:
            for second in questions:
                if (
                    made >= PER_ARTICLE
                    or first is second
                    or set(first.gold_passages) & set(second.gold_passages)
                ):
                    continue
                said = f"{first.question} {first.gold_passages[0]}".lower()
                names = [n for n in salient_terms(second.question) if n.lower() in said]
                follow_up = refer_back(second.question, names[0], language) if names else None
                if not follow_up:
                    continue
                made += 1
                out.append(
                    {
                        "id": f"{prefix}-{len(out) + 1:03d}",
                        "language": language,
                        "history": [
                            {"role": "user", "content": first.question},
                            {"role": "assistant", "content": first.gold_passages[0]},
                        ],
                        "question": follow_up,
                        "standalone_question": second.question,
                        "answerable": True,
                        "answers": list(second.answers),
                        "gold_passages": list(second.gold_passages),
                        "gold_article_ids": list(second.gold_article_ids),
                    }
                )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help=f"default {OUT}, with --test {TEST_OUT}")
    parser.add_argument(
        "--test", action="store_true", help=f"dialogues from {TEST_SOURCE}, to be scored only"
    )
    args = parser.parse_args(argv)
    if args.test:
        rows = dialogues(load_dataset(TEST_SOURCE), "nb", "fut-nb")
        return write(rows, args.out or TEST_OUT)
    rows: list[dict] = []
    for language, spec in SOURCES.items():
        rows += dialogues(load_dataset(spec), language, f"fud-{language}")
    keys = split_keys()
    news = [i for i in train_items(keys["validation"] | keys["test"]) if i.dataset == "train:news"]
    rows += dialogues(news, "nb", "fud-train-nb")[:TRAIN_DIALOGUES]
    rows += [json.loads(line) for line in BARE.read_text(encoding="utf-8").splitlines()]
    return write(rows, args.out or OUT)


def write(rows: list[dict], out: Path) -> int:
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = {lang: sum(r["language"] == lang for r in rows) for lang in SOURCES}
    print(f"{len(rows)} dialogues {counts} → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
