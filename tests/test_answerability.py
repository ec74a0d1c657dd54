"""Abstention: a question whose names or numbers no retrieved passage mentions is refused."""

import pytest

from assistant.answering.amounts import asks_for_amount, states_age, states_amount
from assistant.answering.context import AskRequest
from assistant.answering.support import missing_terms
from assistant.core.types import ArticleMeta, Filters
from assistant.testing.corpus import DEMO_QUESTION_EN, DEMO_QUESTION_NB, SEED_ID
from evals.calibrate import choose_missing_rule


def test_missing_terms_finds_names_and_numbers_the_passages_lack():
    passages = ["Moss lufthavn Rygge har vært stengt siden 2016. Nye eiere vil gjenåpne flyplassen."]
    assert missing_terms("Hvor mange passasjerer hadde Gardermoen i 2019?", passages) == [
        "gardermoen",
        "2019",
    ]
    assert missing_terms("When did Moss Airport Rygge close?", passages) == []
    assert missing_terms("Når stengte Rygge i 2016?", passages) == []


def test_an_english_questions_names_are_also_found_as_the_dictionary_writes_them_in_norwegian():
    from assistant.answering.translate import default_translator, names_translation

    passages = ["Paven besøkte Polen i juni, og Litauen i september."]
    question = "When did the Pope visit Poland and Lithuania?"
    assert missing_terms(question, passages) == ["pope", "poland", "lithuania"]  # as written: all missing
    translate = names_translation(default_translator(), "en")
    assert missing_terms(question, passages, translate) == []
    assert missing_terms("What is the capital of Mongolia?", passages, translate) == ["mongolia"]
    assert names_translation(default_translator(), "nb") is None  # a Norwegian question's names as written
    assert names_translation(None, "en") is None


def test_an_english_name_word_counts_as_mentioned_in_any_of_its_norwegian_forms():
    from assistant.answering.translate import default_translator, names_translation

    translate = names_translation(default_translator(), "en")
    passages = [
        "Al Gore fikk Nobels fredspris i 2007. Forsvarsdepartementet strøk ordet fra statsbudsjettet.",
        "Underhuset i Storbritannia stemte over avtalen.",
    ]
    assert missing_terms("Who won the Nobel Peace Prize in 2007?", passages, translate) == []
    assert missing_terms("What did the Ministry of Defence drop?", passages, translate) == []
    assert missing_terms("When did the House of Commons in Great Britain vote?", passages, translate) == []
    # A name word whose forms the passages lack is still missing, and so is a name beside a mapped word.
    assert missing_terms("Which novel won the Brage Prize?", passages, translate) == ["brage"]
    elsewhere = ["Statsbudsjettet ble lagt fram."]
    assert missing_terms("What did the Ministry of Fisheries say?", elsewhere, translate) == [
        "ministry",
        "fisherie",
    ]


def test_the_assistant_counts_an_english_questions_names_through_the_dictionary(assistant):
    import numpy as np

    from assistant.answering.retrieval import Retrieval
    from assistant.core.types import Chunk, Hit

    text = "Paven besøkte Polen i juni."
    chunk = Chunk("a1#0", "a1", 0, text, 0, len(text), 8)
    article = ArticleMeta("a1", "Pavens reise", "2024-06-30", "Test", None, "nb", "h")
    retrieval = Retrieval((Hit(chunk, article, 1.0, 0.9),), np.ones(3), 0.9, {})
    settings = assistant.settings.replace(refuse_missing_terms={"en": 1}, answerable_threshold=0.5)
    with_dictionary = type(assistant)(
        settings, assistant.retriever, assistant.extractive, translator=assistant.translator
    )
    as_written = type(assistant)(settings, assistant.retriever, assistant.extractive)
    assert assistant.translator is not None  # build_assistant gives the assistant the shipped dictionary
    assert with_dictionary.is_answerable(retrieval, "When did the Pope visit Poland?")
    assert not as_written.is_answerable(retrieval, "When did the Pope visit Poland?")
    assert not with_dictionary.is_answerable(retrieval, "When did the Pope visit Mongolia?")


