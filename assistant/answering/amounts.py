"""Whether a question asks for an amount ("Hvor mange missiler ...?", "How much did ... cost?"), and whether a
quote states one.

The unanswerable questions people ask are near misses, and many of them ask for an amount the archive does not
give: "Hvor mange missiler har Nord-Korea levert til Russland?" reaches the article about the missiles and would
quote "… har funnet rester av nordkoreanske missiler i landet", which counts nothing. An answer to such a question
must state a number; a year ("i 1990", "siden 2016") dates something and counts nothing, so it does not count. A
question that counts things ("How many troops will Russia send?") is not answered by a duration or an age either:
"… Putins første besøk til Nord-Korea på 24 år" counts years; nor by a sum or a measure: "How many pre-orders did Tesla
receive?" is not answered by "… starter på om lag 50.000 dollar"; nor one that asks for a share ("What percentage
return …?", "Hvor stor andel …?") by a sum: "… et driftsresultat på minus 3,8 milliarder kroner" is no share; nor
one for a population by a count of others: "Rundt 681 mennesker … har testet positivt for hiv i Ratodero" is not how
many live there; nor one for a price by a count: "Hva koster de nye kampflyene?" is not answered by "… å ta imot fire
kampfly, som de nye F-35"."""

from __future__ import annotations

import re

from assistant.answering.parts import part_number_spans

