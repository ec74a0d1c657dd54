"""Sentence support: does the passage a sentence cites actually say what the sentence says?

A sentence is scored against each passage it cites with a small logistic model over five signals:

* `dense`: cosine similarity (multilingual embedder) between the sentence and the passage's
  best-matching sentence, or pair of adjacent sentences, so an English sentence can be checked
  against a Norwegian source;
* `lexical`: the share of the sentence's content words (stemmed both ways) found in the passage;
* `numbers`: the share of the sentence's numbers (digits, thousands separators and decimal commas
  normalised) missing from the passage;
* `names`: the share of the sentence's names missing from the passage (a small Norwegian/English
  map of place names, prefix matching for inflected forms);
* `negation`: a negation word in the sentence with none in the passage, or the other way round.

The weights and the threshold are fitted by `python -m evals.support_eval` on
`evals/data/support_pairs.jsonl` and stored in `assistant/models/calibration.json`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from itertools import pairwise
from typing import Protocol

import numpy as np

from assistant.core.sentences import sentence_spans
from assistant.core.types import Citation, Hit, Sentence
from assistant.indexes.lexical import analyse_query

FEATURES = ("dense", "lexical", "numbers", "names", "negation")

# Fallback weights (bias first, then FEATURES); `evals.support_eval` writes fitted ones.
DEFAULT_WEIGHTS = (-12.0, 14.0, 2.0, -4.0, -2.0, -2.0)

_NUMBER = re.compile(r"\d+(?:[ \u00a0.,]\d{3})*(?:[.,]\d+)?")
_NUMBER_WORDS = {
    # Only words that cannot be anything else: "en", "to", "one" are left out on purpose.
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "twenty": "20",
    "hundred": "100",
    "tre": "3",
    "fire": "4",
    "fem": "5",
    "seks": "6",
    "sju": "7",
    "syv": "7",
    "åtte": "8",
    "ni": "9",
    "ti": "10",
    "elleve": "11",
    "tolv": "12",
    "tjue": "20",
    "hundre": "100",
}
# A passage is read generously: "to elbiler" may well be the "two electric cars" of a translation.
_PASSAGE_NUMBER_WORDS = _NUMBER_WORDS | {"one": "1", "en": "1", "ett": "1", "éin": "1", "to": "2"}
_NAME = re.compile(r"\b[A-ZÆØÅÄÖÜ][\w]*(?:-[\w]+)*", re.UNICODE)
# English -> the Norwegian forms of names and name words that change across the two languages, any of which
# counts as the name mentioned. The later part: the name words of the English NorQuAD train questions that missed
# their own article in at least two of them (evals/data/norquad_train_en*.jsonl; "Nobel Peace Prize": "fredspris",
# "the Ministry of Justice": "Justisdepartementet"), each written as its Norwegian twin question writes it.
_NAME_MAP = {
    name: tuple(forms.split())
    for name, forms in {
        "north": "nord",
        "south": "sør",
        "china": "kina",
        "chinese": "kina",
        "russia": "russland",
        "russian": "russ",
        "norway": "norge",
        "norwegian": "norsk",
        "norwegians": "nordm",
        "un": "fn",
        "moscow": "moskva",
        "ukraine": "ukraina",
        "sweden": "sverige",
        "swedish": "svensk",
        "denmark": "danmark",
        "germany": "tyskland",
        "finland": "finland",
        "finnish": "finsk",
        "soviet": "sovjet",
        "europe": "europa",
        "european": "europ eu",
        "america": "amerika",
        "us": "usa",
        "japan": "japan",
        "madagascar": "madagaskar",
        "iceland": "island",
        "greenland": "grønland",
        "parliament": "storting",
        "conservative": "høyre konservativ",
        "labour": "arbeid",
        "article": "artikkel",
        "charter": "pakt",
        "secretary": "sekretær",
        "arctic": "arktis",
        "northern": "nord",
        "ireland": "irland",
        "january": "januar",
        "february": "februar",
        "march": "mars",
        "may": "mai",
        "june": "juni",
        "july": "juli",
        "october": "oktober",
        "december": "desember",
        "monday": "mandag",
        "tuesday": "tirsdag",
        "wednesday": "onsdag",
        "thursday": "torsdag",
        "friday": "fredag",
        "saturday": "lørdag",
        "sunday": "søndag",
        "christma": "jul",
        "easter": "påske",
        # from the English train questions, as their Norwegian twins write them
        "great": "stor",
        "britain": "britannia",
        "briton": "brit",
        "uk": "britannia",
        "kingdom": "britannia kongerike",
        "united": "usa forente britannia fn",
        "english": "engelsk england",
        "anglo": "brit engelsk",
        "fortres": "festning",
        "middle": "midt",
        "eastern": "øst",
        "western": "vest",
        "nordic": "nord",
        "cleopatra": "kleopatra",
        "bight": "bukt",
        "prize": "pris",
        "army": "arme hær",
        "insurance": "trygd forsikring",
        "rouge": "røde",
        "intelligence": "etterretning",
        "ceo": "sjef direktør leder",
        "solar": "sol",
        "bc": "kr",
        "sea": "havet hav sjø",
        "island": "øyene øy",
        "faroe": "færø",
        "jews": "jød",
        "jewish": "jød",
        "golden": "gull",
        "liberation": "frigjør",
        "ministry": "departement",
        "inspection": "tilsyn",
        "authority": "tilsyn myndighet",
        "code": "loven lov",
        "trade": "nærings handel",
        "olympic": "ol olymp",
        "progres": "fremskritt frp",
        "wall": "mur",
        "house": "huset hus",
        "common": "underhus",
        "eea": "eøs",
        "gdr": "ddr",
        "square": "plass",
        "duches": "hertug",
        "duchy": "hertug",
        "manu": "manchester",
        "congres": "kongress",
        "democratic": "demokrat",
        "socialist": "sosialist",
        "saxon": "saks",
        "cnut": "knut",
        "witnesse": "vitne",
        "controversy": "strid",
        "kievan": "kiev",
        "renaissance": "renessanse",
    }.items()
}
# Capitalised in English titles, but not names: they carry no identity to check.
_TITLE_WORDS = {
    "world",
    "championship",
    "cup",
    "ski",
    "institute",
    "policy",
    "studie",
    "airport",
    "hotel",
    "university",
    "party",
    "union",
    "minister",
    "president",
    "general",
    "council",
    "court",
    "city",
    "centre",
    "center",
    "bank",
    "service",
    "association",
    "federal",
    "reserve",
    "national",
    "international",
    "opposition",
    "leader",
    "mayor",
    "prime",
    "state",
    "department",
    "company",
    "committee",
    "agency",
    "news",
    "tv",
    "affair",
}
_NEGATIONS = {
    "not",
    "no",
    "never",
    "none",
    "without",
    "nor",
    "ikke",
    "aldri",
    "ingen",
    "intet",
    "uten",
    "verken",
    "ikkje",
    "inga",
    "n't",
}
_WORD = re.compile(r"[\w']+", re.UNICODE)


class Vectors(Protocol):
    def get(self, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Support:
    score: float  # in [0, 1]; higher means better supported
    supported: bool
    passage: int  # index (into the passages given) of the best-supporting passage
    start: int  # offsets of the best-matching span inside that passage's text
    end: int
    features: tuple[float, ...] = ()


def numbers(text: str) -> set[str]:
    out = set()
    for match in _NUMBER.finditer(text):
        raw = match.group()
        parts = re.split(r"[ \u00a0.,]", raw)
        if len(parts) > 1 and all(len(p) == 3 for p in parts[1:]):
            out.add("".join(parts))  # 6,400 / 6 400 / 6.400: thousands
        else:
            out.add(raw.replace(",", "."))  # 1,9 -> 1.9
    return out


def _word_numbers(text: str, words: dict[str, str] = _NUMBER_WORDS) -> set[str]:
    return {words[w] for w in _WORD.findall(text.lower()) if w in words}


_FIRST_LETTER = re.compile(r"[^\W\d_]")


def names(text: str) -> list[str]:
    """Capitalised words that are not the first word of a sentence, and acronyms anywhere. The first word is the
    first one after whatever opens the sentence (an emoji, a quotation mark, a dash)."""
    out = []
    for start, end in sentence_spans(text):
        first = _FIRST_LETTER.search(text, start, end)
        for i, match in enumerate(_NAME.finditer(text, start, end)):
            word = match.group()
            if i == 0 and first is not None and match.start() == first.start() and not word.isupper():
                continue
            for part in word.split("-"):
                part = re.sub(r"(?<=[A-ZÆØÅ]{2})s$", "", part)  # genitive of an acronym: ILs -> IL
                if len(part) >= 2 and part[0].isupper():
                    out.append(re.sub(r"(?:'s|s)$", "", part.lower()) if len(part) > 4 else part.lower())
    return out


def _name_found(name: str, passage_words: set[str], passage_lower: str) -> bool:
    if name in _TITLE_WORDS or name in passage_words:
        return True
    for target in (*_NAME_MAP.get(name, ()), name):
        if target in passage_words:
            return True
        stem = target[: max(4, min(len(target), 5))] if len(target) >= 4 else target
        if any(w.startswith(stem) for w in passage_words) or (len(target) >= 4 and target in passage_lower):
            return True
    # Transliterations differ by a letter or two: Alexei/Aleksej, Navalny/Navalnyj.
    plain = _translit(name)
    return len(name) >= 5 and any(
        w[:1] == name[:1] and SequenceMatcher(None, plain, _translit(w)).ratio() >= 0.8 for w in passage_words
    )


def missing_terms(
    question: str, passages: Sequence[str], translate: Callable[[str], str] | None = None
) -> list[str]:
    """Names and numbers the question asks about that none of the passages mention. A question about
    Gardermoen in 2019 is not answered by passages about Rygge, however close their embeddings are.
    `translate`: for a question in another language than the passages (English over Norwegian), the words a
    name is written as there ("Poland": "polen"); a name counts as mentioned when it or one of them is."""
    text = "\n".join(passages)
    lowered = text.lower()
    words = set(_WORD.findall(lowered))
    missing = [
        name
        for name in dict.fromkeys(names(question))
        if not _name_found(name, words, lowered)
        and not (translate and any(_name_found(w, words, lowered) for w in translate(name).split()))
    ]
    found_numbers = numbers(text) | _word_numbers(text, _PASSAGE_NUMBER_WORDS)
    missing += [n for n in sorted(numbers(question)) if n not in found_numbers]
    return missing


def _translit(word: str) -> str:
    return word.replace("x", "ks").replace("j", "i").replace("y", "i").replace("w", "v")


def _negated(text: str) -> bool:
    lowered = text.lower()
    return any(w in _NEGATIONS for w in _WORD.findall(lowered)) or "n't" in lowered or "ikke-" in lowered


def passage_windows(passage: str, pairs: bool = True) -> list[tuple[int, int]]:
    """Candidate evidence spans: each sentence, and each pair of adjacent sentences."""
    spans = sentence_spans(passage) or [(0, len(passage))]
    windows = list(spans)
    if not pairs:
        return windows
    windows += [(a[0], b[1]) for a, b in pairwise(spans)]
    return windows


class SupportChecker:
    """Built once by the composition root with the calibrated threshold and weights (`Settings`)."""

    def __init__(self, vectors: Vectors, threshold: float = 0.5, weights: Sequence[float] | None = None):
        if weights is not None and len(weights) != len(FEATURES) + 1:
            weights = None  # a calibration file from another feature set: use the defaults
        self.vectors = vectors
        self.weights = np.asarray(weights if weights is not None else DEFAULT_WEIGHTS, dtype=np.float64)
        self.threshold = threshold

    # -- features ------------------------------------------------------------------------------

    def features(self, sentence: str, passage: str, pairs: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
        found = passage.find(sentence)
        if found >= 0 and not pairs:
            # A verbatim quote is its own best-matching window (cosine 1), so nothing needs embedding.
            span = (found, found + len(sentence))
            return self.lexical_features(sentence, passage, 1.0, sentence), span
        windows = passage_windows(passage, pairs)
        texts = [sentence] + [passage[s:e] for s, e in windows]
        vecs = self.vectors.get(texts)
        sims = vecs[1:] @ vecs[0]
        best = int(np.argmax(sims))
        start, end = windows[best]
        return self.lexical_features(sentence, passage, float(sims[best]), passage[start:end]), windows[best]

    @staticmethod
    def lexical_features(
        sentence: str, passage: str, dense: float, evidence: str | None = None
    ) -> np.ndarray:
        """Numbers and names may come from anywhere in the passage; negation is judged against the
        best-matching `evidence` span (a long passage nearly always contains some negation)."""
        s_terms = set(analyse_query(sentence))
        p_terms = set(analyse_query(passage))
        lexical = len(s_terms & p_terms) / max(len(s_terms), 1)

        s_numbers = numbers(sentence) | _word_numbers(sentence)
        p_numbers = numbers(passage) | _word_numbers(passage, _PASSAGE_NUMBER_WORDS)
        missing_numbers = len(s_numbers - p_numbers) / len(s_numbers) if s_numbers else 0.0

        s_names = names(sentence)
        p_lower = passage.lower()
        p_words = set(_WORD.findall(p_lower)) | {w.rstrip("s") for w in _WORD.findall(p_lower)}
        p_words |= {part for w in re.findall(r"[\w-]+", p_lower) for part in w.split("-")}
        missing_names = (
            sum(not _name_found(n, p_words, p_lower) for n in s_names) / len(s_names) if s_names else 0.0
        )

        negation = float(_negated(sentence) != _negated(evidence if evidence is not None else passage))
        return np.array([dense, lexical, missing_numbers, missing_names, negation], dtype=np.float64)

    def probability(self, features: np.ndarray) -> float:
        z = float(self.weights[0] + self.weights[1:] @ features)
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    # -- scoring -------------------------------------------------------------------------------

    def check(self, sentence: str, passages: Sequence[str], pairs: bool = True) -> Support:
        """Score a sentence against the passages it cites; the best-supporting passage counts.
        `pairs=False` compares with single sentences only (enough for a verbatim quote, and cached)."""
        if not passages:
            return Support(0.0, False, -1, 0, 0)
        best: Support | None = None
        for index, passage in enumerate(passages):
            feats, (start, end) = self.features(sentence, passage, pairs)
            score = self.probability(feats)
            if best is None or score > best.score:
                best = Support(
                    round(score, 4),
                    score >= self.threshold,
                    index,
                    start,
                    end,
                    tuple(round(float(f), 4) for f in feats),
                )
        assert best is not None
        return best


def check_quotes(
    checker: SupportChecker, sentences: Sequence[Sentence], citations: Sequence[Citation], hits: Sequence[Hit]
) -> tuple[Sentence, ...]:
    """The extractive answer's sentences with the support check's real score. They are verbatim
    quotes, so only single passage sentences (already embedded and cached) are compared."""
    chunk_text = {h.chunk.id: h.chunk.text for h in hits}
    by_number = {c.n: chunk_text.get(c.chunk_id, c.quote) for c in citations}
    out = []
    for s in sentences:
        passages = [by_number[n] for n in s.citations if n in by_number]
        result = checker.check(s.text, passages, pairs=False)
        out.append(replace(s, supported=result.supported, support_score=result.score))
    return tuple(out)