def test_the_rule_is_chosen_within_the_false_refusal_bound():
    pos, neg = [0.9] * 10, [0.9] * 4
    missing = [0] * 9 + [1]
    rule, table = choose_missing_rule(
        pos, neg, missing, [1, 1, 2, 0], 0.8, [list(zip(pos, missing, strict=True))], 0.10
    )
    assert rule == 1 and table[1]["tnr"] == 0.75 and table[1]["tpr"] == 0.9
    missing = [0] * 8 + [1, 1]
    rule, _ = choose_missing_rule(
        pos, neg, missing, [1, 1, 2, 0], 0.8, [list(zip(pos, missing, strict=True))], 0.10
    )
    assert rule == 2  # refusing on one missing term would refuse 20% of answerable questions


def test_the_rule_keeps_the_bound_on_each_large_set_alone_and_counts_the_dense_gate_too():
    # Ten answerable questions, one refused already by the dense threshold: a rule that refuses one more
    # answers 80 %, over the 10 % bound, though it refuses only one of ten by itself.
    pos, neg = [0.9] * 9 + [0.7], [0.9] * 4
    missing = [0] * 8 + [1, 0]
    rule, table = choose_missing_rule(
        pos, neg, missing, [1, 1, 2, 0], 0.8, [list(zip(pos, missing, strict=True))], 0.10
    )
    assert rule == 2 and table[1]["worst_language_answered"] == 0.8
    # Together within the bound, but one large set alone over it: the rule is not taken.
    pos, missing = [0.9] * 20, [0] * 18 + [1, 1]
    groups = [list(zip(pos, missing, strict=True)), list(zip(pos[10:], missing[10:], strict=True))]
    rule, table = choose_missing_rule(pos, neg, missing, [1, 1, 2, 0], 0.8, groups, 0.10)
    assert table[1]["tpr"] == 0.9 and table[1]["worst_language_answered"] == 0.8 and rule == 2


def test_the_bounded_sets_are_the_whole_and_each_set_of_a_hundred_or_more():
    from evals.calibrate import BOUNDED_SET_SIZE, bounded_sets

    sets = ["big"] * BOUNDED_SET_SIZE + ["small"] * 5
    groups = bounded_sets(list(range(len(sets))), lambda k: sets[k])
    assert [len(g) for g in groups] == [BOUNDED_SET_SIZE + 5, BOUNDED_SET_SIZE]


def test_a_near_miss_question_is_refused_with_the_rule_on(assistant):
    strict = type(assistant)(
        assistant.settings.replace(refuse_missing_terms={"en": 1, "nb": 1}),
        assistant.retriever,
        assistant.extractive,
        None,
    )
    answer = strict.ask(AskRequest("How many troops did Gardermoen send to Pyongyang in 2019?"))
    assert not answer.answerable and answer.citations == () and "couldn't find" in answer.answer
    assert strict.ask(AskRequest("What does Article 4 commit each side to?")).answerable


def test_an_acronym_genitive_is_the_acronym():
    passages = ["Brattvik IL får nytt kunstgressstadion med plass til 3200 tilskuere."]
    assert missing_terms("Hvor mange tilskuere får Brattvik ILs nye stadion plass til?", passages) == []


@pytest.mark.parametrize("question", [DEMO_QUESTION_EN, DEMO_QUESTION_NB])
def test_a_source_filter_that_holds_no_answer_is_not_in_the_archive(assistant, question):
    elsewhere = assistant.ask(AskRequest(question, filters=Filters(sources=("NorQuAD news",))))
    assert not elsewhere.answerable and elsewhere.citations == ()
    there = assistant.ask(AskRequest(question, filters=Filters(sources=("Geopolitika",))))
    assert there.answerable and there.citations[0].article_id == SEED_ID


def test_a_filter_that_keeps_the_answer_changes_nothing(assistant):
    plain = assistant.ask(AskRequest(DEMO_QUESTION_NB))
    dated = assistant.ask(
        AskRequest(DEMO_QUESTION_NB, filters=Filters(since="2024-11-01", languages=("nb",)))
    )
    assert dated.answerable and dated.answer == plain.answer