# At the question's start, after "og"/"and" or a preposition ("I hvor mange land", "For how many years"): "Hva avgjør
# hvor mye energi ...?" asks what decides it.
_QUESTION_START = (
    r"^\W*(?:(?:og|and|men|but)\s+)?(?:(?:i|på|for|av|med|til|etter|over|in|on|of|by|with|to|at|after)\s+)?"
)
_ASKS_FOR_AMOUNT = re.compile(
    _QUESTION_START
    + r"(hvor (mange|mye|stor|stort|store|høy|høyt|gammel|gamle)|how (many|much|large|big|tall|high|old)|"
    r"hva (koster|kostet|kostar|kosta)|what (does|did|do|will) .+ cost|what (share|proportion|percentage))\b",
    re.IGNORECASE,
)
# "Hvor stor andel …?", "What percentage …?": a share, which a quote gives as a percentage, a fraction, a whole as
# what has or is ("har alle det", not "gitt til alle jenter") or a poll's decimal in brackets ("MDG (7,6)").
_ASKS_FOR_SHARE = re.compile(
    _QUESTION_START
    + r"(hvor (mange prosent|stor andel|stor prosent|stor prosentandel|stor del|høy andel|høy prosent)|"
    r"what (share|proportion|percentage|per ?cent)|how (much|many) per ?cent)\b",
    re.IGNORECASE,
)
_STATES_SHARE = re.compile(
    r"%|\b(prosent\w*|andel\w*|halvpart\w*|tredjedel\w*|tredel\w*|fjerdedel\w*|femtedel\w*|tidel\w*|"
    r"per ?cent|percentage|half|third|quarter|fifth)\b|\b(av|of|out of) (to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|"
    r"hundre|two|three|four|five|six|seven|eight|nine|ten|hundred|\d+)\b|\bhver (annen|andre|tredje|fjerde|femte|"
    r"tiende)\b|\b(every|one in) (second|other|third|fourth|fifth|tenth|\d+)\b|"
    r"\b(flertallet|de fleste|majority)\b|\b(har|hadde|er|var|fikk) (alle|ingen)\b|\b(alle|ingen) (har|hadde|er|var|fikk)\b|"
    r"\(\d{1,2},\d\)",
    re.IGNORECASE,
)
# "How many troops …?", "Hvor mange soldater …?": what is counted is things, unless the question names a unit of time
# or an age ("Hvor mange år …?", "How many days old …?").
_COUNTS = re.compile(_QUESTION_START + r"(hvor mange|how many)\b", re.IGNORECASE)
_TIME_UNIT = (
    r"år|års|året|årene|måned|måneder|måneders|månedene|uke|uker|ukers|ukene|dag|dager|dagers|dagene|døgn|time|"
    r"timer|timers|timene|minutt|minutter|minutters|sekund|sekunder|sekunders|"
    r"years?|months?|weeks?|days?|hours?|minutes?|seconds?"
)
_ASKS_ABOUT_TIME = re.compile(
    rf"\b({_TIME_UNIT}|gammel|gamle|alder|old|age|aged|lenge|long)\b", re.IGNORECASE
)
# "Hvor gammel er hun?", "How old is he?"; news gives an age as "Helene Fossesholm (18)", "den 63 år gamle …",
# "23-åringen", "aged 31", "a 31-year-old".
_ASKS_FOR_AGE = re.compile(_QUESTION_START + r"(hvor (gammel|gamle)|how old)\b", re.IGNORECASE)
_STATES_AGE = re.compile(
    r"\(\d{1,3}\)|\b\d{1,3}[ -]?(år|års) (gammel|gamle)\b|\b\d{1,3}-åring|\baged \d{1,3}\b|\b\d{1,3}[ -]years?[ -]old\b",
    re.IGNORECASE,
)
# An age given as a count of years more loosely than `_STATES_AGE` ("var 29 år", "på fire år", "18 og 19 år", "i
# 60-årene", "da han var atten") or a birth, which a question for an age takes and no other number: "Kim Il-sungs regime myrdet anslagsvis
# 1,6 millioner mennesker" gives nobody's age.
_AGE_WORDS = (
    r"(?:en|ett|to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|elleve|tolv|tretten|fjorten|femten|seksten|sytten|atten|"
    r"nitten|tjue|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|eighteen|nineteen|twenty)"
)
_STATES_YEARS_OF_AGE = re.compile(
    rf"\(\d{{1,3}}\)|\b(?:\d{{1,3}}|{_AGE_WORDS})[ -]?(?:år|års|years?)\b|"
    r"\b\w+-?åring|\b\d0-årene\b|\b\d0s\b|\baged \d|\b(?:født|fødd|born)\b|\b(?:fylte|fyller|turned|turns) \d|"
    rf"\b(?:da|når|when) (?:han|hun|he|she) (?:var|was) (?:\d{{1,3}}|{_AGE_WORDS})\b",
    re.IGNORECASE,
)
_FOLLOWED_BY_TIME_UNIT = re.compile(rf"\s*({_TIME_UNIT})\b", re.IGNORECASE)
# Nor by a sum or a measure ("50.000 dollar", "3,8 milliarder norske kroner", "68 gram/km"), unless the question
# counts in one ("Hvor mange kroner ...?", "How many tonnes ...?"). A percentage can count people, so it stays.
_CURRENCY = (
    r"kroner|kroners|kronene|kr|nok|dollar|dollars|usd|euro|euros|eur|pund|pounds|yen|rubler|roubles|rubles"
)
_MONEY_OR_MEASURE_UNIT = (
    rf"{_CURRENCY}|"
    r"gram|kilo|kilogram|kg|tonn|tonnes|tons|km|kilometer|kilometres|kilometers|meter|metres|meters|liter|litres|"
    r"liters|twh|gwh|kwh|mwh|mw|gw|grader|degrees"
)
_MULTIPLIER = r"tusen|millioner|million|millions|milliarder|milliard|mill\.|mrd\.|thousand|billion|billions"
_NATIONALITY = r"(?:(?:norske|amerikanske|svenske|danske|us)\s+)?"  # "3,8 milliarder norske kroner"
_FOLLOWED_BY_MONEY_OR_MEASURE = re.compile(
    rf"\s*(?:(?:{_MULTIPLIER})\s+)?{_NATIONALITY}({_MONEY_OR_MEASURE_UNIT})\b", re.IGNORECASE
)
_PRECEDED_BY_CURRENCY = re.compile(r"([$€£]|\b(kr|nok|usd|eur)\.?)\s*$", re.IGNORECASE)
_ASKS_IN_MONEY_OR_MEASURE = re.compile(rf"\b({_MONEY_OR_MEASURE_UNIT}|penger|money)\b", re.IGNORECASE)
_NUMBER_WORDS = (
    r"null|én|ett|to|tre|fire|fem|seks|sju|syv|åtte|ni|ti|elleve|tolv|tretten|fjorten|femten|seksten|sytten|atten|"
    r"nitten|tjue|tretti|førti|femti|seksti|sytti|åtti|nitti|hundre|tusen|millioner|million|milliarder|milliard|"
    r"dusin|titalls|tjuetalls|tredvetalls|hundretalls|hundrevis|tusenvis|dusinvis|halvparten|dobbelt|dobbelte|"
    r"tredel|tredjedel|kvart|"
    r"zero|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    r"eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundreds|hundred|thousands|thousand|"
    r"millions|billions|billion|dozens|dozen|half|twice|double|third|quarter"
)
# A numeral with its thousands separators ("12 000", "1.500") and decimals ("2,5"), or a number word.
_NUMBER = re.compile(
    r"\d+(?:[ \u00a0\u202f.,]\d{3}(?!\d))*(?:[.,]\d+)?|\b(?:" + _NUMBER_WORDS + r")\b", re.IGNORECASE
)
# A number word that begins a compound ("null- og lavutslippsbiler", "tre-roms") names a kind, not a count; one
# before another number word is a range ("tre-fire").
_BEGINS_A_COMPOUND = re.compile(r"-(?!\s*(?:" + _NUMBER_WORDS + r")\b)", re.IGNORECASE)
_YEAR = re.compile(r"(1[5-9]\d\d|20\d\d)")
# The words before a number that make it a year: "i 1990", "siden 2016", "15. mai 2019", "høsten 2018".
_BEFORE_A_YEAR = re.compile(
    r"\b(i|år|året|fra|siden|til|før|etter|innen|mellom|og|in|since|from|to|until|before|after|by|between|and|"
    r"of|januar|februar|mars|april|mai|juni|juli|august|september|oktober|november|desember|january|february|"
    r"march|may|june|july|october|december|våren|sommeren|høsten|vinteren|spring|summer|autumn|fall|winter|"
    r"sesongen|season)\s*$",
    re.IGNORECASE,
)


