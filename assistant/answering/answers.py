"""What every answerer shares: the not-found answer, the fallback notices, assembling the final
`Answer` with its timings, and streaming a finished answer word by word."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from assistant.answering.context import AnswerContext, Delta
from assistant.core.errors import ModelFailure
from assistant.core.inert import make_inert
from assistant.core.types import Answer, Citation, Sentence

NOT_FOUND = {
    "en": "I couldn't find this in the archive.",
    "nb": "Jeg fant ikke dette i arkivet.",
    "nn": "Eg fann ikkje dette i arkivet.",
}
# Said after NOT_FOUND when the question asks about words no passage of the archive uses (`unseen.py`), so that
# whoever asks can see why and try another word.
UNSEEN_NOTICE = {
    "en": "No article mentions {words}.",
    "nb": "Ingen artikkel nevner {words}.",
    "nn": "Ingen artikkel nemner {words}.",
}
# Said after NOT_FOUND when a question asked alone names nothing to look for ("Hva?", `unseen.names_nothing`).
NOTHING_NAMED_NOTICE = {
    "en": "The question names nothing to look for: ask about a person, a place, an event or a subject.",
    "nb": "Spørsmålet nevner ikke noe å lete etter: spør om en person, et sted, en hendelse eller et tema.",
    "nn": "Spørsmålet nemner ikkje noko å leite etter: spør om ein person, ein stad, ei hending eller eit tema.",
}
# Said after NOT_FOUND when a follow-up is a question word alone that asks for no one thing ("What?",
# `bare.asks_for_no_one_thing`).
NO_ONE_THING_NOTICE = {
    "en": "A question word alone does not say what to look for: ask what you want to know about it.",
    "nb": "Et spørreord alene sier ikke hva jeg skal lete etter: spør om det du vil vite om det.",
    "nn": "Eit spørjeord åleine seier ikkje kva eg skal leite etter: spør om det du vil vite om det.",
}
# Said after NOT_FOUND when a bare follow-up ("When?", `bare.py`) finds no sentence that holds what it asks for.
NO_BARE_ANSWER_NOTICE = {
    "en": {
        "when": "No passage I found says when.",
        "where": "No passage I found says where.",
        "who": "No passage I found says who.",
        "why": "No passage I found says why.",
    },
    "nb": {
        "when": "Ingen av tekstene jeg fant, sier når.",
        "where": "Ingen av tekstene jeg fant, sier hvor.",
        "who": "Ingen av tekstene jeg fant, sier hvem.",
        "why": "Ingen av tekstene jeg fant, sier hvorfor.",
    },
    "nn": {
        "when": "Ingen av tekstane eg fann, seier når.",
        "where": "Ingen av tekstane eg fann, seier kvar.",
        "who": "Ingen av tekstane eg fann, seier kven.",
        "why": "Ingen av tekstane eg fann, seier kvifor.",
    },
}
# Said after NOT_FOUND when the question names a numbered part ("Article 5") that no passage found names (`parts.py`).
PART_NOTICE = {
    "en": "No passage I found names {words}.",
    "nb": "Ingen av tekstene jeg fant, nevner {words}.",
    "nn": "Ingen av tekstane eg fann, nemner {words}.",
}
# Said after NOT_FOUND when the reranker scores the passages found below its floor and none uses the question's
# rarest word (`Assistant.refused_by_floor`).
ABSENT_NOTICE = {
    "en": "No passage I found mentions {words}.",
    "nb": "Ingen av tekstene jeg fant, nevner {words}.",
    "nn": "Ingen av tekstane eg fann, nemner {words}.",
}
# Said after NOT_FOUND when a follow-up refers back to an article the request's filters leave out
# (`Assistant.article_outside_filters`): the passages the filters keep are about something else.
FILTERED_OUT_NOTICE = {
    "en": "The article this conversation is about, {words}, is outside the filters set.",
    "nb": "Artikkelen samtalen handler om, {words}, er utenfor filtrene som er satt.",
    "nn": "Artikkelen samtalen handlar om, {words}, er utanfor filtera som er sette.",
}
# Said after NOT_FOUND when the question asks for an amount and the quotes found state none (`amounts.py`).
NO_AMOUNT_NOTICE = {
    "en": "No passage I found states the number asked for.",
    "nb": "Ingen av tekstene jeg fant, oppgir tallet det spørres om.",
    "nn": "Ingen av tekstane eg fann, oppgir talet det blir spurt om.",
}
# Said after NOT_FOUND when the question asks on what date or day and the quotes found name none (`days.py`).
NO_DATE_NOTICE = {
    "en": "No passage I found gives the date asked for.",
    "nb": "Ingen av tekstene jeg fant, oppgir datoen det spørres om.",
    "nn": "Ingen av tekstane eg fann, oppgir datoen det blir spurt om.",
}
_AND = {"en": "and", "nb": "og", "nn": "og"}
FALLBACK_NOTICE = {
    "en": "The language model failed ({reason}), so this is the offline extractive answer instead.",
    "nb": "Språkmodellen feilet ({reason}), så dette er det offline uttrekkssvaret i stedet.",
    "nn": "Språkmodellen feila ({reason}), så dette er det offline uttrekkssvaret i staden.",
}
PARTIAL_NOTICE = {
    "en": " The generated text shown before it broke off is incomplete.",
    "nb": " Den genererte teksten som ble vist før den brøt av, er ufullstendig.",
    "nn": " Den genererte teksten som vart vist før han braut av, er ufullstendig.",
}
REPLACED_NOTICE = {  # the model finished, but its answer could not be used
    "en": "The generated answer was replaced by the offline extractive answer: {reason}.",
    "nb": "Det genererte svaret ble erstattet av det offline uttrekkssvaret: {reason}.",
    "nn": "Det genererte svaret vart erstatta av det offline uttrekkssvaret: {reason}.",
}
# On a generative answer some of whose sentences the passages they cite do not support: each face marks them.
UNSUPPORTED_NOTICE = {
    "en": "Some sentences are not supported by the passage they cite: check the source.",
    "nb": "Noen setninger støttes ikke av kilden de viser til: sjekk kilden.",
    "nn": "Nokre setningar er ikkje støtta av kjelda dei viser til: sjekk kjelda.",
}
# What a plain-text face writes after such a sentence (the chat underlines it instead).
UNSUPPORTED_MARK = {"en": "(unsupported)", "nb": "(ikke støttet)", "nn": "(ikkje støtta)"}


CITATION_MARK = re.compile(r"\s*\[\d+\]")  # an answer's "[n]", with the space before it


def holds_words(text: str, part: str) -> bool:
    """`text` holds `part` word for word, white space aside: an answer joins what a chunk breaks over lines,
    and a client may send a turn back with its line breaks collapsed."""
    return " ".join(part.split()) in " ".join(text.split())


CUT_MARK = re.compile(r"\s*(?:…|\.{3})\s*$")  # what a client that shortens a text may end it with
CUT_MIN_WORDS = 6  # fewer first words than this are shared by too many sentences to tell which was shown


def uncut(text: str) -> str:
    """`text` without the ellipsis a client may put where it cut it short."""
    return CUT_MARK.sub("", text)


def ends_with_start_of(line: str, sentence: str) -> bool:
    """`line` ends in at least the first `CUT_MIN_WORDS` words of `sentence` (the last perhaps cut mid-word):
    what a client that sends back only the start of a long answer keeps of its quote."""
    whole = " ".join(sentence.split())
    words = whole.split(" ")
    if len(words) <= CUT_MIN_WORDS:
        return False  # nothing of it is cut off; holds_words judges it whole
    start = " ".join(words[:CUT_MIN_WORDS])
    tail = " ".join(uncut(line).split())
    at = tail.find(start)
    while at >= 0:
        if (at == 0 or tail[at - 1] == " ") and whole.startswith(tail[at:]):
            return True
        at = tail.find(start, at + 1)
    return False


def quoted_before(sentence: str, earlier: str) -> bool:
    """A follow-up quotes what the earlier answers (`condense.earlier_answers`, one to a line) did not: their
    sentences are left out of the choice, and so is one whose start ends an answer a client cut short."""
    if not earlier:
        return False
    return holds_words(earlier, sentence) or any(
        ends_with_start_of(line, sentence) for line in earlier.splitlines()
    )


def not_found_text(language: str) -> str:
    return NOT_FOUND.get(language, NOT_FOUND["en"])


def fallback_notice(language: str, reason: str | ModelFailure, partial: bool) -> str:
    """The notice on a fallback answer, wholly in the question's language."""
    language = language if language in FALLBACK_NOTICE else "en"
    if isinstance(reason, ModelFailure):
        text = reason.reason_in(language)
        if reason.replaced:
            return REPLACED_NOTICE[language].format(reason=text)
        reason = text
    return FALLBACK_NOTICE[language].format(reason=reason) + (PARTIAL_NOTICE[language] if partial else "")


