"""`python -m evals.mine_translations`: English -> Norwegian words learned from the English versions of the NorQuAD
train questions and their Norwegian twins, for the sentence picker's reading of an English question.

FreeDict lists a word's senses in no order that suits news: "died" finds "die" (a stamp: "sokkel", "stempel"),
"killed" a "drap" before "drepe". The 3,801 English train questions (`evals/data/norquad_train_en*.jsonl`, each
beside the Norwegian question it was written from; none is a validation or test question) say how a news question's
English words are written in Norwegian: IBM Model 1 (expectation-maximisation of the probability of each Norwegian
word given each English stem, with an empty word for words with no counterpart) learns "died": "døde", "signed":
"signert", "killed": "drept", "drepte". An English stem is kept when at least `MIN_QUESTIONS` questions use it, it is
no question word, and its likeliest Norwegian word has a probability of at least `MIN_BEST`; it is written with its
Norwegian words of probability `MIN_KEPT` or more, two at most, likeliest first. The thresholds were set once, not
tuned; the use (the picker's translation alone) was chosen on validation (docs/evals.md).

Deterministic: a rerun writes the same file. Writes `assistant/data/norquad-eng-nor.tsv` (or `--out`)."""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from assistant.answering.translate import LEARNED

DATA = Path(__file__).resolve().parent / "data"
ENGLISH_TRAIN_FILES = ("norquad_train_en.jsonl", "norquad_train_en_2.jsonl", "norquad_train_en_wiki.jsonl")
ITERATIONS = 15
MIN_QUESTIONS = 3
MIN_BEST = 0.5
MIN_KEPT = 0.3
MAX_KEPT = 2
# Question words and the words of "how many / how long / how old": their Norwegian depends on the whole question.
QUESTION_WORDS = frozenset(
    (  # noqa: SIM905 (a word list reads better as one string)
        "what who whom whose which where when why how is are was were do does did can could will would should has "
        "have had many much long old"
    ).split()
)
NULL = ""
COMMAND = "python -m evals.mine_translations"
_WORD = re.compile(r"[^\W\d_]+")

Pair = tuple[list[str], list[str]]


def question_pairs(files: Iterable[Path]) -> tuple[list[Pair], dict[str, Counter]]:
    """Each English train question's stems (stopwords left out) beside its Norwegian twin's words (lower-cased,
    stopwords left out), and how each English stem is written."""
    from assistant.indexes.lexical import stemmer, stopwords

    stem = stemmer("en").stemWord
    english_stop, norwegian_stop = stopwords("en"), stopwords("nb")
    pairs: list[Pair] = []
    written: dict[str, Counter] = defaultdict(Counter)
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            english = [
                w for w in _WORD.findall(row["question"].lower()) if w not in english_stop and len(w) > 1
            ]
            for word in english:
                written[stem(word)][word] += 1
            norwegian = [
                w for w in _WORD.findall(row["question_nb"].lower()) if w not in norwegian_stop and len(w) > 1
            ]
            pairs.append(([stem(w) for w in english], norwegian))
    return pairs, written


def model_one(pairs: Sequence[Pair], iterations: int = ITERATIONS) -> dict[tuple[str, str], float]:
    """IBM Model 1: the probability of each Norwegian word given each English stem (or `NULL`), learned by
    expectation-maximisation from a uniform start. Sums run in a fixed order, so a rerun gives the same numbers."""
    probability: dict[tuple[str, str], float] = defaultdict(lambda: 1.0)
    for _ in range(iterations):
        counts: dict[tuple[str, str], float] = defaultdict(float)
        totals: dict[str, float] = defaultdict(float)
        for english, norwegian in pairs:
            sources = [*english, NULL]
            for word in norwegian:
                norm = sum(probability[(source, word)] for source in sources)
                for source in sources:
                    share = probability[(source, word)] / norm
                    counts[(source, word)] += share
                    totals[source] += share
        probability = defaultdict(float, {key: c / totals[key[0]] for key, c in counts.items()})
    return dict(probability)


def learned_translations(pairs: Sequence[Pair], written: dict[str, Counter]) -> list[tuple[str, list[str]]]:
    """(English word, its Norwegian words) for each stem kept (module docstring), the word as the questions write
    it most often, in alphabetical order."""
    from assistant.indexes.lexical import stemmer

    stem = stemmer("en").stemWord
    asked_by = Counter(s for english, _ in pairs for s in set(english))
    question_stems = {stem(w) for w in QUESTION_WORDS}
    by_stem: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for (source, word), p in model_one(pairs).items():
        if source != NULL:
            by_stem[source].append((p, word))
    rows = []
    for source in sorted(by_stem):
        if asked_by[source] < MIN_QUESTIONS or source in question_stems:
            continue
        ranked = sorted(by_stem[source], key=lambda pw: (-pw[0], pw[1]))
        if ranked[0][0] < MIN_BEST:
            continue
        kept = [word for p, word in ranked if p >= MIN_KEPT][:MAX_KEPT]
        headword = min(written[source].items(), key=lambda wc: (-wc[1], wc[0]))[0]
        rows.append((headword, kept))
    return sorted(rows)


def write(rows: Sequence[tuple[str, list[str]]], out: Path, questions: int) -> None:
    header = (
        f"# English -> Norwegian (Bokmål) words learned by `{COMMAND}` (IBM Model 1, {ITERATIONS} iterations) from "
        f"the {questions} English versions of the NorQuAD train questions and their Norwegian twins "
        f"({', '.join(f'evals/data/{n}' for n in ENGLISH_TRAIN_FILES)}; NorQuAD CC0-1.0, the English versions "
        f"written for Kilde, MIT): an English word of at least {MIN_QUESTIONS} questions whose likeliest Norwegian "
        f"word has a probability of {MIN_BEST} or more, with its words of {MIN_KEPT} or more, likeliest first; "
        "headword, then its translations, tab-separated"
    )
    lines = [header, *("\t".join([word, *translations]) for word, translations in rows)]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description=__doc__.split("\n\n")[0],
        epilog=f"example:\n  {COMMAND}\n  {COMMAND} --out /tmp/learned.tsv",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=LEARNED, help=f"where to write (default {LEARNED.name})")
    args = parser.parse_args(argv)
    pairs, written = question_pairs(DATA / name for name in ENGLISH_TRAIN_FILES)
    rows = learned_translations(pairs, written)
    write(rows, args.out, len(pairs))
    print(f"{len(rows)} English words from {len(pairs)} question pairs -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
