"""Turning a follow-up into a question that can be searched on its own.

Without a language model the rule is: a question stands alone unless it refers back ("and …?", "what about …", "hva
med …", a pronoun such as "he", "they", "hun", "dem", a reaction or view whose cause goes unsaid: "How did Japan
react?", "What did China say?", only a few words, or no name or number of its own). A follow-up is searched with its
own words first, then the previous question, and the passages found are reordered by a search for its focus
(`follow_up_focus`): the follow-up with the previous question's names and numbers, or, when it opens with "and …" or
asks for such a reaction and names something of its own (and no pronoun refers back), the follow-up alone. When the
last answer quoted a passage word for word (an extractive answer), the follow-up is about that passage's article:
the article's own passages for the focus come first (`earlier_quotes`, `within_article`), so "Who signed it?" is
answered from the pact's article, not from whatever else in the archive mentions signing. A follow-up that names
what that article never mentions is about an earlier answer's article that does ("And how did Japan react?" after
an answer quoted from another article goes back to the pact's), or, where none does, about the archive. The learned
picker chooses the sentence for the focus (it learned from questions that name what they ask about); the rule, from
the follow-up's own words (the carried names are in every sentence of that article). Either way it is never one an
earlier answer of the conversation quoted, unless it answers what the follow-up newly asks: names it, holds its
new words ("Hvor er hun bærekraftsansvarlig?" after a quote that gave her title), or gives the age it asks for
(`earlier_answers`).
So "And how did Japan react?" after the Article 4 question quotes Japan's reaction, not Article 4 again, and "What
about China?" after it quotes China's, though that answer quoted it beside Japan's.
A question word alone ("When?", "Hvor?": `bare.py`) carries the last question that asked more than one
(`last_question`), and its focus is that question's words less its question word; its quote must hold what the word
asks for, a time, a place, a person, a reason or an amount, or Kilde says the archive does not hold it."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from assistant.answering.amounts import asks_for_age, states_age
from assistant.answering.answers import CITATION_MARK, uncut
from assistant.answering.bare import answers_bare, is_bare, told_in_lead
from assistant.answering.cuts import CUT_MARK
from assistant.answering.retrieval import Retrieval
from assistant.core.sentences import sentence_spans
from assistant.core.types import Turn
from assistant.indexes.lexical import analyse, begins, holds_within


class Condenser(Protocol):
    def condense(self, question: str, history: Sequence[Turn], language: str) -> str: ...


_OPENER = re.compile(
    r"^\W*(and|but|so|also|what about|how about|and what about|og|men|så|også|hva med|hva så med|enn)\b",
    re.IGNORECASE,
)
# The words a question opens with, each list once: what a follow-up's "de" follows (`_BACK_REFERENCE`), what a
# bare follow-up's focus leaves out of the last question (`_QUESTION_WORD`), what a model's condensed follow-up may
# open with (`_QUESTION_WORDS`).
_ENGLISH_QUESTION_WORDS = ("what", "who", "whom", "which", "where", "when", "why", "how")
_NORWEGIAN_QUESTION_WORDS = (  # Bokmål, then Nynorsk
    *("hva", "hvem", "hvilken", "hvilket", "hvilke", "hvor", "hvordan", "hvorfor", "når"),
    *("kva", "kven", "kvar", "korleis", "kvifor"),
)
_BACK_REFERENCE = re.compile(
    r"\b(he|him|his|she|her|hers|it|its|they|them|their|theirs|there|those|these|"
    r"han|ham|hans|hun|henne|hennes|dem|deres|dette|disse|der|dit|da)\b"
    r"|\b(that|this)\W*$|\bthat (article|one|treaty|pact|agreement|deal|country|company|club|film|law)\b"
    r"|\b(ble|var|er|blir)\s+(den|de)\s+\w+\W*$|\b(av|med|om|for|til)\s+det\b"
    r"|\b(vant|har|hadde|fikk|gjorde|sa|kom|er|var)\s+(de|det)\b(?!\s+\w+e\b)"
    # "de" as the subject after a question's verb ("Hva skriver de på Facebook?"), not the article before an
    # adjective or a number ("Hva gjorde de svenske soldatene?", "Hvem scoret de to målene?") nor part of a
    # name ("Når innledes Tour de Ski?").
    rf"|^\W*({'|'.join(_NORWEGIAN_QUESTION_WORDS)})\b"
    r"(\s+\w+)?\s+(?-i:[a-zæøå])\w*\s+de\b"
    r"(?!\s+((?-i:[A-ZÆØÅ])|(\w+e|to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|\d+)\b))",
    re.IGNORECASE,
)
# A reaction or a view whose cause is left unsaid ("How did Japan react?", "What did China say?", "Hvordan svarte
# Tyskland?") is about what was said before: the verb ends the question, or in Bokmål only its subject's name follows.
_UNSAID_CAUSE = re.compile(
    r"\b(react|reacted|respond|responded|reply|replied|retaliate|retaliated|say|said|think|thought|comment|"
    r"commented|reagere|reagerer|reagerte|reagert|svare|svarer|svarte|svart|respondere|responderte|respondert|"
    r"si|sier|sa|sagt|mene|mener|mente|ment|kommentere|kommenterer|kommenterte|kommentert)"
    r"(\s+(?-i:[A-ZÆØÅ])[\w'’-]*){0,3}\W*$",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w[\w'’-]*")
_QUESTION_WORD = re.compile(  # "how many" before "how": the amount's words are the question word too
    rf"^\W*(how many|how much|hvor mange|hvor mye|{'|'.join(_ENGLISH_QUESTION_WORDS + _NORWEGIAN_QUESTION_WORDS)})"
    r"\b\W*",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-ZÆØÅÄÖÜ][\w’'-]*(?:\s+(?:[A-ZÆØÅÄÖÜ0-9][\w’'-]*|\d+))*")
_NUMBER = re.compile(r"\b\d[\d.,]*\b")
_QUOTED = re.compile(r"[«“\"]([^»”\"]{2,80})[»”\"]")
SHORT_QUESTION_WORDS = 3


def refers_back(question: str) -> bool:
    """True when the question leans on what was said before; such a question is not searched alone. Besides
    openers, pronouns, a reaction or view whose cause is unsaid and very short questions, a question that names nothing
    of its own (no name, number or quote: "When was the search called off?") is read as being about what the
    conversation named."""
    words = _WORD.findall(question)
    return bool(
        _OPENER.search(question)
        or _BACK_REFERENCE.search(question)
        or _UNSAID_CAUSE.search(question)
        or len(words) <= SHORT_QUESTION_WORDS
        or not salient_terms(question)
    )


def salient_terms(text: str) -> list[str]:
    """Names (capitalised word runs after the first word), numbers and quoted phrases, in order."""
    first = _WORD.search(text)
    start = first.end() if first else 0
    found = [m.group(1) for m in _QUOTED.finditer(text)]
    found += [m.group().strip() for m in _NAME.finditer(text, start)]
    found += [m.group() for m in _NUMBER.finditer(text)]
    out: list[str] = []
    for term in found:
        if not any(term.lower() in kept.lower() for kept in out):
            out.append(term)
    return out


def condense_extractive(question: str, history: Sequence[Turn]) -> str:
    """A standalone question as it is; a follow-up first in its own words, then the previous question
    (the last user turn), which names what the follow-up refers back to."""
    if not refers_back(question):
        return question
    previous = last_question(history)
    return f"{question} {previous}" if previous else question


def last_question(history: Sequence[Turn]) -> str:
    """The last user turn that is more than a question word alone: "Where?" after "When?" after the Article 4
    question asks the Article 4 question for a place, not "When?" for one (`bare.py`)."""
    asked = [t.content for t in history if t.role == "user"]
    return next((q for q in reversed(asked) if not is_bare(q)), asked[-1] if asked else "")


QUOTE_MIN_WORDS = 5  # a shorter sentence ("– Ja.") is held by too many chunks to name an article
# A name or word more of the passages' sentences hold is what the conversation is about ("avtalen" in the pact's
# article, "Sverige" in one about a trial in Sweden), not what a follow-up newly asks about.
ASKED_WORD_MAX_SENTENCES = 2


def earlier_answers(
    history: Sequence[Turn],
    asked: str = "",
    names_in: Callable[[str], str] | None = None,
    passages: Sequence[str] = (),
    titles: Sequence[str] = (),
) -> str:
    """Every answer the conversation has shown (the history a request keeps), one to a line: a follow-up quotes
    none of their sentences again, so a third question does not get the first answer's quote back. A quote that
    answers what the follow-up `asked` newly asks is left out of them, as a quote shown beside another question's
    answer may answer this one: one that names what `asked` names and no earlier question did ("What about
    China?" after an answer whose second quote told China's reaction), or holds a word of `asked` no earlier
    question used ("Hvor er hun bærekraftsansvarlig?" after a quote "…, sier bærekraftsansvarlig hos Bergans AS,
    Yngvill Ofstad."), where at most `ASKED_WORD_MAX_SENTENCES` sentences of the `passages` found hold that name
    or word; one that holds every such word (a word counts as held where a derivation or compound of it is:
    `related`); and, for a question for someone's age, one that gives an age
    ("Helene Fossesholm (18)" before "Hvor gammel er hun?"). A word that the `titles` of the passages' articles
    hold, inside a compound too, names what the conversation is about, not what it newly asks: "Who signed the
    pact?" does not get the Article 4 quote back for its "FN-pakten" under "… inngår forsvarspakt" (`topical`).
    `names_in`: the Norwegian an English question is written in ("China": "kina"). A bare question word ("Where?")
    gets back only a quote that holds the time or place it asks for (`bare.py`)."""
    answers = [t.content for t in history if t.role == "assistant"]
    if is_bare(asked):
        # a question word asks for a kind, not for new words: a quote that gives the time or place asked for
        # answers it again ("Where?" after "When?" was answered by "… under Putins første besøk til Nord-Korea …")
        return "\n".join(
            without_quotes(a, lambda quote: told_in_lead(asked) and answers_bare(asked, quote))
            for a in answers
        )
    named = new_names(asked, history, names_in)
    words = new_words(asked, history, names_in)
    age = asks_for_age(asked)
    if not (named or words or age):
        return "\n".join(answers)
    # each sentence once, though overlapping chunks repeat some
    sentences = {" ".join(p[start:end].split()) for p in passages for start, end in sentence_spans(p)}
    named = [name for name in named if _held_by(_mentions([name]), sentences) <= ASKED_WORD_MAX_SENTENCES]
    mentions = _mentions(named)
    rare = rare_words(words - topical(words, titles), sentences)

    def answers_asked(quote: str) -> bool:
        if (named and mentions.search(quote)) or (age and states_age(quote)):
            return True
        stems = set(analyse(quote, "nb"))
        return bool(related(rare, stems)) or (bool(words) and related(words, stems) == words)

    return "\n".join(without_quotes(answer, answers_asked) for answer in answers)


def new_names(asked: str, history: Sequence[Turn], names_in: Callable[[str], str] | None = None) -> list[str]:
    """The names, numbers and quoted phrases of `asked` that the last user turn of `history` does not hold,
    lower-cased, each followed by its dictionary Norwegian where `names_in` is given: what the conversation turns
    to, or back to ("And how did Japan react?" after "What about China?")."""
    earlier = next((t.content for t in reversed(history) if t.role == "user"), "").lower()
    out: list[str] = []
    for term in salient_terms(asked):
        if term.lower() in earlier:
            continue
        out.append(term.lower())
        if names_in is not None:
            out += [word for word in names_in(term).split() if word not in out]
    return out


def new_words(asked: str, history: Sequence[Turn], names_in: Callable[[str], str] | None = None) -> set[str]:
    """The Norwegian stems of the words of `asked` that no user turn of `history` used; an English question's
    words also through `names_in` (its names stay as they are: "Morten Klever's")."""

    def stems(text: str) -> set[str]:
        found = set(analyse(text, "nb"))
        return found | set(analyse(names_in(text), "nb")) if names_in is not None else found

    return stems(asked) - stems(" ".join(t.content for t in history if t.role == "user"))


def _held_by(pattern: re.Pattern, sentences: set[str]) -> int:
    """How many of the `sentences` mention what `pattern` finds."""
    return sum(1 for sentence in sentences if pattern.search(sentence))


def _mentions(names: Sequence[str]) -> re.Pattern:
    return re.compile("|".join(rf"(?<!\w){re.escape(name)}" for name in names), re.IGNORECASE)


def related(words: set[str], stems: set[str]) -> set[str]:
    """Those of `words` that `stems` hold, or that begin one of them or are begun by one (`lexical.begins`): a
    derivation or a compound, which the stemmer leaves apart ("utvekslingen" and "utvekslet" stem to
    "utveksling" and "utveksl")."""

    def joined(word: str, stem: str) -> bool:
        return begins(*sorted((word, stem), key=len))

    return {word for word in words if word in stems or any(joined(word, stem) for stem in stems)}


def rare_words(words: set[str], sentences: set[str]) -> set[str]:
    """Those of `words` that at most `ASKED_WORD_MAX_SENTENCES` of the `sentences` hold (or a word `related` to
    them)."""
    if not words:
        return set()
    held = Counter(word for sentence in sentences for word in related(words, set(analyse(sentence, "nb"))))
    return {word for word in words if held[word] <= ASKED_WORD_MAX_SENTENCES}


def topical(words: set[str], titles: Sequence[str]) -> set[str]:
    """Those of `words` that the `titles` hold: as they are, `related`, or inside a compound ("pakt" in
    "forsvarspakt")."""
    # an article's title once, however many of its hits were found
    stems = set(analyse(" ".join(dict.fromkeys(titles)), "nb"))
    return related(words, stems) | {w for w in words if any(holds_within(w, stem) for stem in stems)}


def without_quotes(answer: str, left_out: Callable[[str], bool]) -> str:
    """`answer` without the quotes (each ended by its "[n]") that `left_out` picks."""
    parts = re.split(f"({CITATION_MARK.pattern})", answer)  # quote, mark, quote, mark, …, and what follows
    kept = [
        quote + mark
        for quote, mark in zip(parts[::2], [*parts[1::2], ""], strict=True)
        if not (mark and left_out(quote))
    ]
    return "".join(kept)


def earlier_quotes(history: Sequence[Turn]) -> Iterator[str]:
    """The `first_quote` of each answer of the conversation that has one, the newest first: the passages, and so
    the articles, the conversation has been about."""
    for turn in reversed(history):
        if turn.role == "assistant" and (quote := first_quote(turn.content)) is not None:
            yield quote


def first_quote(answer: str) -> str | None:
    """The first sentence of at least `QUOTE_MIN_WORDS` words in an answer before its first citation mark: an
    extractive answer quotes its passage word for word, so the chunk that holds it names the article the answer
    was about (a refusal or a generative answer's paraphrase is found in no chunk)."""
    head = uncut(CITATION_MARK.split(answer, maxsplit=1)[0])  # a client may cut it short
    head = head.lstrip().removeprefix(CUT_MARK)  # and the quote its sentence, when over-long (`cuts.py`)
    for start, end in sentence_spans(head):
        sentence = head[start:end].strip()
        if len(_WORD.findall(sentence)) >= QUOTE_MIN_WORDS:
            return sentence
    return None


def within_article(fused: Retrieval, within: Retrieval, k: int) -> Retrieval:
    """A follow-up's passages when the conversation is about one article: that article's passages for the
    follow-up first, then the others found as before. The searched question's dense score still judges
    answerability."""
    kept = {hit.chunk.id for hit in within.hits}
    hits = (*within.hits, *(hit for hit in fused.hits if hit.chunk.id not in kept))[:k]
    timings = fused.timings_ms | {f"article.{n}": v for n, v in within.timings_ms.items()}
    return Retrieval(hits, fused.query_vector, fused.best_dense, timings)


def fits_elsewhere(own: Retrieval, within: Retrieval, article: str, margin: float) -> bool:
    """Whether a follow-up's own words (`own`, reranked over the archive) find a passage of another article that
    the reranker scores above the best passage of the conversation's `article` (`within`) by more than `margin`:
    then the earlier answer quoted an article the conversation is not about (its first question was answered
    from the wrong one), and the follow-up is not held to it."""
    if not own.hits or not within.hits or own.hits[0].article.id == article:
        return False
    return own.hits[0].score - within.hits[0].score > margin


def follow_up_focus(question: str, history: Sequence[Turn]) -> str:
    """What the quoted sentence must answer: the follow-up, with the names and numbers of the last user
    turn that has any (so "he" can still be matched to a sentence about Svindal). A follow-up that opens
    with "and …"/"what about …", or asks for a reaction whose cause it leaves unsaid ("What did China say?"),
    and names something of its own, with no pronoun to fill, asks the previous question about that instead
    ("And how did Japan react?", "Og Kina?"): the names it replaces would pull the quote back to the previous
    answer's passage, so its own words are the focus. (The validation dialogues refer back by pronoun; none
    opens so with a name, and their figures are unchanged: evals/data/README.md.)"""
    asked = {t.lower() for t in salient_terms(question)}
    if asks_about_a_name_of_its_own(question):
        return question
    if is_bare(question):
        # a question word alone asks the last question for one thing: that question's words, less its own
        # question word, say what about ("When? Article 4 commit each side to")
        question = f"{question} {_QUESTION_WORD.sub('', last_question(history), count=1).strip()}".strip()
        asked = {t.lower() for t in salient_terms(question)}
    for turn in reversed([t for t in history if t.role == "user"]):
        carried = [term for term in salient_terms(turn.content) if term.lower() not in asked]
        if carried:
            return f"{question} {' '.join(carried)}"
    return question


def asks_about_a_name_of_its_own(question: str) -> bool:
    """Whether a follow-up asks the previous question about a name of its own, with no pronoun to fill: it opens
    with "and …"/"what about …" or asks for a reaction whose cause it leaves unsaid, and names something ("And how
    did Japan react?", "Og Kina?", "What did China say?")."""
    about_a_name = _OPENER.search(question) or _UNSAID_CAUSE.search(question)
    return bool(salient_terms(question) and about_a_name and not _BACK_REFERENCE.search(question))


def fuse_follow_up(searched: Retrieval, own: Retrieval, k: int, rrf_k: int = 60) -> Retrieval:
    """A follow-up's passages: those found as searched (with what it refers back to), reordered by how
    well the follow-up's own words (with the names it refers to: `follow_up_focus`) rank them, so a
    passage of the right article that answers the new question comes before the one that answered the
    previous question. The own words' query vector chooses the sentence; answerability keeps the
    searched question's dense score."""
    own_rank = {hit.chunk.id: rank for rank, hit in enumerate(own.hits)}
    scores = {
        hit.chunk.id: 1.0 / (rrf_k + rank + 1)
        + (1.0 / (rrf_k + own_rank[hit.chunk.id] + 1) if hit.chunk.id in own_rank else 0.0)
        for rank, hit in enumerate(searched.hits)
    }
    by_id = {hit.chunk.id: hit for hit in searched.hits}
    ranked = sorted(scores, key=lambda cid: (-scores[cid], cid))[:k]
    hits = tuple(replace(by_id[cid], score=scores[cid]) for cid in ranked)
    timings = {f"searched.{n}": v for n, v in searched.timings_ms.items()}
    timings |= {f"own.{n}": v for n, v in own.timings_ms.items()}
    vector = own.query_vector if own.query_vector is not None else searched.query_vector
    return Retrieval(hits, vector, searched.best_dense, timings)


_QUESTION_WORDS = frozenset(
    (
        *_ENGLISH_QUESTION_WORDS,
        *_NORWEGIAN_QUESTION_WORDS,
        *("whose", "kor", "for"),  # Nynorsk "kor", and "kva for"
        # or a verb, asking
        *("is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should", "has"),
        *("have", "had", "may", "might", "shall"),
        *("er", "var", "har", "hadde", "kan", "kunne", "vil", "ville", "skal", "skulle", "bør", "må", "gjør"),
        *("gjorde", "finnes"),
    )
)


def keeps_the_question(follow_up: str, standalone: str) -> bool:
    """Whether a model's condensed follow-up can be searched: it is a question, it keeps the follow-up's
    names and numbers, and it shares at least one of its content words (a small model may turn a
    follow-up into a statement, or into another question)."""
    from assistant.answering.support import missing_terms
    from assistant.indexes.lexical import analyse_query

    text = standalone.strip()
    first = re.match(r"\w+", text.lower())
    if not (text.endswith("?") or (first and first.group() in _QUESTION_WORDS)):
        return False
    if missing_terms(follow_up, [text]):
        return False
    wanted = set(analyse_query(follow_up))
    return not wanted or bool(wanted & set(analyse_query(text)))