def unsupported_notice(language: str) -> str:
    return UNSUPPORTED_NOTICE.get(language, UNSUPPORTED_NOTICE["en"])


def mark_unsupported(answer: Answer) -> str:
    """The answer's text with `UNSUPPORTED_MARK` after each sentence the support check rejected (after its
    citation markers), for faces that show plain text. A sentence is found with its markers left out, as
    `Sentence.text` holds it."""
    flagged = [s.text for s in answer.sentences if s.supported is False]
    if not flagged:
        return answer.answer
    text = answer.answer
    mark = " " + UNSUPPORTED_MARK.get(answer.language, UNSUPPORTED_MARK["en"])
    # The text without its markers, and where each of its characters stands in the text.
    where: list[int] = []
    last = 0
    for m in CITATION_MARK.finditer(text):
        where.extend(range(last, m.start()))
        last = m.end()
    where.extend(range(last, len(text)))
    plain = "".join(text[i] for i in where)
    ends, cursor = [], 0
    for sentence in flagged:
        at = plain.find(sentence, cursor)
        if at < 0:
            continue
        cursor = at + len(sentence)
        end = where[cursor - 1] + 1
        trailing = re.match(r"(?:\s*\[\d+\])+", text[end:])  # its markers, after a full stop
        ends.append(end + (trailing.end() if trailing else 0))
    for end in reversed(ends):
        text = text[:end] + mark + text[end:]
    return text


