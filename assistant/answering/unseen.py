"""Words of a question that no passage of the archive uses, allowing for a typo and for compound words.

"Hva er smeltepunktet til wolfram?" reaches passages about melting points, and their dense similarity can pass
the answerable threshold; but no article says "wolfram", so none can answer it. A question word counts as used
when its stem is in the archive's BM25 vocabulary; when the stem of a word one edit away is (a typo:
"Stobritannia", "trase" for "trasé"); when it begins or ends a longer indexed stem (a derived word or a
compound's last part: the question's "forplikter" in the archive's "forsvarsforpliktelser"); or when it splits
into two used parts, with or without a linking "s"/"e" ("trikketilbudet": "trikke" + "tilbudet"), the first of which
may be one the archive only writes at the start of longer words ("hovedbudskapet": "hoved" as in "hovedstaden", +
"budskapet"; at least `MIN_PREFIX_CHARS` letters). Stopwords of
either language, a typo of one ("mellm"), English function words quoted in a Norwegian question ("«me too»") and
words shorter than `MIN_CHARS` are never counted.

Only Norwegian questions are judged: an English question's words would have to go through the dictionary, whose
inflected and function words ("were", "authority") are too often missing from it to tell an unknown subject."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

# What the archive's BM25 vocabulary answers for terms: each one's document frequency, and the number of chunks.
DocumentFrequency = Callable[[list[str]], tuple[list[int], int]]


class ArchiveWords(Protocol):
    """What the archive's BM25 vocabulary answers (`LexicalIndex`), and its number of chunks."""

    def __len__(self) -> int: ...

    def document_frequency(self, terms: list[str]) -> tuple[list[int], int]: ...

    def affixes_in_use(self, stems: list[str]) -> list[bool]: ...


_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MIN_CHARS = 3
MIN_TYPO_CHARS = 4  # a shorter word one edit away is too often another word
# A longer "word" is no word a person misspelt by one letter, and its variants alone would be about 66 times its
# length squared in characters: a question of one 2,000-letter word took 5 s and 500 MB to judge.
MAX_TYPO_CHARS = 40
MIN_PART_CHARS = 3
MIN_AFFIX_CHARS = 6  # a shorter stem begins or ends too many unrelated words
# a compound's first part that only begins the archive's words, beside a used second part
MIN_PREFIX_CHARS = 5
_LINKING = ("s", "e")
_LETTERS = "abcdefghijklmnopqrstuvwxyzæøåéäöü"
# Beyond the BM25 side's short English stopword list: a Norwegian question quotes English names and slogans ("Hva
# viste «me too»-bevegelsen?"), whose function words an article need not repeat ("#MeToo"). Not used for typos: a
# Norwegian word one edit from one of these ("dose", "rust") may well be a subject.
_ENGLISH_FUNCTION_WORDS_TEXT = """
about above after again against also any because been before being below between both can could did does
doing down during each few from further had has have having hers herself him himself his how its itself just
more myself nor now off once only other our ours out over own same she should some such than that their
theirs them themselves then there these they this those through too under until very was were what when
where which while who whom why will with would you your yours
"""
ENGLISH_FUNCTION_WORDS = frozenset(_ENGLISH_FUNCTION_WORDS_TEXT.split())
# Words that fit any subject: happening, doing, saying, knowing, "more" and "new". A question of these and question
# words alone ("Hva skjedde?", "Tell me more", "What's new?", whose "s" is a word of its own) names nothing to look
# for when asked alone.
_WORDS_OF_ANY_SUBJECT_TEXT = """
skje skjer skjedde skjedd hende hender hendte hendt gjøre gjør gjorde gjort si sier sa sagt fortell fortelle
forteller fortalte vet vite visste mer mere ny nytt nye siste nyheter nyhetene annet ellers noe igjen
happen happens happened happening occur occurs occurred go goes going went gone do done say says said tell told
know knew known more new latest news else anything something everything again s
"""
WORDS_OF_ANY_SUBJECT = frozenset(_WORDS_OF_ANY_SUBJECT_TEXT.split())