def test_filters_admit_articles_as_the_store_does():
    meta = ArticleMeta("a", "t", "2024-11-27", "Geopolitika", None, "nb", "h")
    undated = ArticleMeta("b", "t", None, "Geopolitika", None, "nb", "h")
    assert Filters().admits(meta) and Filters(sources=("Geopolitika",), languages=("nb",)).admits(meta)
    assert not Filters(sources=("NorQuAD news",)).admits(meta) and not Filters(languages=("en",)).admits(meta)
    assert Filters(since="2024-11-27", until="2024-11-27").admits(meta)
    assert not Filters(since="2024-11-28").admits(meta) and not Filters(until="2024-11-26").admits(meta)
    assert not Filters(since="2000-01-01").admits(undated) and Filters(until="2000-01-01").admits(undated)
    assert Filters(articles=("a", "c")).admits(meta) and not Filters(articles=("b",)).admits(meta)


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("Hvor mange missiler har Nord-Korea levert til Russland?", True),
        ("How much did Manchester City pay for Haaland?", True),
        ("Hva koster forsvarsavtalen?", True),
        ("What did the new library cost to build?", True),
        ("Hvem vet hva de har kostet norske skattebetalere?", False),  # asks who, though it says "kostet"
        ("Hva med Japan? Hvor mange soldater sender Russland?", False),  # a follow-up's own words come first
        ("What does Article 4 commit each side to?", False),
        ("For how many years is the treaty valid?", True),
        ("Hvor stort er Nord-Koreas forsvarsbudsjett?", True),
        ("Hva avgjør hvor mye energi et vannkraftverk kan lage?", False),  # asks what decides it
    ],
)
def test_a_question_asks_for_an_amount_by_its_own_first_sentence(question, asks):
    assert asks_for_amount(question) is asks


