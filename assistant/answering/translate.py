"""Word-by-word English -> Norwegian translation of a question's terms, for the BM25 side of an English question
over Norwegian articles (where only names and numbers would match otherwise), and of the words a keyword search
read as Norwegian holds that the archive never uses ("Article 4").

The word list is FreeDict's English–Norwegian dictionary (CC BY-SA 3.0), converted by
`scripts/freedict_convert.py` into `assistant/data/freedict-eng-nor.tsv` (licence beside it), and Kilde's own
supplement of words FreeDict lacks (`assistant/data/kilde-eng-nor.tsv`: "treaty", "fear", "won"). Words are
looked up by their English Snowball stem, so "killed" finds "kill"; so are the dictionary's phrases of two or
three words, whose translation is added to their words' ("prime ministers": "statsminister" beside "prim
minister").

Words learned from question pairs (`assistant/data/norquad-eng-nor.tsv`, `python -m evals.mine_translations`: how
the English versions of NorQuAD's train questions and their Norwegian twins write the same word) come first where
they are asked for (`learned`): FreeDict's senses are in no order that suits news ("died": "sokkel", "stempel").
Only the sentence picker reads them; validation chose that (docs/evals.md)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

DICTIONARY = Path(__file__).resolve().parents[1] / "data" / "freedict-eng-nor.tsv"
# Words FreeDict's dictionary lacks, the commonest of the English train questions among them; none of
# them has a stem FreeDict knows, so the supplement adds words and changes no FreeDict translation. Its phrases
# are ones FreeDict lacks whose words it reads otherwise ("arms trade": FreeDict's "arm" is the limb).
SUPPLEMENT = DICTIONARY.with_name("kilde-eng-nor.tsv")
LEARNED = DICTIONARY.with_name("norquad-eng-nor.tsv")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class Translator:
    def __init__(
        self,
        table: dict[str, tuple[str, ...]],
        max_translations: int = 2,
        phrases: dict[tuple[str, ...], tuple[str, ...]] | None = None,
    ):
        """`table`: English stem -> Norwegian words; `phrases`: the stems of a phrase's words -> its translations."""
        self._table = table
        self._phrases = phrases or {}
        self._phrase_lengths = sorted({len(k) for k in self._phrases}, reverse=True)
        self.max_translations = max_translations

    @classmethod
    def load(
        cls,
        path: Path = DICTIONARY,
        max_translations: int = 2,
        supplement: Path | None = SUPPLEMENT,
        learned: Path | None = None,
    ) -> Translator:
        """`path`'s words, then `supplement`'s (when given and present) for stems `path` lacks; `learned`'s words
        (when given) come before the others of their stem."""
        from assistant.indexes.lexical import stemmer, stopwords

        stem = stemmer("en").stemWord
        stop = stopwords("en")
        table: dict[str, list[str]] = {}
        phrases: dict[tuple[str, ...], list[str]] = {}
        sources = [path]
        if supplement is not None and supplement.is_file():
            sources.append(supplement)
        for source in sources:
            known = set(table)  # a supplement adds stems the dictionary lacks, and changes none it has
            for line in source.read_text(encoding="utf-8").splitlines():
                if not line or line.startswith("#") or "\t" not in line:
                    continue
                word, *translations = line.split("\t")
                words = word.split(" ")
                if len(words) > 1:
                    # A phrase that opens with a function word is an adverbial or an idiom ("in front of":
                    # "foran", "at last", "have to"), which names nothing to search for; the ones that name
                    # something open with a noun or an adjective ("prime minister", "Barents Sea").
                    if words[0] in stop:
                        continue
                    out = phrases.setdefault(tuple(stem(w) for w in words), [])
                elif word in stop or stem(word) in known:
                    continue
                else:
                    # Several headwords share a stem (kill, killing): their translations are pooled, headword
                    # first.
                    out = table.setdefault(stem(word), [])
                out.extend(t for t in translations if t not in out)
        if learned is not None:
            for line in learned.read_text(encoding="utf-8").splitlines():
                if line and not line.startswith("#") and "\t" in line:
                    word, *translations = line.split("\t")
                    key = stem(word)
                    table[key] = [*translations, *(t for t in table.get(key, []) if t not in translations)]
        return cls(
            {k: tuple(v) for k, v in table.items()},
            max_translations,
            {k: tuple(v) for k, v in phrases.items()},
        )

    def __len__(self) -> int:
        return len(self._table)

    def translate(self, question: str, phrases: bool = True) -> str:
        """The Norwegian words for the question's English words. A capitalised word is looked up too: the
        dictionary knows "Article", "Russia" and "Parliament", and not most names; unknown words are left out
        (the original question keeps them). `phrases`: add the translations of the dictionary's phrases."""
        from assistant.indexes.lexical import stemmer, stopwords

        stem = stemmer("en").stemWord
        stop = stopwords("en")
        words = [m.group().lower() for m in _WORD.finditer(question)]
        stems = [stem(w) for w in words]
        out: list[str] = []

        def add(translations: tuple[str, ...]) -> None:
            out.extend(t for t in translations[: self.max_translations] if t not in out)

        for i, lower in enumerate(words):
            for n in self._phrase_lengths if phrases else ():
                add(self._phrases.get(tuple(stems[i : i + n]), ()))
            if lower not in stop:
                add(self._table.get(stems[i], ()))
        return " ".join(out)