def cited_after(answer: Answer, earlier: Sequence[Citation]) -> Answer:
    """`answer` numbered after the `earlier` citations (those of generated text shown before it broke off),
    which it lists first, so that every `[n]` shown, before the break and after it, names its own passage."""
    if not earlier:
        return answer
    offset = max(c.n for c in earlier)
    own = {c.n for c in answer.citations}

    def shifted(match: re.Match) -> str:
        n = int(match.group(1))
        return f"[{n + offset}]" if n in own else match.group()

    return replace(
        answer,
        answer=re.sub(r"\[(\d+)\]", shifted, answer.answer),
        citations=(*earlier, *(replace(c, n=c.n + offset) for c in answer.citations)),
        sentences=tuple(
            replace(s, citations=tuple(n + offset for n in s.citations)) for s in answer.sentences
        ),
    )


def assemble(
    context: AnswerContext,
    *,
    backend: str,
    text: str,
    citations: Sequence[Citation] = (),
    sentences: Sequence[Sentence] = (),
    notice: str | None = None,
    partial: bool = False,
) -> Answer:
    """The final `Answer`; `total` is measured here, from the request's arrival."""
    timings = context.timings_ms
    timings["total"] = (time.perf_counter() - context.started) * 1000
    retrieval = context.retrieval
    return Answer(
        # What a client may render carries no live markup, however the text was made or cut.
        question=context.request.question,
        answer=make_inert(text),
        answerable=bool(citations),
        language=context.language,
        citations=tuple(citations),
        sentences=tuple(sentences) if citations else (),
        retrieved=retrieval.hits,
        # The reranking stage reports its own time beside retrieve (which includes it).
        timings_ms=timings
        | {(k if k == "rerank" else f"retrieve.{k}"): v for k, v in retrieval.timings_ms.items()},
        backend=backend,
        standalone_question=context.standalone_question,
        notice=notice,
        partial=partial,
    )


def not_found(
    context: AnswerContext,
    backend: str,
    *,
    no_amount: bool = False,
    missing_parts: Sequence[str] = (),
    no_date: bool = False,
    bare_kind: str | None = None,
) -> Answer:
    """The not-found answer, saying why where that is known: a follow-up's article the filters leave out, words
    no article uses, numbered parts the passages
    found do not name (the context's, or `missing_parts` of the quoted passages), the question's rarest word where
    the passages found do not use it and the reranker scored them below its floor, (`no_amount`) a number or
    (`no_date`) a date the passages do not state, or what a bare follow-up asks for (`bare_kind`, "when", "amount"
    …), which no sentence found holds."""
    text = not_found_text(context.language)
    parts = context.missing_parts or missing_parts
    if context.filtered_out:
        text += " " + listed_notice(FILTERED_OUT_NOTICE, context.language, [context.filtered_out])
    elif context.names_nothing:
        text += " " + NOTHING_NAMED_NOTICE.get(context.language, NOTHING_NAMED_NOTICE["en"])
    elif context.asks_for_no_one_thing:
        text += " " + NO_ONE_THING_NOTICE.get(context.language, NO_ONE_THING_NOTICE["en"])
    elif context.unseen_words:
        text += " " + unseen_notice(context.language, context.unseen_words)
    elif parts:
        text += " " + listed_notice(PART_NOTICE, context.language, parts)
    elif context.absent_word:
        text += " " + listed_notice(ABSENT_NOTICE, context.language, [context.absent_word])
    elif no_amount or bare_kind == "amount":
        text += " " + NO_AMOUNT_NOTICE.get(context.language, NO_AMOUNT_NOTICE["en"])
    elif no_date:
        text += " " + NO_DATE_NOTICE.get(context.language, NO_DATE_NOTICE["en"])
    elif bare_kind is not None:
        text += " " + NO_BARE_ANSWER_NOTICE.get(context.language, NO_BARE_ANSWER_NOTICE["en"])[bare_kind]
    return assemble(context, backend=backend, text=text)


def unseen_notice(language: str, words: Sequence[str]) -> str:
    """ "Ingen artikkel nevner «wolfram»." / "No article mentions «wolfram» and «tungsten»." """
    return listed_notice(UNSEEN_NOTICE, language, words)


def listed_notice(notices: dict[str, str], language: str, words: Sequence[str]) -> str:
    """The notice in the language (English for another), naming the words in quotes: «a», «b» and «c»."""
    language = language if language in notices else "en"
    quoted = [f"«{w}»" for w in words]
    listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {_AND[language]} {quoted[-1]}"
    return notices[language].format(words=listed)


def stream_words(answer: Answer, lead: str = "") -> Iterator[Delta | Answer]:
    """A finished answer as the chat shows any answer: word by word, then the `Answer` itself."""
    if lead:
        yield Delta(lead)
    for word in answer.answer.split(" "):
        yield Delta(word + " ")
    yield answer