def typo_variants(word: str) -> set[str]:
    """Every string one deletion, transposition, substitution or insertion away from `word` (none for a word
    shorter than `MIN_TYPO_CHARS` or longer than `MAX_TYPO_CHARS`)."""
    if not MIN_TYPO_CHARS <= len(word) <= MAX_TYPO_CHARS:
        return set()
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {left + right[1:] for left, right in splits if right}
    out |= {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
    out |= {left + c + right[1:] for left, right in splits if right for c in _LETTERS}
    out |= {left + c + right for left, right in splits for c in _LETTERS}
    out.discard(word)
    return out


def compound_parts(word: str) -> list[tuple[str, str]]:
    """The ways to read `word` as two words of at least `MIN_PART_CHARS` letters, the first with and without a
    linking "s" or "e" ("surdeigsbrød": ("surdeig", "brød"), ("surdeigs", "brød"), ...)."""
    out = []
    for i in range(MIN_PART_CHARS, len(word) - MIN_PART_CHARS + 1):
        left, right = word[:i], word[i:]
        out.append((left, right))
        if left[-1] in _LINKING and len(left) > MIN_PART_CHARS:
            out.append((left[:-1], right))
    return out


def unseen_words(question: str, archive: ArchiveWords) -> list[str]:
    """The words of a Norwegian `question` that no passage uses, as written (lower-cased), in order."""
    from assistant.indexes.lexical import stemmer, stopwords

    stem = stemmer("nb").stemWord
    ignored = stopwords("nb") | stopwords("en")
    words = _question_words(question, MIN_CHARS, ignored)
    if not words:
        return []
    used = _used(archive.document_frequency, (stem(w) for w in words))
    words = [w for w in words if stem(w) not in used]
    long_stems = sorted({stem(w) for w in words if len(stem(w)) >= MIN_AFFIX_CHARS})
    within = {s for s, hit in zip(long_stems, archive.affixes_in_use(long_stems), strict=True) if hit}
    words = [w for w in words if stem(w) not in within]
    if not words:
        return []
    # One lookup for every way the remaining words could still be used: typos and compounds.
    typos = {w: typo_variants(w) for w in words}
    readings = {
        w: (
            {stem(t) for t in typos[w]},
            [(stem(a), stem(b)) for a, b in compound_parts(w)],
        )
        for w in words
    }
    used = _used(
        archive.document_frequency,
        (
            term
            for typo_stems, parts in readings.values()
            for term in [*typo_stems, *(p for pair in parts for p in pair)]
        ),
    )
    prefixes = sorted(
        {
            a
            for _, parts in readings.values()
            for a, b in parts
            if len(a) >= MIN_PREFIX_CHARS and a not in used and b in used
        }
    )
    used |= {a for a, hit in zip(prefixes, archive.affixes_in_use(prefixes), strict=True) if hit}
    return [
        w
        for w, (typo_stems, parts) in readings.items()
        if not (typo_stems & used or typos[w] & ignored)
        and not any(a in used and b in used for a, b in parts)
    ]


def names_nothing(question: str) -> bool:
    """Whether the question is made of question words, function words and words of any subject alone ("Hva",
    "What?", "Hvem er det?", "Hva skjedde?", "Tell me more"): asked without a conversation to lean on, it names
    nothing to look for, and the passages nearest its embedding are any passages at all. A number names something
    ("2019?")."""
    from assistant.indexes.lexical import stopwords

    if any(ch.isdigit() for ch in question):
        return False
    words = _question_words(question, 1, stopwords("nb") | stopwords("en"))
    return all(w in WORDS_OF_ANY_SUBJECT for w in words)


def nothing_used(
    question: str, archive: ArchiveWords, translate: Callable[[str], str] | None = None
) -> list[str]:
    """Every word of `question`, in any language, when the archive uses none of them in any reading: its
    Norwegian stem, a typo's or a compound's parts (`unseen_words`), its English stem, or the Norwegian of its
    dictionary translation (`translate`). Empty when one is used, or when the question has no word to judge.
    A question of nothing the archive holds ("xyzzy", "asdf qwerty") cannot be answered from it, whatever the
    passages its embedding lands nearest."""
    from assistant.indexes.lexical import analyse, stemmer, stopwords

    words = _question_words(question, MIN_CHARS, stopwords("nb") | stopwords("en"))
    if not words:
        return []
    # The cheap readings first, in one lookup; the typos' and compounds' only when none of them is used.
    stems = [stemmer(language).stemWord(w) for w in words for language in ("nb", "en")]
    translated = analyse(translate(" ".join(words)), "nb") if translate is not None else []
    if _used(archive.document_frequency, [*stems, *translated]):
        return []
    return words if set(unseen_words(question, archive)) == set(words) else []


def rarest_word_absent(
    question: str,
    passages: Sequence[str],
    archive: ArchiveWords,
    translate: Callable[[str], str] | None = None,
) -> str | None:
    """The question's rarest word, as written, when none of `passages` uses it; None when one does, or when the
    question has no word to judge. Rarest: used by the fewest of the archive's chunks in its commonest reading (as
    written, its Norwegian or English stem, the Norwegian of its dictionary translation, `translate`), the longer
    on a tie. A passage uses a reading when it holds it or a longer word with it inside ("manet" in
    "brennmaneter"). What a question is about is its rarest word more often than not ("tentakler" in "Hvor mange
    tentakler har en manet?"); an off-topic question's passages, found for its commoner words, hold it nowhere. A
    word no chunk uses in these readings (a typo, an unknown compound, a subject the archive lacks) is the rarest;
    words of any subject ("skjedde", "said") are not judged."""
    from assistant.indexes.lexical import STEM_MIN_CHARS, analyse, holds_within, stemmer, stopwords

    ignored = stopwords("nb") | stopwords("en")
    words = [w for w in _question_words(question, MIN_CHARS, ignored) if w not in WORDS_OF_ANY_SUBJECT]
    translations = {w: translate(w) if translate is not None else "" for w in words}
    written = {w: _WORD.findall(translations[w].lower()) for w in words}
    # An English word whose Norwegian is a function word ("many": "mange") is one too.
    words = [w for w in words if not written[w] or not set(written[w]) <= ignored]
    # The stemmers read some words apart from their inflections ("manet": "man", "maneten": "manet"), so the words
    # as written count too.
    readings = {
        w: {
            w,
            *(stemmer(language).stemWord(w) for language in ("nb", "en")),
            *written[w],
            *analyse(translations[w], "nb"),
        }
        for w in words
    }
    terms = sorted({t for stems in readings.values() for t in stems})
    if not terms:
        return None
    counts, _ = archive.document_frequency(terms)
    used = {t: c for t, c in zip(terms, counts, strict=True) if c}
    # A word is as common as its commonest reading (a dictionary's odd sense of it is rare); one no chunk uses in
    # any reading (a typo, a compound, a subject the archive lacks) is the rarest of all.
    rarity = {w: max((used[t] for t in stems if t in used), default=0) for w, stems in readings.items()}
    rarest = min(rarity, key=lambda w: (rarity[w], -len(w)))  # the longer on a tie: the more specific
    held = {t for p in passages for language in ("nb", "en") for t in analyse(p, language)}
    held |= {w for p in passages for w in _WORD.findall(p.lower())}
    wanted = readings[rarest]
    if wanted & held:
        return None
    # A longer word holds a reading as a compound's head or start (`holds_within`) or, a reading of at least
    # `STEM_MIN_CHARS` letters, anywhere ("forplikt" in "forsvarsforpliktels").
    if any(holds_within(t, s) or (len(t) >= STEM_MIN_CHARS and t in s) for t in wanted for s in held):
        return None
    return rarest


def _question_words(question: str, min_chars: int, ignored: frozenset[str]) -> list[str]:
    """The question's words (lower-cased, each once, in order) of at least `min_chars` letters, less `ignored`
    and the English function words."""
    return list(
        dict.fromkeys(
            w
            for w in (m.group().lower() for m in _WORD.finditer(question))
            if len(w) >= min_chars and w not in ignored and w not in ENGLISH_FUNCTION_WORDS
        )
    )


def _used(document_frequency: DocumentFrequency, terms: Iterable[str]) -> set[str]:
    unique = sorted(set(terms))
    if not unique:
        return set()
    counts, _ = document_frequency(unique)
    return {term for term, count in zip(unique, counts, strict=True) if count}


def spelling_corrections(question: str, document_frequency: DocumentFrequency) -> list[str]:
    """For each word of a Norwegian `question` whose stem no passage uses, the words one edit away whose stems
    the archive does use ("Fossenholm": "fossesholm", "hensiktmessig": "hensiktsmessig"), for the BM25 search;
    words of at least `MIN_TYPO_CHARS` + 1 letters, as a shorter one's neighbours are too often other words."""
    from assistant.indexes.lexical import stemmer, stopwords

    stem = stemmer("nb").stemWord
    words = _question_words(question, MIN_TYPO_CHARS + 1, stopwords("nb") | stopwords("en"))
    if not words:
        return []
    used = _used(document_frequency, (stem(w) for w in words))
    # One lookup for the variants of every misspelt word.
    variants = {w: [(v, stem(v)) for v in sorted(typo_variants(w))] for w in words if stem(w) not in used}
    used = _used(document_frequency, (t for pairs in variants.values() for _, t in pairs))
    return [v for pairs in variants.values() for v in dict.fromkeys(v for v, t in pairs if t in used)]