# "Hvor mange innbyggere har Rauma?", "What is the population of Ratodero?": a count of those who live there, which
# a quote gives as such ("en befolkning på 7 397", "folketallet", "bor"), not as a count of the town's sick.
_ASKS_FOR_POPULATION = re.compile(
    _QUESTION_START + r"(hvor mange (innbyggere|bor|bodde|(mennesker|personer|folk) (bor|bodde))|"
    r"(hva|hvor (stor|høy|høyt|stort)) (er|var) (befolkningen|folketallet|innbyggertallet)|"
    r"how many (inhabitants|residents|people (live|lived|living))|what (is|was) the population|"
    r"how (large|big) (is|was) the population)\b",
    re.IGNORECASE,
)
_STATES_POPULATION = re.compile(
    r"\b(innbygger\w*|befolkning\w*|folketall\w*|folkemengde\w*|bor|bodde|bosatt\w*|\w*boende|bopel|population|inhabitants|"
    r"residents|live|lives|lived)\b",
    re.IGNORECASE,
)


# "Hva koster …?", "How much did … cost?", "Hvor mye betalte de …?": a price, which a quote gives as a sum ("16
# milliarder kroner", "$ 50", "2,5 millioner", "14,90", "en milliard"), as a change of one ("en oppgang på 8,1 prosent") or as nothing to pay.
_ASKS_FOR_PRICE = re.compile(
    _QUESTION_START + r"(hva|hvor mye|kor mykje|what|how much)\b.*\b(koste\w*|kosta\w*|kostnad\w*|pris\w*|"
    r"betal\w*|cost|costs|costing|price|prices|pay|paid|pays)\b",
    re.IGNORECASE,
)
_FOLLOWED_BY_MONEY_OR_PERCENT = re.compile(
    rf"\s*(?:(?:{_MULTIPLIER})\b|{_NATIONALITY}(?:{_CURRENCY}|øre)\b|%|prosent\w*|per ?cent\b)", re.IGNORECASE
)
# A number written as prices are ("14,90"), or one that is itself a large sum ("en milliard"), states one alone.
_A_SUM_ALONE = re.compile(
    r"\d+[.,]\d\d|tusen|millioner|million|millions|milliarder|milliard|thousand|billion|billions",
    re.IGNORECASE,
)
_STATES_NOTHING_TO_PAY = re.compile(
    r"\b(gratis|kostnadsfri\w*|free of charge|for free|costs nothing|(betal\w*|paid|pays?) (null|ingenting|nothing))\b",
    re.IGNORECASE,
)