@pytest.mark.parametrize(
    ("quote", "states"),
    [
        ("Det har kostet 2,5 milliarder kroner.", True),
        ("Rundt 12 000 billetter ble solgt.", True),
        ("Han må sitte inne i fire måneder.", True),
        ("Putins første besøk på 24 år.", True),
        ("2000 mennesker demonstrerte.", True),  # a year-like number that counts people
        ("Temperaturen var null grader.", True),
        ("Avtalen fra 1961 ble annullert i 1990.", False),  # years date, they do not count
        ("Moss lufthavn Rygge har vært stengt siden 2016.", False),
        ("De har funnet rester av nordkoreanske missiler i landet.", False),
        ("Produsentene må ha null- og lavutslippsbiler i porteføljen.", False),  # a kind, not a count
        ("De bor i en tre-roms leilighet.", False),
        ("Det tar tre-fire uker.", True),  # a range
        ("Kampen endte 2-1.", True),
    ],
)
def test_a_quote_states_an_amount_with_a_numeral_or_a_number_word_but_not_a_year(quote, states):
    assert states_amount(quote) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        ("Putins første besøk til Nord-Korea på 24 år.", "How many troops will Russia send?", False),
        ("Putins første besøk til Nord-Korea på 24 år.", "Hvor mange soldater sender Russland?", False),
        ("Han må sitte inne i fire måneder.", "Hvor mange fanger slapp ut?", False),
        # a question for a duration or an age is answered by one
        ("Putins første besøk til Nord-Korea på 24 år.", "How many years had passed since the visit?", True),
        ("Han er 31 år gammel.", "Hvor mange år er han?", True),
        ("Hun ble 18 år i fjor.", "How old is she?", True),
        # "how much" may ask for time ("Hvor mye var igjen av kampen?": "Kun åtte sekunder")
        ("Kun åtte sekunder gjensto av kampen.", "Hvor mye var igjen av kampen?", True),
        # a count beside a duration is a count; "times" is no unit of time
        ("I løpet av to år kom 400 soldater.", "How many soldiers came?", True),
        ("Han vant three times.", "How many times did he win?", True),
    ],
)
def test_a_question_that_counts_things_is_not_answered_by_a_duration(quote, question, states):
    assert states_amount(quote, question) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        (
            "Norwegian hadde et driftsresultat på minus 3,8 milliarder kroner i 2018.",
            "What percentage return?",
            False,
        ),
        ("Dermed mangler nærmere 40.000 av dem en eller to doser.", "Hvor stor andel tar vaksinen?", False),
        ("Vindkraft står for rundt to prosent.", "Hvor stor andel er vindkraft?", True),
        ("Avkastningen ble 5,2 %.", "What percentage return did the fund achieve?", True),
        ("Ni av ti tiåringer har en smarttelefon.", "Hvor stor andel av tiåringer har mobil?", True),
        ("Halvparten av dem kom.", "What share of them came?", True),
        ("Hver tredje nordmann stemte.", "Hvor mange prosent stemte?", True),
        ("Når de blir 13, har alle det.", "Hvor stor andel av 13-åringer har mobiltelefon?", True),
        ("Vaksinen er gitt til alle jenter i sjuende klasse.", "Hvor stor andel tar vaksinen?", False),
        (
            "Sp (13,2), MDG (7,6) og SV (4,6) skal forhandle.",
            "What percentage of the vote did MDG get?",
            True,
        ),
        # a sum still answers a question for a sum
        (
            "Norwegian hadde et driftsresultat på minus 3,8 milliarder kroner i 2018.",
            "Hvor mye tapte Norwegian?",
            True,
        ),
    ],
)
def test_a_question_for_a_share_is_answered_by_a_percentage_or_a_fraction(quote, question, states):
    assert states_amount(quote, question) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        (
            "Musk har sagt at prisen starter på om lag 50.000 dollar, litt over 450.000 norske kroner.",
            "How many pre-orders did Tesla receive in the first days after its launch?",
            False,
        ),
        ("Norge havner på rundt 68 gram/km i 2019.", "Hvor mange nye elbiler ble registrert i 2019?", False),
        ("Løypa ble kortet ned fra 3122 meter til 2172 meter.", "Hvor mange VM-gull har han?", False),
        ("Billetten koster $ 40.", "How many tickets were sold?", False),
        ("Gjelda er på 3,8 milliarder kroner.", "Hvor mange kreditorer har festivalen?", False),
        # a count beside a sum is a count; a percentage can count people
        ("De solgte 12 000 billetter for 40 millioner kroner.", "Hvor mange billetter ble solgt?", True),
        ("40 prosent av nordmenn mener det.", "Hvor mange nordmenn mener det?", True),
        # a question that counts in money or a measure is answered by it
        ("Det kostet 50 kroner.", "Hvor mange kroner kostet det?", True),
        ("Fangsten var 300 tonn.", "How many tonnes of cod were caught?", True),
        ("De fikk 2 millioner dollar.", "Hvor mange penger fikk de?", True),
    ],
)
def test_a_question_that_counts_things_is_not_answered_by_a_sum_or_a_measure(quote, question, states):
    assert states_amount(quote, question) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        (
            "– Rundt 681 mennesker, hvorav 537 er barn, har testet positivt for hiv i Ratodero.",
            "What is the population of the Pakistani city of Ratodero?",
            False,
        ),
        ("Kommunen har 40 ansatte i rådhuset.", "Hvor mange innbyggere har Rauma kommune?", False),
        (
            "Per 2007 hadde byen en befolkning på 7 397 innbyggere.",
            "Hvor mange mennesker bor i El Alamein?",
            True,
        ),
        (
            "Med et folketall på omkring 7,26 millioner er Israel ...",
            "How many inhabitants does Israel have?",
            True,
        ),
        ("Om lag 7500 mennesker bor i Rauma.", "Hva er folketallet i Rauma?", True),
        # people counted for something else are still counted
        ("Rundt 681 mennesker har testet positivt for hiv.", "How many people tested positive?", True),
    ],
)
def test_a_question_for_a_population_is_answered_by_a_count_of_who_lives_there(quote, question, states):
    assert states_amount(quote, question) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        # a count of others is nobody's age
        ("Kim Il-sungs regime myrdet anslagsvis 1,6 millioner mennesker.", "Hvor gammel er han?", False),
        ("Kim Jong-un overtok i 2011.", "How old is Kim Jong Un?", False),
        ("Nils Olav Lausund (38) er DJ.", "Hvor gammel er DJ Nils Noa?", True),
        ("Pete Buttigieg fikk jobben da han var 29 år.", "Hvor gammel var Buttigieg da?", True),
        ("De to mennene som er pågrepet er 18 og 19 år år gamle.", "How old are the suspects?", True),
        ("Eleonore ble hertuginne da hun var femten år gammel.", "How old was Eleanor?", True),
        ("Den dømte mannen er i dag i 60-årene.", "Hvor gammel er den dømte?", True),
        ("Kim Jong-un er født i 1984.", "Hvor gammel er Kim Jong-un?", True),
        ("Han vant nordisk da han var atten.", "Hvor gammel var Haakon Skaanes da han vant nordisk?", True),
    ],
)
def test_a_question_for_an_age_is_answered_by_a_count_of_years(quote, question, states):
    assert asks_for_amount(question)
    assert states_amount(quote, question) is states


