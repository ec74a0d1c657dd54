"""Photo credits, bylines and embedded-tweet leftovers are cleaned at ingest (rules in
ingest/leftovers.yaml), checked over every NorQuAD passage: none remains, legitimate sentences stay, and
no NorQuAD answer is lost except the few that are themselves a credit or a tweet's signature."""

from __future__ import annotations

import difflib
import json
import re
from functools import cache

import pytest

from assistant.answering.furniture import is_page_leftover
from assistant.core.sentences import sentence_spans
from assistant.testing.corpus import ROOT, SEED
from ingest.cleaning import clean_lines, normalise_line
from ingest.loaders import load_file, norquad_articles

NORQUAD = ROOT / "corpus" / "norquad"

# Independent of the rules file: what a leftover looks like to a reader. The answer-time guard's page leftovers (#13)
# plus what it has no reason to know: credits naming only an agency, the wire's mark, a "follow us" line,
# and the links to other articles the rules dropped before ("LES OGSÅ: …").
_ALSO_LEFTOVER = re.compile(
    r"(/\s*(ap|tt nyhetsbyrån|getty images|bildbyrån|reuters)\s*$|^ntb$|[(]\s*[©@]|^©|\billustrasjonsfoto\b|"
    r"^følg \S+( \S+)? på (facebook|twitter)|^(les også|les mer)\b)",
    re.IGNORECASE,
)

# NorQuAD questions whose only answer is a photo credit or a tweet's signature, so cleaning removes it
# on purpose ("Hvor jobber Vidar Ruud?" -> the credit "Foto: Vidar Ruud / NTB scanpix").
REMOVED_ON_PURPOSE = {
    ("news-a1-d618", "@oslopolitiops"),  # "— OPS Politiet Oslo (@oslopolitiops) October 28, 2019"
    ("news-a1-d653", "NTB scanpix"),  # "Foto: Vidar Ruud / NTB scanpix"
    ("news-a1-d660", "NTB scanpix"),  # "Foto: Lise Åserud / NTB scanpix"
    ("news-a1-d687", "Manchester United"),  # "Foto: Matthew Peters / Manchester United"
    ("news-a1-d647", "Paul S. Amundsen"),  # "FOTO: Paul S. Amundsen"
    ("news-a2-d311", "Donald J. Trump"),  # "— Donald J. Trump (@realDonaldTrump) September 18, 2019"
}


# Credits with no label, no agency and no slash, at the end of a caption line, checked by hand: each is the
# photographer (or the club that gave the picture) of the caption before it ("… lørdag. Erlend Nesje").
HAND_CHECKED_CREDITS = {
    "Erlend Nesje",
    "Norges Friidrettsforbund",
    "Mette Bugge",
    "Vegar Valde",
    "Øyvind Sivertsen",
    "Rune Sævig",
    "Ørjan Deisz",
    "Hans Jørgen Brun",
    "Marita Aarekol",
    "Richard Sagen",
}


def is_leftover(text: str) -> bool:
    text = text.strip()
    return bool(text) and (
        is_page_leftover(text) or bool(_ALSO_LEFTOVER.search(text)) or text in HAND_CHECKED_CREDITS
    )