def asks_for_amount(question: str) -> bool:
    """The question's own first sentence (a follow-up's standalone form ends with the question before it) asks
    how many, how much, how large, how old, what something costs or what a place's population is."""
    asked = _first_sentence(question)
    return bool(_ASKS_FOR_AMOUNT.search(asked) or _ASKS_FOR_POPULATION.search(asked))


def states_amount(text: str, question: str = "") -> bool:
    """Some number in `text` counts something: a numeral or a number word, less the years, the numbers of numbered
    parts ("artikkel 51", `parts.py`) and the number words that begin a compound ("null- og lavutslippsbiler"), and,
    for a `question`
    that counts things, less the durations and ages ("24 år") and the sums and measures ("50.000 dollar", "68
    gram/km") unless it counts in them; for one that asks for an age, only a count of years or a birth ("var 29 år",
    "(18)", "født"); for one that asks for a price, only a sum, a percentage or nothing to pay
    ("gratis"); for one that asks for a share, a percentage or a fraction or a whole ("96
    prosent", "ni av ti", "halvparten", "alle"); for one that asks for a population, only in a quote that speaks of
    who lives there."""
    asked = _first_sentence(question)
    if _ASKS_FOR_SHARE.search(asked):
        return bool(_STATES_SHARE.search(text))
    if _ASKS_FOR_AGE.search(asked):
        return bool(_STATES_YEARS_OF_AGE.search(text))
    asks_for_price = bool(_ASKS_FOR_PRICE.search(asked)) and not _COUNTS.search(asked)
    if asks_for_price and _STATES_NOTHING_TO_PAY.search(text):
        return True
    if _ASKS_FOR_POPULATION.search(asked) and not _STATES_POPULATION.search(text):
        return False
    counts = bool(_COUNTS.search(asked))
    counts_things = counts and not _ASKS_ABOUT_TIME.search(asked)
    counts_in_units = counts and not _ASKS_IN_MONEY_OR_MEASURE.search(asked)
    part_numbers = part_number_spans(text)
    for match in _NUMBER.finditer(text):
        number = match.group().strip()
        if any(start < match.end() and match.start() < end for start, end in part_numbers):
            continue  # "Artikkel 51" names an article, it counts nothing
        if _YEAR.fullmatch(number) and _BEFORE_A_YEAR.search(text[: match.start()]):
            continue
        if not number[0].isdigit() and _BEGINS_A_COMPOUND.match(text, match.end()):
            continue
        if counts_things and _FOLLOWED_BY_TIME_UNIT.match(text, match.end()):
            continue
        if counts_in_units and (
            _FOLLOWED_BY_MONEY_OR_MEASURE.match(text, match.end())
            or _PRECEDED_BY_CURRENCY.search(text[: match.start()])
        ):
            continue
        if asks_for_price and not (
            _A_SUM_ALONE.fullmatch(number)
            or _FOLLOWED_BY_MONEY_OR_PERCENT.match(text, match.end())
            or _PRECEDED_BY_CURRENCY.search(text[: match.start()])
        ):
            continue
        return True
    return False


def asks_for_age(question: str) -> bool:
    return bool(_ASKS_FOR_AGE.search(_first_sentence(question)))


def states_age(text: str) -> bool:
    """`text` gives someone's age as news writes it ("Helene Fossesholm (18)", "den 63 år gamle flyktningen")."""
    return bool(_STATES_AGE.search(text))


def _first_sentence(question: str) -> str:
    return question.split("?", 1)[0]
