"""A bare follow-up: a question word alone ("When?", "Where?", "Hvem?", "Hvor mange?", "Og hvorfor?").

It asks the conversation's last question again for one thing only, a time, a place, a person, a reason or an
amount, and names nothing to match a sentence by: the words it is searched with are the last question's, and they
match the sentence that question was answered with, which is not quoted again (`condense.earlier_answers`), and
then the sentences beside it. So the quote must hold what the word asks for: "When?" after the Article 4 answer
quoted "Dette er en av de mest profilerte diplomatiske fremstøtene i Asia …", which dates nothing, and "Where?"
quoted Cha's remark, which places nothing. Where no sentence of the article holds it, Kilde says that the archive
does not, rather than quote one that does not answer. "What?", "How?" and "Which?" ask for no one kind and are
left to the picker."""

from __future__ import annotations

import re

from assistant.answering.amounts import states_amount

_OPENING = r"^\W*(?:(?:and|but|so|og|men|så)\s+)?"
_CLOSING = r"(?:\s+(?:then|exactly|da|egentlig|nøyaktig|så))?\W*$"
_BARE = {
    "when": r"when|what time|what year|når|hvilket år|kva tid|når da",
    "where": r"where|hvor|kvar|hvor hen|hvorhen",
    "who": r"who|hvem|kven",
    "why": r"why|hvorfor|kvifor|how come",
    "amount": r"how many|how much|hvor mange|hvor mye|kor mange|kor mykje",
}
_ASKED = [
    (kind, re.compile(_OPENING + rf"(?:{words})" + _CLOSING, re.IGNORECASE)) for kind, words in _BARE.items()
]
_ANY_QUESTION_WORD = re.compile(
    _OPENING + r"(?:what|how|which|hva|hvordan|hvilken|hvilket|hvilke|kva|korleis)" + _CLOSING, re.IGNORECASE
)

# What a sentence that answers each word holds. A time: a year, a month, a weekday, a day told from the report's own,
# a season or week counted from it, or "during" an event ("under Russlands president Vladimir Putins første besøk").
# English "march" and "may" are months only beside a day's number: otherwise they march and may.
_STATES = {
    "when": re.compile(
        r"\b((?i:1[89]\d\d|20\d\d|januar|februar|mars|april|mai|juni|juli|august|september|oktober|november|desember|"
        r"january|february|(?:march|may)(?=\s+\d)|\d{1,2}\s+(?:march|may)|june|july|october|december|"
        r"mandag|tirsdag|onsdag|torsdag|fredag|lørdag|søndag|"
        r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|i dag|i går|i morgen|i fjor|i år|"
        r"i helgen|i kveld|i natt|today|yesterday|tomorrow|tonight|(forrige|neste|denne|last|next|this) "
        r"(uke|måned|år|helg|week|month|year|weekend)|klokken|kl\.|o'clock|during)|"
        r"under (sitt|sin|sine|hans|hennes|deres|[A-ZÆØÅ]\w*s)|\d{1,2}\.\s?\w+)\b"
    ),
    # a place: a name after a preposition of place ("til Pyongyang", "i Seoul", "in Oslo"), not an owner's ("fra Kims
    # ønske") nor a body's document or meeting ("i FN-pakten", "på NATO-toppmøtet")
    "where": re.compile(
        r"\b(?i:i|på|til|fra|ved|utenfor|nær|in|at|to|from|near|outside)\s+"
        r"(?![A-ZÆØÅ][\w-]*s\s+[a-zæøå]|[A-ZÆØÅ]{2,}-[a-zæøå])[A-ZÆØÅ]"
    ),
    # a person: a name, past a sentence's first word or the sentence a name alone
    "who": re.compile(r"(?<!^)\b[A-ZÆØÅ][a-zæøå]+|^[A-ZÆØÅ][a-zæøå]+\s+[A-ZÆØÅ][a-zæøå]+"),
    "why": re.compile(
        r"\b(fordi|på grunn av|grunnet|grunnen|årsaken|ettersom|derfor|for å|slik at|skyldes|because|due to|"
        r"reason|so that|in order to|as a result|owing to|since)\b",
        re.IGNORECASE,
    ),
}


def bare_kind(question: str) -> str | None:
    """What a bare follow-up asks for: "when", "where", "who", "why" or "amount"; None for any other question,
    a bare "What?" or "How?" included."""
    for kind, pattern in _ASKED:
        if pattern.match(question.strip()):
            return kind
    return None


def is_bare(question: str) -> bool:
    """A question word alone, whatever it asks for ("When?", "Hva?", "Og hvordan?")."""
    return bare_kind(question) is not None or bool(_ANY_QUESTION_WORD.match(question.strip()))


def asks_for_no_one_thing(question: str) -> bool:
    """ "What?", "How?", "Hvilken?" alone: a question word that, unlike "When?", says nothing of what to quote. After
    the Article 4 answer "What?" quoted "Dette er en av de mest profilerte diplomatiske fremstøtene i Asia …", a
    sentence the picker chose with nothing of the follow-up's own to go by; whoever asks it has to say what."""
    return bare_kind(question) is None and bool(_ANY_QUESTION_WORD.match(question.strip()))


def answers_bare(question: str, sentence: str) -> bool:
    """Whether `sentence` holds what the bare `question` asks for (any sentence does for another question)."""
    kind = bare_kind(question)
    if kind is None:
        return True
    if kind == "amount":
        return states_amount(sentence, question)
    return _STATES[kind].search(sentence) is not None


def told_in_lead(question: str) -> bool:
    """A bare "When?" or "Where?": what a news report tells in its lead."""
    return bare_kind(question) in ("when", "where")
