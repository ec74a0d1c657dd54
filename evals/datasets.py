"""Eval sets: JSONL files in the shared format (docs: ../shared/docs/eval-format.md) and NorQuAD's
official evaluation files, read through an adapter, as one typed `EvalItem` each.

Dataset specs accepted by `kilde eval run --dataset`:

- a path to a `.jsonl` file in the eval format, e.g. `evals/data/seed.jsonl`
- `standalone:PATH`: the dialogues of a `.jsonl` file asked without their history, each as its
  `standalone_question` (how a person would ask it alone): the baseline a follow-up set is compared to
- `live:PATH`: the dialogues of a `.jsonl` file with Kilde's own answers in their history: each earlier question
  is asked in turn and answered by the system under test, as in the chat, before the follow-up (the files hold
  short gold answers, which quote no passage, so a follow-up is never searched within the article an answer
  quoted: `Assistant.conversation_articles`)
- `norquad:news:validation` / `norquad:news:test`: NorQuAD's official flattened news files, copied to
  `evals/data/norquad/news/`. Their corpus is the annotation files (`corpus/norquad/news/answers_{1,2}.json`),
  which `kilde ingest corpus/` indexes as `news-a{annotator}-d{document_id}`.
- `norquad:wiki:validation` / `norquad:wiki:test`: the same for the Wikipedia passages (`evals/data/norquad/wiki/`,
  articles `wikipedia-a{annotator}-d{document_id}`). No target is set on them and no choice is made on them:
  `make train` scores the files it replaces and its own on the validation split, a check no choice has seen, and
  `make eval` reports the test split.
- `english:PATH`: English versions of NorQuAD train questions (`evals/data/norquad_train_en*.jsonl`, each a
  Norwegian twin's `key` and the English `question`), with the twin's answers and gold passages: the three files
  hold 3,801, against the 135 validation versions (`norquad_news_val_en.jsonl`) a target is set on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from assistant.core.errors import BadInputError
from assistant.core.sentences import sentence_spans
from assistant.core.surrogates import holds_lone_surrogate
from assistant.core.types import Turn

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
NORQUAD_EVAL = DATA / "norquad"
NORQUAD_CORPUS = ROOT / "corpus" / "norquad"
NORQUAD_SPLITS = ("validation", "test")
NORQUAD_DOMAINS = {"news": "news", "wikipedia": "wiki"}  # corpus folder -> evaluation folder
MAX_GOLD_SENTENCE = 300  # longer answer sentences become a window around the answer, as in README.md
GOLD_WINDOW = 200


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    dataset: str  # short name: file stem or the norquad spec
    language: str = "und"
    answerable: bool = True
    answers: tuple[str, ...] = ()
    gold_passages: tuple[str, ...] = ()
    gold_article_ids: tuple[str, ...] = ()
    history: tuple[Turn, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.id}"


STANDALONE = "standalone:"
LIVE = "live:"
ENGLISH = "english:"


def dataset_name(spec: str) -> str:
    if spec.startswith(STANDALONE):
        return f"{dataset_name(spec[len(STANDALONE) :])} (standalone)"
    if spec.startswith(LIVE):
        return f"{dataset_name(spec[len(LIVE) :])} (live)"
    if spec.startswith(ENGLISH):
        return Path(spec[len(ENGLISH) :]).stem
    return spec if spec.startswith("norquad:") else Path(spec).stem


def load_dataset(spec: str, limit: int | None = None) -> list[EvalItem]:
    """Items of one dataset spec (see the module docstring); `limit` keeps the first N."""
    if spec.startswith(STANDALONE):
        items = [as_standalone(item, dataset_name(spec)) for item in load_dataset(spec[len(STANDALONE) :])]
    elif spec.startswith(LIVE):
        items = [as_live(item, dataset_name(spec)) for item in load_dataset(spec[len(LIVE) :])]
    elif spec.startswith("norquad:"):
        items = load_norquad(spec)
    elif spec.startswith(ENGLISH):
        items = load_english_versions(Path(spec[len(ENGLISH) :]))
    else:
        items = load_jsonl(Path(spec))
    return items[:limit] if limit else items


def as_standalone(item: EvalItem, dataset: str) -> EvalItem:
    """The item asked alone: its `standalone_question` (else its question), no history, same id."""
    question = str(item.extra.get("standalone_question") or item.question)
    return replace(item, question=question, history=(), dataset=dataset)


def as_live(item: EvalItem, dataset: str) -> EvalItem:
    """The dialogue with its answers left to the system under test (`replayed_history` in the runner)."""
    return replace(item, dataset=dataset, extra={**item.extra, "live_history": True})


def load_jsonl(path: Path, name: str | None = None) -> list[EvalItem]:
    if not path.is_file():
        raise BadInputError(str(path), "no such eval set; see evals/data/README.md for the shipped ones")
    name = name or path.stem
    items: list[EvalItem] = []
    seen: set[str] = set()
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        item = item_from_object(parsed_line(line, where), name, where)
        if item.id in seen:
            raise BadInputError(where, f"duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    return _some(items, path)


def _some(items: list[EvalItem], path: Path) -> list[EvalItem]:
    """`items`, or an error: a set of no questions made a run whose every figure was "–", and it passed."""
    if not items:
        raise BadInputError(str(path), "holds no questions; an eval set is JSONL, one JSON object a line")
    return items


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a JSONL file. Lines end at "\n" only: str.splitlines() also broke them at U+2028,
    U+2029 and U+0085, which JSON lets stand unescaped in a string. A byte order mark is not part of line 1."""
    return enumerate(_read_text(path).removeprefix("\ufeff").split("\n"), 1)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # a binary file, or another file named by mistake
        raise BadInputError(
            str(path), f"not UTF-8 text (byte {exc.start}); an eval set is JSONL, one JSON object a line"
        ) from None


