"""The sentence picker: a LightGBM model scores each sentence of the top passages for holding the answer; the
extractive answer quotes the best one, and the next best when it scores almost as well (from the same passage, where
validation chose that: `second_same_passage` in `models.json`). Web-page furniture
(`furniture.is_furniture`) and a table's cells (`furniture.in_table`) are never quoted, nor, for an English
question, an English aside in a Norwegian article where anything else can be (`is_english_aside`).

Model file `assistant/models/picker.txt` (card: `picker.md`), rebuilt by `python -m evals.train`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from assistant.answering import rerank
from assistant.answering.answers import quoted_before
from assistant.answering.features import (
    PICKER_FEATURES,
    SentenceLookup,
    SentenceSpan,
    make_query,
    picker_features,
)
from assistant.answering.furniture import unquotable
from assistant.answering.rerank import (
    MODELS,
    LightGBMModel,
    english_file,
    load_meta,
    recorded,
    recorded_sha256,
)
from assistant.core.language import detect_language, language_group
from assistant.core.links import carries_links
from assistant.core.sentences import sentence_spans
from assistant.core.types import Hit

PICKER_MODEL = MODELS / "picker.txt"
MIN_CHARS = 15


class SentencePicker:
    passages = 3  # sentences are taken from this many of the top passages

    def __init__(
        self,
        model: LightGBMModel,
        second_margin: float,
        translator=None,
        document_frequency: Callable | None = None,
        languages: Sequence[str] = ("nb", "nn", "en"),
        sentences: SentenceLookup | None = None,
        second_same_passage: bool = False,
        english: SentencePicker | None = None,
    ):
        self.model = model
        self.english = english  # English questions' own picker (None: this one chooses for them too)
        self.second_margin = second_margin
        self.second_same_passage = second_same_passage
        self.languages = tuple(
            languages
        )  # question languages it chooses for (models.json); the rule does the rest
        self.translator = translator
        self.document_frequency = document_frequency
        self.sentences = sentences  # the index's stored sentence vectors

    @classmethod
    def load(
        cls,
        path: Path = PICKER_MODEL,
        document_frequency: Callable | None = None,
        sentences: SentenceLookup | None = None,
    ) -> SentencePicker | None:
        """The shipped picker, or None when its file is missing (the heuristic picks then)."""
        from assistant.answering.translate import default_translator

        if not path.is_file():
            return None
        every = load_meta()

        def picker(
            file: Path, meta: dict, where: str, english: SentencePicker | None = None
        ) -> SentencePicker:
            return cls(
                LightGBMModel(file, PICKER_FEATURES, recorded_sha256(meta, file), rerank.MODELS_META),
                float(recorded(meta, where, "second_margin", 0.0)),
                default_translator(learned=True),
                document_frequency,
                recorded(meta, where, "languages", ["nb", "nn", "en"]),
                sentences,
                recorded(meta, where, "second_same_passage", False),
                english,
            )

        english = english_file(every, "picker", path.parent)
        own = picker(english, every["english"]["picker"], "english.picker") if english else None
        return picker(path, every.get("picker", {}), "picker", own)

    def _for(self, language: str | None) -> SentencePicker:
        return self.english if self.english is not None and language_group(language or "") == "en" else self

    def applies_to(self, language: str | None) -> bool:
        return (language or "und") in self._for(language).languages

    @staticmethod
    def spans(hits: Sequence[Hit]) -> list[SentenceSpan]:
        """Quotable sentences of the given passages: long enough, no links, no furniture or table cells; offsets in
        the chunk."""
        out = []
        for index, hit in enumerate(hits):
            text = hit.chunk.text
            own = [hit.article.url] if hit.article.url else []
            for start, end in sentence_spans(text):
                sentence = text[start:end]
                if (
                    end - start >= MIN_CHARS
                    and not carries_links(sentence, own)
                    and not unquotable(text, start, end)
                ):
                    out.append(SentenceSpan(index, start, end, sentence))
        return out

    def scored(
        self,
        question: str,
        hits: Sequence[Hit],
        language: str,
        vector: np.ndarray | None = None,
        passages: int | None = None,
    ) -> tuple[list[SentenceSpan], np.ndarray]:
        """Every quotable sentence of the top `passages` of `hits` (None: the picker's `passages`) with its score
        for holding the answer, by the question language's picker. `vector`: the question's embedding."""
        from assistant.answering.translate import search_translation

        if self._for(language) is not self:
            return self.english.scored(question, hits, language, vector, passages)
        top = tuple(hits[: passages or self.passages])
        spans = self.spans(top)
        if not spans:
            return [], np.zeros(0)
        translation = search_translation(self.translator, question, language, self.document_frequency)
        query = make_query(question, language, translation, self.document_frequency, vector)
        return spans, self.model.predict(np.round(picker_features(query, top, spans, self.sentences), 6))

    def choose(
        self,
        question: str,
        hits: Sequence[Hit],
        language: str,
        vector: np.ndarray | None = None,
        avoid: str = "",
        holds: Callable[[str], bool] | None = None,
        passages: int | None = None,
    ) -> list[tuple[SentenceSpan, float]]:
        """One or two sentences, best first, each with its score. `vector`: the question's embedding. `avoid`:
        text whose sentences are not quoted (a follow-up's earlier answers); they are left out before the
        choice, so the best of the others is quoted, and are still scored with the rest (the features compare
        a sentence with the others of its passages). `holds`: whether a sentence may be quoted at all (what a bare
        follow-up asks for: `bare.py`); `passages`: how many of the top passages to choose from (None: `passages`)."""
        if self._for(language) is not self:
            return self.english.choose(question, hits, language, vector, avoid, holds, passages)
        top = tuple(hits[: passages or self.passages])
        spans, scores = self.scored(question, top, language, vector, passages=len(top))
        if not spans:
            return []
        quotable = [
            i
            for i, span in enumerate(spans)
            if not quoted_before(span.text, avoid) and (holds is None or holds(span.text))
        ]
        if language_group(language) == "en":
            quotable = [i for i in quotable if not is_english_aside(spans[i], top)] or quotable
        chosen = pick(
            scores[quotable], [spans[i] for i in quotable], self.second_margin, self.second_same_passage
        )
        return [(spans[quotable[i]], float(scores[quotable[i]])) for i in chosen]


def is_english_aside(span: SentenceSpan, hits: Sequence[Hit]) -> bool:
    """An English sentence in an article in another language: a quoted tweet or remark, a wire photo's caption
    ("British Prime Minister Theresa May delivers a speech …"), a reference's text. It shares an English
    question's own words, which a Norwegian sentence holds only in translation, and the picker learned from
    Norwegian questions alone, so it scores such asides high where they do not answer: an English question quotes
    one only when nothing else is quotable (docs/evals.md)."""
    return hits[span.hit_index].article.language != "en" and detect_language(span.text) == "en"


def pick(
    scores: np.ndarray, spans: Sequence[SentenceSpan], second_margin: float, same_passage: bool = False
) -> list[int]:
    """The best sentence, and the next best when it scores within `second_margin` of it and is not the same
    sentence again (overlapping chunks repeat sentences). `same_passage`: the second must come from the best
    sentence's passage, so that an answer never adds a second, less likely passage to a good one."""
    if not len(scores):
        return []
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], spans[i].hit_index, spans[i].start))
    best = spans[order[0]]
    for i in order[1:]:
        if scores[i] < scores[order[0]] - second_margin:
            break
        if spans[i].text != best.text and (not same_passage or spans[i].hit_index == best.hit_index):
            return [order[0], i]
    return [order[0]]
