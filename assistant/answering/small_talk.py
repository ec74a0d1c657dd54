"""Greetings, thanks and "what can you do?": nothing to search the archive for.

Searched like questions, they were answered with whatever passage shared a word ("Hei" quoted a sentence
about a lift, "heis"). A message that is one of these phrases and nothing else (case, punctuation, emoji and
the name "Kilde" aside), or a greeting and then a thank-you or a question about Kilde, gets a reply that says
what Kilde answers, in the phrase's language, and cites nothing. Anything longer is a question, however it opens
("Hei, hvem vant valget?"). "What can you help me with?" was searched, and quoted an op-ed's "Her kan du lese mer
om å sende inn innlegg til oss"."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each phrase a pattern over the message's words, lower-cased and joined by single spaces.
_PHRASES = {
    ("greeting", "en"): r"hi|hello|hey|(hi|hello|hey) there|good (morning|afternoon|evening)",
    ("greeting", "nb"): r"hei|hallo|heisann|hei hei|hei der|god (morgen|dag|ettermiddag|kveld)|morn",
    ("greeting", "nn"): r"god morgon|god ettermiddag|heia",
    ("thanks", "en"): r"thanks|thank you|thanks a lot|thank you very much|many thanks|cheers|bye|goodbye",
    ("thanks", "nb"): r"takk|tusen takk|mange takk|takk skal du ha|takk for hjelpen|ha det|ha det bra",
    ("thanks", "nn"): r"takk for hjelpa|ha det godt",
    ("help", "en"): r"help|help me|(can|could) you help( me)?|how (can|could) you help( me)?|"
    r"what (can|could) you (do|answer|tell me|tell me about|help( me)? with)|what do you (do|know)|"
    r"what can i ask( you)?( about)?|what (kind|kinds|sort|sorts|type|types) of questions can i ask( you)?|"
    r"who are you|what are you|how (does this|do you) work|how do i use (this|you)",
    ("help", "nb"): r"hjelp|hjelp meg|kan du hjelpe( meg)?|hvordan kan du hjelpe( meg)?|"
    r"hva kan du( gjøre| svare på| fortelle( meg)?( om)?| hjelpe( meg)? med)?|hva gjør du|hva vet du|"
    r"hva kan jeg spørre( deg)?( om)?|(hva slags|hvilke) spørsmål kan jeg stille( deg)?|"
    r"hvem er du|hva er du|hva er|hvordan (virker|fungerer) (dette|du)|hvordan bruker jeg (deg|dette)",
    ("help", "nn"): r"korleis kan du hjelpe( meg)?|"
    r"kva kan du( gjere| svare på| hjelpe( meg)? med)?|kva gjer du|kva veit du|kva kan eg spørje( deg)?( om)?|"
    r"kva slags spørsmål kan eg stille( deg)?|kven er du|kva er du|korleis verkar (dette|du)|"
    r"korleis brukar eg (deg|dette)",
}
_MATCHERS = [(key, re.compile(f"(?:{pattern})")) for key, pattern in _PHRASES.items()]
# A greeting may open a question about Kilde or a thank-you ("Hei, hva kan du hjelpe meg med?"), whose reply
# already says hello; before a question about the news it is a question ("Hei, hvem vant valget?").
_GREETING = re.compile("(?:" + "|".join(p for (kind, _), p in _PHRASES.items() if kind == "greeting") + ")")

_ABOUT = {
    "en": "I answer questions about the news archive, and every answer quotes the passages it comes from. "
    "Ask about something in the news: who said or did what, when, where or how much.",
    "nb": "Jeg svarer på spørsmål om nyhetsarkivet, og hvert svar siterer avsnittene det bygger på. "
    "Spør om noe i nyhetene: hvem som sa eller gjorde hva, når, hvor eller hvor mye.",
    "nn": "Eg svarar på spørsmål om nyheitsarkivet, og kvart svar siterer avsnitta det byggjer på. "
    "Spør om noko i nyheitene: kven som sa eller gjorde kva, når, kvar eller kor mykje.",
}
REPLIES = {
    ("greeting", "en"): "Hello! " + _ABOUT["en"],
    ("greeting", "nb"): "Hei! " + _ABOUT["nb"],
    ("greeting", "nn"): "Hei! " + _ABOUT["nn"],
    ("thanks", "en"): "You're welcome. Ask me anything else about the news archive.",
    ("thanks", "nb"): "Bare hyggelig. Spør gjerne om mer i nyhetsarkivet.",
    ("thanks", "nn"): "Berre hyggeleg. Spør gjerne om meir i nyheitsarkivet.",
    ("help", "en"): _ABOUT["en"],
    ("help", "nb"): _ABOUT["nb"],
    ("help", "nn"): _ABOUT["nn"],
}
_NOT_WORDS = re.compile(r"[^\w]+")
BACKEND = "kilde"  # `Answer.backend` of a small-talk reply: Kilde itself, not an answerer


@dataclass(frozen=True)
class SmallTalk:
    kind: str  # greeting, thanks or help
    language: str
    reply: str


def small_talk(message: str) -> SmallTalk | None:
    """The reply to a message that is only a greeting, a thank-you or a question about Kilde, the last two
    perhaps after a greeting; None for anything else."""
    words = " ".join(
        w for w in _NOT_WORDS.sub(" ", message.lower().replace("_", " ")).split() if w != "kilde"
    )
    key = _phrase(words) or _after_greeting(words)
    return SmallTalk(key[0], key[1], REPLIES[key]) if key else None


def _after_greeting(words: str) -> tuple[str, str] | None:
    """A thank-you or a question about Kilde after the greeting that opens `words`."""
    for cut in (i for i, c in enumerate(words) if c == " "):
        if _GREETING.fullmatch(words[:cut]):
            after = _phrase(words[cut + 1 :])
            if after and after[0] != "greeting":
                return after
    return None


def _phrase(words: str) -> tuple[str, str] | None:
    return next((key for key, pattern in _MATCHERS if pattern.fullmatch(words)), None)