def parsed_line(line: str, where: str):
    """One line's JSON. A lone surrogate escape ("\\ud800", half of a character) is refused by its line: Python
    reads it, but no answer or items.jsonl can hold it, and the run broke with a traceback once every item had
    been asked."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadInputError(where, f"malformed JSON: {exc.msg}") from None
    if holds_lone_surrogate(obj):
        raise BadInputError(
            where, "holds a lone surrogate escape (such as \\ud800, half of a character), which is not text"
        )
    return obj


def _strings(obj: dict, key: str, where: str) -> tuple[str, ...]:
    """A list-of-strings field of the eval format (absent or null: none). A string was read letter by letter
    ("answers": "Oslo" found the answer wherever an "o" was), a number as its digits."""
    value = obj.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInputError(where, f'{key!r} must be a list of strings, such as ["Oslo"]; got {value!r:.80}')
    return tuple(value)


def item_from_object(obj: dict, dataset: str, where: str) -> EvalItem:
    """An item of the eval format (../shared/docs/eval-format.md), each field of its type or refused by name."""
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("id"), str)
        or not isinstance(obj.get("question"), str)
    ):
        raise BadInputError(where, "each line needs string 'id' and 'question' fields")
    for name in ("id", "question"):
        if not obj[name].strip():  # an empty question failed when asked and left the figures unseen
            raise BadInputError(where, f"'{name}' is empty; each line needs a non-empty 'id' and 'question'")
    answerable = obj.get("answerable", True)
    if not isinstance(answerable, bool):  # "false" was true
        raise BadInputError(where, f"'answerable' must be true or false; got {answerable!r:.80}")
    if not isinstance(obj.get("language", ""), str | None):
        raise BadInputError(where, f"'language' must be a string such as \"nb\"; got {obj['language']!r:.80}")
    answers = _strings(obj, "answers", where)
    passages = _strings(obj, "gold_passages", where)
    if answerable and not (answers or passages):
        raise BadInputError(where, f"answerable item {obj['id']!r} has neither 'answers' nor 'gold_passages'")
    turns = obj.get("history") or []
    if not isinstance(turns, list):
        raise BadInputError(where, "'history' must be a list of {'role': 'user'|'assistant', 'content': str}")
    history = []
    for turn in turns:
        if (
            not isinstance(turn, dict)
            or turn.get("role") not in ("user", "assistant")
            or not isinstance(turn.get("content", ""), str)
        ):
            raise BadInputError(where, "history turns must be {'role': 'user'|'assistant', 'content': str}")
        history.append(Turn(turn["role"], turn.get("content", "")))
    known = {
        "id",
        "question",
        "answerable",
        "answers",
        "gold_passages",
        "gold_article_ids",
        "language",
        "history",
    }
    return EvalItem(
        id=obj["id"],
        question=obj["question"],
        dataset=dataset,
        language=str(obj.get("language") or "und"),
        answerable=answerable,
        answers=answers,
        gold_passages=passages,
        gold_article_ids=_strings(obj, "gold_article_ids", where),
        history=tuple(history),
        extra={k: v for k, v in obj.items() if k not in known},
    )


# -- NorQuAD adapter ---------------------------------------------------------------------------------


def parse_norquad_spec(spec: str) -> tuple[str, str]:
    """(corpus domain, split) of a `norquad:{news,wiki}:{validation,test}` spec."""
    parts = spec.split(":")
    domains = {folder: domain for domain, folder in NORQUAD_DOMAINS.items()}
    if len(parts) != 3 or parts[1] not in domains or parts[2] not in NORQUAD_SPLITS:
        raise BadInputError(
            spec,
            "NorQuAD datasets are norquad:news:validation, norquad:news:test, norquad:wiki:validation "
            "or norquad:wiki:test",
        )
    return domains[parts[1]], parts[2]


@lru_cache(maxsize=4)
def norquad_passage_ids(domain: str = "news", corpus: Path = NORQUAD_CORPUS) -> dict[tuple[str, int], str]:
    """(context, document_id) -> article id, from the annotation files the corpus is ingested from."""
    ids: dict[tuple[str, int], str] = {}
    for annotator in (1, 2):
        path = corpus / domain / f"answers_{annotator}.json"
        if not path.is_file():
            raise BadInputError(
                str(path),
                "NorQuAD annotation file missing; it is the corpus of the NorQuAD "
                "eval sets (shipped in corpus/norquad/)",
            )
        for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
            for paragraph in entry.get("paragraphs", []):
                key = (paragraph["context"], int(paragraph["document_id"]))
                ids.setdefault(key, f"{domain}-a{annotator}-d{paragraph['document_id']}")
    return ids


def question_key(article_id: str, question_id: int | str) -> str:
    """A NorQuAD question's key: its passage's article id and its own id ("news-a1-d629-q2944"), as the English
    versions name their Norwegian twins."""
    return f"{article_id}-q{question_id}"


def norquad_item_id(key: str) -> str:
    """The eval item id of the NorQuAD question with `key` ("nq-news-a1-d629-q2944")."""
    return f"nq-{key}"


def norquad_item(
    article_id: str, qa: dict, context: str, answers: list[dict], dataset: str, extra: dict | None = None
) -> EvalItem:
    """A NorQuAD question as an eval item; its gold passages are the sentences that hold its answers."""
    return EvalItem(
        id=norquad_item_id(question_key(article_id, qa["id"])),
        question=qa["question"],
        dataset=dataset,
        language="nb",
        answers=tuple(dict.fromkeys(a["text"] for a in answers)),
        gold_passages=tuple(
            dict.fromkeys(gold_sentence(context, a["answer_start"], a["answer_end"]) for a in answers)
        ),
        gold_article_ids=(article_id,),
        extra=extra or {},
    )


def gold_sentence(context: str, start: int, end: int) -> str:
    """The sentence holding the answer span (a window around it when that sentence is very long)."""
    for s, e in sentence_spans(context):
        if s <= start < e:
            if e - s <= MAX_GOLD_SENTENCE and end <= e:
                return context[s:e]
            break
    lo = max(0, start - max(0, GOLD_WINDOW - (end - start)) // 2)  # never after the answer's start
    hi = min(len(context), max(end, lo + GOLD_WINDOW))
    return context[lo:hi].strip()


def load_norquad(spec: str, eval_dir: Path = NORQUAD_EVAL, corpus: Path = NORQUAD_CORPUS) -> list[EvalItem]:
    domain, split = parse_norquad_spec(spec)
    folder = NORQUAD_DOMAINS[domain]
    path = eval_dir / folder / f"{split}_dataset_flattened.json"
    if not path.is_file():
        raise BadInputError(
            str(path),
            f"official NorQuAD evaluation file missing (copy it from NorQuAD's data/evaluation/{folder}/)",
        )
    ids = norquad_passage_ids(domain, corpus)
    items: list[EvalItem] = []
    for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
        for paragraph in entry["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                answers = qa["answers"]
                document_id = int(answers[0]["document_id"])
                article_id = ids.get((context, document_id))
                if article_id is None:
                    raise BadInputError(
                        f"{path} question {qa['id']}",
                        "its context is not in the annotation files, so no indexed article holds it",
                    )
                items.append(
                    norquad_item(article_id, qa, context, answers, spec, {"norquad_question_id": qa["id"]})
                )
    return items


def load_english_versions(path: Path) -> list[EvalItem]:
    """The English versions of NorQuAD train questions in `path` (`english:PATH`), each as its Norwegian twin
    with the English question; a key that names no train question is an error, a validation or test one
    included."""
    if not path.is_file():
        raise BadInputError(str(path), "no such file of English train questions; see evals/data/README.md")
    keys = split_keys()
    twins = {item.id: item for item in train_items(keys["validation"] | keys["test"])}
    items: list[EvalItem] = []
    for lineno, line in _lines(path):
        if not line.strip():  # skipped, as in every other eval set
            continue
        where = f"{path}:{lineno}"
        row = parsed_line(line, where)
        needs = "each line needs a 'key' and a non-empty 'question'"
        if not isinstance(row, dict):
            raise BadInputError(where, f"not a JSON object; {needs}")
        for name in ("key", "question"):
            if row.get(name) is None:  # a missing key was "None is not a NorQuAD train question"
                raise BadInputError(where, f"'{name}' is missing; {needs}")
        if not str(row["question"]).strip():
            raise BadInputError(where, f"'question' is empty; {needs}")
        twin = twins.get(norquad_item_id(str(row["key"])))
        if twin is None:
            raise BadInputError(where, f"{row['key']!r:.80} is not a NorQuAD train question")
        items.append(
            replace(twin, id=f"{twin.id}-en", question=row["question"], language="en", dataset=path.stem)
        )
    return _some(items, path)


def load_datasets(specs: list[str], limit: int | None = None) -> list[EvalItem]:
    """The items of every spec. Two specs of one dataset name are refused: a set named twice was asked and
    counted twice, and two files of one name (a/val.jsonl, b/val.jsonl) were scored as one set, their questions of
    one id taken for each other when runs were compared."""
    named: dict[str, str] = {}
    for spec in specs:
        name = dataset_name(spec)
        if name in named:
            raise BadInputError(
                spec,
                f"--dataset {named[name]} is named {name!r} too, and a run scores each set by its name; "
                + ("give each set once" if named[name] == spec else "rename one of the files"),
            )
        named[name] = spec
    items: list[EvalItem] = []
    for spec in specs:
        items.extend(load_dataset(spec, limit))
    return items


def split_keys() -> dict[str, set[tuple[str, int]]]:
    """(article id, NorQuAD question id) of every official validation and test question, both domains."""
    keys: dict[str, set[tuple[str, int]]] = {"validation": set(), "test": set()}
    for domain, folder in NORQUAD_DOMAINS.items():
        ids = norquad_passage_ids(domain, NORQUAD_CORPUS)
        for split, found in keys.items():
            path = NORQUAD_EVAL / folder / f"{split}_dataset_flattened.json"
            for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
                for paragraph in entry["paragraphs"]:
                    for qa in paragraph["qas"]:
                        document = int(qa["answers"][0]["document_id"])
                        found.add((ids[(paragraph["context"], document)], int(qa["id"])))
    return keys


def train_items(held_out: set[tuple[str, int]]) -> list[EvalItem]:
    """NorQuAD annotation questions not in an official evaluation split, as eval items (gold passage: the
    sentence that holds the answer, as for the evaluation splits)."""
    return [
        norquad_item(article, qa, context, answers, f"train:{domain}")
        for domain, article, context, qa, answers in annotation_questions(held_out)
    ]


def annotation_questions(held_out: set[tuple[str, int]]) -> Iterator[tuple[str, str, str, dict, list[dict]]]:
    """(domain, article id, passage, question, its non-empty answers) of every NorQuAD annotation question
    with an answer and not in `held_out`, both domains, in file order."""
    for domain in NORQUAD_DOMAINS:
        for annotator in (1, 2):
            path = NORQUAD_CORPUS / domain / f"answers_{annotator}.json"
            for entry in json.loads(path.read_text(encoding="utf-8"))["data"]:
                for paragraph in entry["paragraphs"]:
                    article = f"{domain}-a{annotator}-d{paragraph['document_id']}"
                    for qa in paragraph["qas"]:
                        answers = [a for a in qa.get("answers", []) if a.get("text")]
                        if answers and (article, int(qa["id"])) not in held_out:
                            yield domain, article, paragraph["context"], qa, answers