KEYWORD_SEARCH_WORDS = 3  # a question this short is a keyword search, too short to tell its language by


def is_keyword_search(question: str) -> bool:
    return len(re.findall(r"\w+", question)) <= KEYWORD_SEARCH_WORDS


def unknown_words(
    question: str, document_frequency: Callable[[list[str]], tuple[list[int], int]]
) -> list[str]:
    """The words of a keyword search (at most `KEYWORD_SEARCH_WORDS` words) that no passage of the archive uses:
    "Article" in "Article 4", which reads as Bokmål. Empty for a longer question, whose language is told
    reliably (and which the reranker's training pools are made of)."""
    from assistant.indexes.lexical import analyse_query

    words = _WORD.findall(question)
    if not is_keyword_search(question) or not words:
        return []
    analysed = [analyse_query(word) for word in words]
    terms = sorted({term for word_terms in analysed for term in word_terms})
    if not terms:
        return []
    counts, _ = document_frequency(terms)
    used = {term for term, count in zip(terms, counts, strict=True) if count}
    return [
        word
        for word, word_terms in zip(words, analysed, strict=True)
        if word_terms and not used & set(word_terms)
    ]


def search_translation(
    translator: Translator | None,
    question: str,
    language: str,
    document_frequency: Callable[[list[str]], tuple[list[int], int]] | None = None,
) -> str:
    """The dictionary words a question is searched with beside its own (BM25, the reranker's and the picker's
    features): an English question's translation, or, for a keyword search read as Norwegian, that of the
    words the archive never uses (`unknown_words`); "" otherwise."""
    from assistant.core.language import language_group

    if translator is None:
        return ""
    if language_group(language) == "en":
        return translator.translate(question)
    unknown = unknown_words(question, document_frequency) if document_frequency else []
    return translator.translate(" ".join(unknown)) if unknown else ""


def names_translation(translator: Translator | None, language: str) -> Callable[[str], str] | None:
    """How an English question's names are looked for in Norwegian passages (`support.missing_terms`): through
    the dictionary ("Poland": "polen", "the Pope": "pave"); None for a Norwegian question or no dictionary."""
    from assistant.core.language import language_group

    return translator.translate if translator is not None and language_group(language) == "en" else None


@lru_cache(maxsize=2)
def default_translator(learned: bool = False) -> Translator | None:
    """The shipped dictionary, or None when the file is missing (then English questions search untranslated).
    `learned`: with the words learned from question pairs first, where that file is present."""
    if not DICTIONARY.is_file():
        return None
    return Translator.load(learned=LEARNED if learned and LEARNED.is_file() else None)