@pytest.mark.parametrize(
    ("quote", "question", "states"),
    [
        # a count of the planes is no price of them
        (
            "Hensikten er å sette flyplassen i stand til å ta imot fire kampfly, som de nye F-35.",
            "Hva koster de nye kampflyene?",
            False,
        ),
        ("Totalregningen ligger på rundt 16 milliarder kroner.", "Hva koster de nye kampflyene?", True),
        ("Museet åpner i 2020 med 5000 verk.", "How much does the new National Museum cost?", False),
        ("Museet koster 6,1 milliarder.", "How much does the new National Museum cost?", True),
        ("Tine Skummet melk kostet 14,90 ved slutten av fjoråret.", "Hva kostet skummet melk i fjor?", True),
        ("Ny videregående skole i Sør-Troms til en milliard.", "Hvor mye skal skolen koste?", True),
        (
            "Den koster nå 39,90 kroner, en oppgang på 8,1 prosent.",
            "How much more does minced meat cost?",
            True,
        ),
        ("Prisen steg med 8 prosent.", "Hvor mye dyrere ble prisen?", True),
        ("De betalte $ 400 for huset.", "Hvor mye betalte de for huset?", True),
        ("Inngangen er gratis for alle under 18.", "Hva koster billetten?", True),
        (
            "Røkke har hatt null i inntekt og derfor betalt null i skatt.",
            "Hvor mye har de betalt i skatt?",
            True,
        ),
        # a question that counts things is answered by a count, as before
        ("Det ble solgt 300 billetter.", "Hvor mange billetter ble solgt til den prisen?", True),
    ],
)
def test_a_question_for_a_price_is_answered_by_a_sum(quote, question, states):
    assert asks_for_amount(question)
    assert states_amount(quote, question) is states


def test_a_question_for_a_population_asks_for_an_amount():
    assert asks_for_amount("What is the population of Ratodero?")
    assert asks_for_amount("Hva er innbyggertallet i Rauma?")
    assert not asks_for_amount("Hvorfor faller befolkningen i Rauma?")


@pytest.mark.parametrize(
    ("text", "gives_age"),
    [
        ("stortalentet Helene Fossesholm (18) av med seieren", True),
        ("den 63 år gamle kurdisk-irakiske flyktningen", True),
        ("23-åringen peiset på", True),
        ("a 31-year-old striker", True),
        ("Putins første besøk til Nord-Korea på 24 år", False),  # a duration
        ("Bildet er tatt i 2018 (foto: NTB)", False),
    ],
)
def test_an_age_is_read_as_news_writes_it(text, gives_age):
    assert states_age(text) is gives_age


def test_a_question_for_an_amount_the_article_does_not_give_is_not_in_the_archive(assistant):
    # The seed article is about the missiles and counts none of them; it does count the years since Putin's visit.
    missiles = assistant.ask(AskRequest("Hvor mange missiler har Nord-Korea levert til Russland?"))
    assert not missiles.answerable and missiles.citations == ()
    assert (
        missiles.answer
        == "Jeg fant ikke dette i arkivet. Ingen av tekstene jeg fant, oppgir tallet det spørres om."
    )
    years = assistant.ask(AskRequest("How many years had passed since Putin last visited North Korea?"))
    assert years.answerable and any("24 år" in c.quote for c in years.citations)
    # the 24 years count no troops
    troops = assistant.ask(
        AskRequest("How many troops will Russia send to North Korea under the new defence pact?")
    )
    assert not troops.answerable and troops.citations == (), troops.answer


def test_no_train_question_for_an_amount_loses_its_gold_sentence_to_the_duration_rule():
    """NorQuAD train questions (Bokmål, and their English versions) whose gold sentence states an amount still
    find it stated when the question is taken into account: none counts things and is answered by a duration."""
    import json

    from evals.datasets import DATA, split_keys
    from evals.train import train_items

    held_out = split_keys()
    items = train_items(held_out["validation"] | held_out["test"])
    gold = {item.id: item.gold_passages[0] for item in items}
    asked = [(item.question, item.id) for item in items]
    for path in sorted(DATA.glob("norquad_train_en*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            written = json.loads(line)
            asked.append((written["question"], f"nq-{written['key']}"))
    checked = [
        (question, gold[item_id])
        for question, item_id in asked
        if item_id in gold and asks_for_amount(question) and states_amount(gold[item_id])
    ]
    assert len(checked) > 400  # both languages' questions were read
    assert [pair for pair in checked if not states_amount(pair[1], pair[0])] == []