def leftovers(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        found += [line[s:e] for s, e in sentence_spans(line) if is_leftover(line[s:e])]
    return found


@cache
def passages() -> list[tuple[str, dict, str]]:
    """(article id, NorQuAD paragraph, cleaned headline + text) for all 756 passages."""
    out = []
    for path in sorted(NORQUAD.glob("*/answers_*.json")):
        domain, annotator = path.parent.name, int(path.stem[-1])
        data = json.loads(path.read_text(encoding="utf-8"))
        articles = {a.id: a for a in norquad_articles(data, domain, annotator, path.name)}
        for entry in data["data"]:
            for paragraph in entry["paragraphs"]:
                article = articles[f"{domain}-a{annotator}-d{paragraph['document_id']}"]
                out.append((article.id, paragraph, f"{article.title}\n{article.text}"))
    return out


def test_no_leftover_remains_in_any_norquad_passage():
    before = sum(len(leftovers(p["context"])) for _, p, _ in passages())
    remaining = {aid: found for aid, _, cleaned in passages() if (found := leftovers(cleaned))}
    after = sum(len(found) for found in remaining.values())
    print(f"leftover sentences over {len(passages())} passages: before {before}, after {after}")
    assert len(passages()) == 756
    assert before > 400  # the passages do carry them: credits, captions' credits, tweets, bylines
    assert remaining == {}


def test_everything_cleaning_removes_from_a_passage_is_a_leftover():
    """Legitimate text is kept: each piece cut from a line (a whole line, or a credit inside one) is a
    leftover by the independent reading above."""
    wrongly_removed = []
    for aid, paragraph, _ in passages():
        for line in paragraph["context"].splitlines():
            line, kept = normalise_line(line), " ".join(clean_lines([line]).lines)
            matcher = difflib.SequenceMatcher(None, line, kept, autojunk=False)
            for op, i1, i2, _, _ in matcher.get_opcodes():
                piece = line[i1:i2].strip(" .")
                if op != "equal" and piece and not is_leftover(piece):
                    wrongly_removed.append((aid, piece))
    assert wrongly_removed == []


def test_every_norquad_answer_survives_cleaning_but_the_credits_asked_about():
    lost = set()
    answers = 0
    for aid, paragraph, cleaned in passages():
        flat = " ".join(cleaned.split())
        for qa in paragraph["qas"]:
            for answer in qa["answers"]:
                answers += 1
                if " ".join(answer["text"].split()) not in flat:
                    lost.add((aid, answer["text"]))
    print(f"NorQuAD answers: {answers}, not in the cleaned passage: {len(lost)}")
    assert answers == 4752
    assert lost == REMOVED_ON_PURPOSE


@pytest.mark.parametrize(
    "line",
    [
        "Utover 1800-tallet ble fotografiske reproduksjonsteknikker utviklet.",
        "Kanontårnet med 3x 28,3cm kanoner, fotografert i 1963, 5 år før festningen ble nedlagt.",
        "Han ville verken gratulere kineseren eller bli fotografert sammen med ham med medaljene.",
        "Fotoutstillingen åpner i Bergen lørdag, og fotografen stiller ut 40 bilder.",
        "Politiet i Sørvest meldte på Twitter klokka 0.52 at tre hus ble evakuert.",
        "– Vi har tett dialog med rederiet, sier Korme til NTB.",
        "Avstemningen skjer tirsdag. Av de 169 representantene stemte 88 for.",
        "Av og til må man bare gi seg.",
        "Reuters melder at samtalene fortsetter i morgen.",
        "De hvite hjelmene har bekreftet dødsfallet på sin Facebook-side.",
        "Hun la ut et bilde på Instagram: et foto av hunden.",
        "Han ble utnevnt til kommandør av St. Olavs Orden",
        "Den amerikanske presidenten het den gang Harry S. Truman",
        "Over 10 000 lesere har meldt seg på nyhetsbrevet siden mars.",
        "– Meld deg på nyhetsbrevet, sa redaktøren på møtet.",
        "Leserne kan delta i kommentarfeltet under saken, skriver avisen.",
        "– Du må skrive en kommentar, sa læreren.",
        "Kjøp av abonnement på strøm har økt med 20 prosent.",
        "Emnene på møtet var skole og helse.",
        "Facebook",
        "– Har du tips, send dem til meg på kari@avis.no, sa hun.",
    ],
)
def test_legitimate_sentences_are_kept_whole(line):
    assert clean_lines([line]).lines == [line]


@pytest.mark.parametrize(
    "line, kept",
    [
        (
            "Sander Svendsen er tilbake i Odd. Foto: Teigen, Trond Reidar / NTB scanpix",
            "Sander Svendsen er tilbake i Odd.",
        ),
        ("FOTO: REUTERS/ Karsten Warholm knuste konkurrentene.", "Karsten Warholm knuste konkurrentene."),
        ("FOTO: Foto: AP / NTB scanpix En ødelagt fiskebåt i Ormoc.", "En ødelagt fiskebåt i Ormoc."),
        (
            "Saudi Aramco ble rammet. (Foto: NTB Scanpix) Anlegget brant.",
            "Saudi Aramco ble rammet. Anlegget brant.",
        ),
        ("— Jan Aage Fjortoft 🏳🌈 (@JanAageFjortoft) December 12, 2019", None),
        ("Av Sjur Natvig", None),
        ("MATTHEW CHILDS / REUTERS", None),
        ("(©NTB)", None),
        ("Følg Dagsavisen på Facebook og Twitter!", None),
        ("Bildet viser brannen. pic.twitter.com/BAIqlX1DK5", "Bildet viser brannen."),
        ("Muren i 1989. Foto: NTB scanpix/AP/Jockel Finck", "Muren i 1989."),
        ("Slik så det ut i målområdet lørdag. Erlend Nesje", "Slik så det ut i målområdet lørdag."),
        # a paywall's teaser, share and save buttons, tag lists, sign-up boxes, comment prompts, a contact line
        ("Denne artikkelen er for abonnenter", None),
        ("Les hele saken med VG+. Kjøp abonnement for 1 kr første måned.", None),
        ("Kjøp abonnement", None),
        ("Er du allerede abonnent? Logg inn", None),
        ("Få tilgang til alt innhold på E24. Prøv E24+ i en måned for 1 kr.", None),
        ("Del denne saken:", None),
        ("Facebook Twitter E-post", None),
        ("Lagre", None),
        ("Emner: Strøm Statnett Vestland", None),
        ("Tags: #skred #E8 #Troms", None),
        ("Meld deg på vårt nyhetsbrev og få de viktigste sakene rett i innboksen hver morgen.", None),
        ("Sign up to This is Europe", None),
        ("Vil du delta i debatten? Du må være innlogget for å kommentere. Husk våre debattregler.", None),
        ("Kva meiner du? Skriv ein kommentar under.", None),
        ("Sign in or create your Guardian account to join the discussion", None),
        ("Les òg: Ferjeprisane går ned med 20 prosent", None),
        ("Journalist: Siri Gedde-Dahl | siri@aftenbladet.no", None),
        ("Marit Hommedal Journalist", None),
        ("Denne saken er skrevet av Nordlys. Har du tips? Send e-post til tips@nordlys.no", None),
        (",", None),
    ],
)
def test_each_kind_of_leftover_is_cut(line, kept):
    assert clean_lines([line]).lines == ([kept] if kept else [])


def test_the_seed_article_ends_with_its_story_not_a_teaser():
    [article] = load_file(SEED).articles
    assert "Strategisk splid" not in article.text
    assert article.text.endswith(
        "NATO-generalsekretær Jens Stoltenberg sa at avtalen viser at autoritære makter allierer seg."
    )
    assert article.source == "Geopolitika"


def test_a_headline_like_last_line_stays_when_no_footer_follows():
    lines = ["Avtalen ble signert i går.", "Strategisk splid: Nord-Korea splitter Kina og Russland"]
    assert clean_lines(lines).lines == lines
