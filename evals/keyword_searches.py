"""`python -m evals.keyword_searches`: which questions of NorQuAD (train, validation, test) and of `evals/data/` a
keyword search's dictionary translation changes (`translate.search_translation`: a question of at most three words
read as Norwegian, with words no passage of the index uses that the dictionary knows).

None, on the eval index, means the rule leaves the reranker's and the picker's training pools and every eval
figure as they were; the command exits 1 when a training question is changed (its pool would be, so the models
would have to be trained again).

    python -m evals.keyword_searches --data-dir build/eval-index
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from evals.datasets import DATA, load_dataset

TRAIN = "norquad:train (annotation questions in no official split)"
# what `make train` and `make train-reader` learn from: a change here would change the models
TRAINING_SETS = {
    TRAIN,
    "norquad_train_en.jsonl",
    "norquad_train_en_2.jsonl",
    "norquad_train_en_wiki.jsonl",
    "norquad_train_unanswerable.jsonl",
}


def changed_questions(
    sets: dict[str, list[str]], translate: Callable[[str, str], str], detect: Callable[[str], str]
) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """(keyword searches per set, [(set, question, translation)] for those the rule translates)."""
    from assistant.answering.translate import is_keyword_search
    from assistant.core.language import language_group

    short: dict[str, int] = {}
    changed = []
    for name, questions in sets.items():
        few = [q for q in questions if is_keyword_search(q)]
        short[name] = len(few)
        for question in few:
            language = detect(question)
            translation = translate(question, language)
            if translation and language_group(language) != "en":
                changed.append((name, question, translation))
    return short, changed


def questions_in(path: Path) -> list[str]:
    """Every line's `question` of a JSON-lines file, an eval set or not (the reader's training questions)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            question = json.loads(line).get("question")
            if isinstance(question, str):
                out.append(question)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="the eval index (`make eval` builds it)")
    args = parser.parse_args(argv)

    from assistant.answering.translate import KEYWORD_SEARCH_WORDS, default_translator, search_translation
    from assistant.core.config import resolve_settings
    from assistant.core.language import detect_language
    from assistant.indexes.lexical import LexicalIndex
    from evals.datasets import split_keys
    from evals.train import train_items

    lexical = LexicalIndex.load(resolve_settings({"data_dir": args.data_dir}).lexical_root)
    if lexical is None:
        parser.error(f"{args.data_dir}: no BM25 index there (build it with `make eval` or `kilde ingest`)")
    keys = split_keys()
    sets = {TRAIN: [item.question for item in train_items(keys["validation"] | keys["test"])]}
    for spec in ("norquad:news:validation", "norquad:news:test"):
        sets[spec] = [item.question for item in load_dataset(spec)]
    for path in sorted(DATA.glob("*.jsonl")):
        sets[path.name] = questions_in(path)
    translator = default_translator()

    def translate(question: str, language: str) -> str:
        return search_translation(translator, question, language, lexical.document_frequency)

    short, changed = changed_questions(sets, translate, detect_language)
    total = sum(len(items) for items in sets.values())
    print(
        f"{total} questions in {len(sets)} sets; {sum(short.values())} of at most {KEYWORD_SEARCH_WORDS} words"
    )
    for name, count in short.items():
        print(f"  {name}: {count} short")
    print(f"changed by the keyword-search translation: {len(changed)}")
    for name, question, translation in changed:
        print(f"  {name}: {question!r} + {translation!r}")
    return 1 if any(name in TRAINING_SETS for name, _, _ in changed) else 0


if __name__ == "__main__":
    sys.exit(main())
