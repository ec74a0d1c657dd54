"""The reranking stage, its features, the English->Norwegian dictionary and the sentence picker, on the small
real index of tests/conftest.py. Training is not run here (`make train` does it); the shipped model files are
loaded and checked against the feature lists of the code."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.answering.context import AskRequest
from assistant.answering.extractive import ExtractiveAnswerer, SentenceVectors
from assistant.answering.features import (
    PICKER_FEATURES,
    RERANK_FEATURES,
    SentenceSpan,
    TermBits,
    TermWeights,
    analyse_chunk,
    analyse_hits,
    make_query,
    picker_features,
    rerank_features,
)
from assistant.answering.furniture import in_table, is_furniture
from assistant.answering.picker import SentencePicker, pick
from assistant.answering.rerank import MODELS, RERANK_MODE, LightGBMModel, Reranker, english_file
from assistant.answering.translate import Translator, unknown_words
from assistant.core.errors import ConfigError
from assistant.core.language import detect_language
from assistant.core.types import ArticleMeta, Chunk, Hit
from assistant.testing.corpus import SEED_ID

SEED_QUESTION = "Hva inneholder forsvarspakten mellom Nord-Korea og Russland?"


def test_dictionary_translates_english_words_by_stem_and_leaves_names_out():
    translator = Translator.load()
    words = translator.translate("Who won the election in the city where Erna Solberg was killed?").split()
    assert {"valg", "by"} <= set(words)
    assert "drepe" in words or "drap" in words  # "killed" found through the stem of "kill"
    assert "erna" not in words and "solberg" not in words  # names stay as written, in the question itself


def test_dictionary_translates_capitalised_words_it_knows():
    words = Translator.load().translate("What does Article 4 commit Russia and North Korea to?").split()
    assert {"artikkel", "russland"} <= set(words)


def test_dictionary_phrases_add_their_translation_beside_their_words():
    translator = Translator(
        {"prime": ("prim",), "minist": ("minister",), "barent": ("barents",), "sea": ("hav",)},
        phrases={("prime", "minist"): ("statsminister",), ("barent", "sea"): ("barentshavet",)},
    )
    words = translator.translate("Who are the prime ministers of the Nordic countries?").split()
    assert {"statsminister", "prim", "minister"} <= set(words)  # "ministers" matches by stem
    assert "barentshavet" in translator.translate("When does drilling in the Barents Sea begin?").split()
    # the words of a phrase apart are not the phrase
    assert "statsminister" not in translator.translate("The minister is prime.").split()


def test_shipped_dictionary_knows_phrases_and_skips_function_word_ones():
    translator = Translator.load()
    assert "statsminister" in translator.translate("Who is Denmark's incoming prime minister?").split()
    assert "barentshavet" in translator.translate("When does the season in the Barents Sea begin?").split()
    # a phrase that opens with a function word names nothing: "in front of" is not searched as "foran"
    assert "foran" not in translator.translate("He was pushed in front of a train.").split()


def test_dictionary_conversion_keeps_short_phrases_and_drops_sayings(tmp_path):
    import gzip

    from scripts.freedict_convert import convert

    entries = {
        "prime minister": "prime minister /praɪm/ <n>\nstatsminister\n",
        "red card": "red card <n>\nrødt kort\n",
        "all roads lead to rome": "all roads lead to rome\nalle veier fører til Rom\n",
        "sign": "sign <v>\nskilt\n2. signere\n",
    }
    data, index = b"", []
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def encode(n: int) -> str:  # dictd writes offsets and lengths in base-64 digits
        out = ""
        while True:
            out = b64[n % 64] + out
            n //= 64
            if not n:
                return out

    for word, body in entries.items():
        raw = body.encode("utf-8")
        index.append(f"{word}\t{encode(len(data))}\t{encode(len(raw))}")
        data += raw
    (tmp_path / "freedict-eng-nor.dict.dz").write_bytes(gzip.compress(data))
    (tmp_path / "freedict-eng-nor.index").write_text("\n".join(index) + "\n", encoding="utf-8")
    table = convert(tmp_path)
    assert table == {
        "prime minister": ["statsminister"],
        "red card": ["rødt kort"],
        "sign": ["skilt", "signere"],
    }


def test_the_english_flagship_question_ranks_the_seed_article_first_and_quotes_article_4(assistant):
    """ "Article" is translated ("artikkel"), so the BM25 side finds the seed article's Article 4."""
    question = "What does Article 4 commit each side to?"
    assert "artikkel" in assistant.retriever.reranker.lexical_query(question, "en")[0].split()
    answer = assistant.ask(AskRequest(question))
    assert answer.retrieved[0].article.id == SEED_ID
    assert answer.citations and "Artikkel 4" in answer.citations[0].quote


def test_an_english_question_about_the_arms_trade_searches_for_the_norwegian_compound(assistant):
    """FreeDict reads "arms" as the limb ("arm"); the supplement's phrase gives "våpenhandel", the word the seed
    article uses ("Russland og Nord-Korea benekter enhver våpenhandel.")."""
    question = "Who denies the arms trade?"
    assert {"benekte", "våpenhandel"} <= set(
        assistant.retriever.reranker.lexical_query(question, "en")[0].split()
    )
    chunk = assistant.ask(AskRequest(question)).retrieved[0].chunk
    assert chunk.article_id == SEED_ID and "benekter enhver våpenhandel" in chunk.text


def test_the_supplement_adds_words_freedict_lacks_and_changes_none_it_has():
    from assistant.answering.translate import SUPPLEMENT
    from assistant.indexes.lexical import stemmer

    stem = stemmer("en").stemWord
    freedict = Translator.load(supplement=None)
    rows = [line.split("\t") for line in SUPPLEMENT.read_text(encoding="utf-8").splitlines()[1:]]
    assert all(len(row) >= 2 for row in rows)
    entries = [row for row in rows if " " not in row[0]]
    phrases = [row[0] for row in rows if " " in row[0]]
    assert len(entries) > 100 and phrases
    assert not [e[0] for e in entries if freedict.translate(e[0])]  # FreeDict knows none of them by its stem
    assert len({stem(e[0]) for e in entries}) == len(entries)
    # FreeDict has none of the phrases: it reads their words otherwise ("arms": the limb)
    assert all(freedict.translate(p) == freedict.translate(p, phrases=False) for p in phrases)
    both = Translator.load()
    assert len(both) == len(freedict) + len(entries)
    assert {"benekte", "våpenhandel"} <= set(both.translate("Who denies the arms trade?").split())
    assert {"avtale", "traktat"} <= set(both.translate("Who signed the treaty?").split())
    assert {"alliert", "frykt"} <= set(both.translate("What did the US and its Asian allies fear?").split())
    assert "vant" in both.translate("Who won the race?").split()  # an irregular form the stemmer leaves as is
    for question in (
        "Who won the election in the city where Erna Solberg was killed?",
        "What is a prime minister?",
    ):
        assert set(freedict.translate(question).split()) <= set(both.translate(question).split())


def test_dictionary_licence_sits_beside_the_data():
    from assistant.answering.translate import DICTIONARY

    licence = DICTIONARY.with_name("freedict-eng-nor.LICENSE.md").read_text(encoding="utf-8")
    assert "CC BY-SA 3.0" in licence and DICTIONARY.read_text(encoding="utf-8").startswith(
        "# English -> Norwegian"
    )


@pytest.mark.parametrize(
    "sentence",
    [
        "FOTO: Rune Sævig TØRT: Så langt i november har det falt 51,1 millimeter nedbør i Bergen.",
        "Ropstad sier han er minister for alle. Foto: Fredrik Hagen / NTB scanpix",
        "Oljeinvesteringene kan ta seg opp i 2019. (Foto: Aleksander Nordahl)",
        "Jonny Enger, her fotografert ved en tidligere anledning.",
        "Her avbildet i en seriekamp mot Midtjylland i desember.",
        "Erling Braut Haaland (t.v.) og landslagstrener Lars Lagerbäck på tirsdagens trening på Ullevaal.",
        "Lørdagens pall i Levi: Mikaela Shiffrin (i midten) vant foran Wendy Holdener (t.v.) og Katharina Truppe.",
        "Miljøpartiets Lan Marie Berg (MDG, f.v.) og Raymond Johansen (Ap) på Rådhuset.",
        "Einar Wilhelmsen (oppe t.h.) overtok som finansbyråd.",
        "Boris Johnson (left) greets Emmanuel Macron outside Downing Street.",
        "Oppdatert i dag 01:39",
        "Her med sin advokat Brynjar Meling.",
        "Her er han sammen med Ingrid Dahl Hovland under bygging av ny E18, i januar 2018.",
        "Publisert 12. mars 2019 14:05",
        "Av Siri Sønstelie",
        "— Erna Solberg (@erna_solberg) 3. mars 2019",
        "Se bildene her pic.twitter.com/abc123",
        "LES OGSÅ: Henrik Kristoffersen tok VM-gull i storslalåm",
        "Les også: «Partnerskapet» mellom Russland og Nord-Korea kan få alvorlige konsekvenser for global sikkerhet",
        "Les òg: Ferjeprisane går ned med 20 prosent",  # Nynorsk
        "Fakta: Julian Assange og Wikileaks",
        "Fakta: Hva er et Si ;D-innlegg?",  # the question the box answers
    ],
)
def test_captions_bylines_tweets_links_and_fact_box_titles_are_furniture(sentence):
    assert is_furniture(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Av undersøkelsen går det fram at halvparten av de spurte har løyet om at de har lest en bok.",
        "Det var 1.373 personer om bord da Viking Sky fikk motorstans ved 14-tiden lørdag.",
        "Kim Jong-un og Vladimir Putin signerte avtalen i Pyongyang.",
        "Fakta: Over 40.000 har signert oppropet for Moss lufthavn Rygge.",  # a fact box's statement
        "Les Misérables settes opp på Det Norske Teatret i høst.",
        "Hun ble fotografert her i fjor sommer, og bildet gikk verden rundt.",
        "Bjørnar Moxnes (R) og Siv Jensen (FrP) møttes i debatt til venstre for talerstolen.",  # parties, not places
        "Han stemte til venstre (i Arbeiderpartiet) hele livet.",
        "Regjeringen har oppdatert planen, og den gjelder fra klokken 12.00.",
        "Her i Fredrikstad vil vi løfte klimautfordringene.",
    ],
)
def test_prose_is_not_furniture(sentence):
    assert not is_furniture(sentence)


CHART = (
    "Etter krigen opptrådte søstrene i klubber i USA og Europa.\n\nHits\n\nÅr\n\nSingle\n\nListeplassering\n\n"
    'US Billboard Hot 100\n\nUSR&B\n\n1938\n\n"Bei Mir Bist Du Schoen"\n\n12'
)


@pytest.mark.parametrize("cell", ["US Billboard Hot 100", '"Bei Mir Bist Du Schoen"', "1938", "12"])
def test_a_tables_cells_are_told_by_the_lines_around_them(cell):
    at = CHART.index(cell)
    assert in_table(CHART, at, at + len(cell))


@pytest.mark.parametrize(
    "text, line",
    [
        (CHART, "Etter krigen opptrådte søstrene i klubber i USA og Europa."),
        (CHART, "Hits"),  # a heading above the table: prose before it
        (
            "Full vestlig storm fredag morgen\n\nDet blåser kraftig. Folk må holde seg inne.",
            "Full vestlig storm",
        ),
        ("Han vant.\n\nStorfornøyd\n\nHan var glad for seieren.", "Storfornøyd"),
        ("Tre spillere:\n\nOla Nordmann scoret to mål i kampen mot Brann.\n\nKari", "Ola Nordmann scoret"),
        ("Han var fornøyd.\n\nTo be continued\n\nUte av Champions League", "Ute av Champions League"),
        ("Ute av Champions League\n\nHaaland scoret to mål.\n\nTo be continued", "Ute av Champions League"),
        ("Han vant.\n\nFørste episode: laks\n\nAndre episode: torsk", "Andre episode: torsk"),
    ],
)
def test_prose_and_headings_are_no_tables_cells(text, line):
    at = text.index(line)
    end = text.index("\n", at) if "\n" in text[at:] else len(text)
    assert not in_table(text, at, end)


def test_neither_chooser_offers_a_tables_cells(embedder):
    """The picker's and the rule's candidates (the reader's quotes: tests/test_reading.py)."""
    hit = Hit(
        Chunk("a#0", "a", 0, CHART, 0, len(CHART), 60), ArticleMeta("a", "", None, None, None, "nb", "h"), 1.0
    )
    prose = ["Etter krigen opptrådte søstrene i klubber i USA og Europa."]
    assert [s.text for s in SentencePicker.spans([hit])] == prose
    rule = ExtractiveAnswerer(SentenceVectors(embedder))
    candidates = rule.candidates("Hvem sang Bei Mir Bist Du Schoen?", (hit,), None, "nb", None)
    assert [c.text for c in candidates] == prose


def test_shipped_models_name_the_features_of_this_code_and_are_small():
    meta = json.loads((MODELS / "models.json").read_text(encoding="utf-8"))
    assert meta["reranker"]["features"] == list(RERANK_FEATURES)
    assert meta["picker"]["features"] == list(PICKER_FEATURES)
    files = [MODELS / meta["reranker"]["file"], MODELS / meta["picker"]["file"]]
    assert sum(f.stat().st_size for f in files) <= 5 * 1024 * 1024
    LightGBMModel(files[0], RERANK_FEATURES)
    LightGBMModel(files[1], PICKER_FEATURES)


def _random_pools(questions: int = 40) -> list:
    """Training examples of random rows, 12 candidates a question, where the "dense" column decides."""
    from evals.train import Example

    rng = np.random.default_rng(0)
    examples = []
    for _q in range(questions):
        rows = rng.normal(size=(12, len(RERANK_FEATURES)))
        labels = np.zeros(12, dtype=np.int32)
        labels[int(np.argmax(rows[:, RERANK_FEATURES.index("dense")]))] = 1  # with noise elsewhere
        examples.append(Example(item=None, hits=tuple(range(12)), query=None, rows=rows, labels=labels))
    return examples


def _small_reranker(path):
    """A reranker file trained on random rows (`_random_pools`): another model than the shipped one."""
    from evals.train import RERANK_PARAMS, train_ranker

    booster = train_ranker(_random_pools(), RERANK_FEATURES, RERANK_PARAMS, 30)
    booster.save_model(str(path))
    return LightGBMModel(path, RERANK_FEATURES)


def test_english_questions_are_ordered_with_their_own_model_and_others_by_the_norwegian_one(
    assistant, tmp_path
):
    shipped = assistant.retriever.reranker
    english = _small_reranker(tmp_path / "reranker-en.txt")
    reranker = Reranker(shipped.model, shipped.translator, shipped.settings, shipped.sentences, english, 0.75)
    pool, query = assistant.retriever.pool("Who signed the defence pact between Russia and North Korea?")
    ordered, rows = reranker.order(query, pool.hits)
    expected = 0.75 * english.predict(rows) + 0.25 * shipped.model.predict(rows)
    assert [h.score for h in ordered] == sorted(expected.tolist(), reverse=True)
    assert not np.allclose(shipped.model.predict(rows), expected)  # the English model counts
    pool, query = assistant.retriever.pool(SEED_QUESTION)
    ordered, rows = reranker.order(query, pool.hits)
    assert [h.score for h in ordered] == sorted(shipped.model.predict(rows).tolist(), reverse=True)
    # What ships: no English model (docs/evals.md, `python -m evals.train_english`), so the Norwegian one orders all.
    named = (
        json.loads((MODELS / "models.json").read_text(encoding="utf-8")).get("english", {}).get("reranker")
    )
    assert (shipped.english_model is None) == (named is None)


def test_a_picker_of_english_questions_answers_them_and_only_them(assistant):
    shipped = assistant.extractive.picker
    english_section = json.loads((MODELS / "models.json").read_text(encoding="utf-8")).get("english", {})
    assert (shipped.english is not None) == ("picker" in english_section)
    # A picker for English questions, told apart by its settings: a second sentence always, and it chooses for
    # no language (the rule answers them).
    english = SentencePicker(
        LightGBMModel(MODELS / "picker.txt", PICKER_FEATURES), 1000.0, shipped.translator, languages=()
    )
    picker = SentencePicker(
        shipped.model,
        shipped.second_margin,
        shipped.translator,
        shipped.document_frequency,
        shipped.languages,
        shipped.sentences,
        shipped.second_same_passage,
        english,
    )
    assert not picker.applies_to("en") and picker.applies_to("nb") and picker.applies_to("nn")
    question = "What does Article 4 commit each side to?"
    hits = assistant.retriever.retrieve(question, 3, mode=RERANK_MODE).hits
    assert english.choose(question, hits, "en") != shipped.choose(question, hits, "en")
    assert picker.choose(question, hits, "en") == english.choose(question, hits, "en")
    norwegian = assistant.retriever.retrieve(SEED_QUESTION, 3, mode=RERANK_MODE).hits
    assert picker.choose(SEED_QUESTION, norwegian, "nb") == shipped.choose(SEED_QUESTION, norwegian, "nb")


def test_an_english_model_named_in_models_json_but_missing_is_an_error(tmp_path):
    named = {"english": {"reranker": {"file": "reranker-en.txt"}}}
    with pytest.raises(ConfigError, match=r"reranker-en\.txt"):
        english_file(named, "reranker", tmp_path)
    assert english_file(named, "picker", tmp_path) is None
    assert english_file({}, "reranker", tmp_path) is None
    (tmp_path / "reranker-en.txt").write_text("", encoding="utf-8")
    assert english_file(named, "reranker", tmp_path) == tmp_path / "reranker-en.txt"


def test_a_model_trained_on_other_features_is_refused():
    with pytest.raises(ConfigError, match="retrain"):
        LightGBMModel(MODELS / "reranker.txt", (*RERANK_FEATURES[:-1], "something_else"))


def test_stems_stored_at_ingest_give_the_features_stemming_now_gives(assistant):
    """The reranker reads each candidate's sentence stems from the lexical snapshot's rows; they must be
    exactly what analysing the chunk now makes of it, or the model would see features it was not trained on."""
    retriever = assistant.retriever
    index = retriever.lexical.current()
    assert index.has_rows
    pool, query = retriever.pool(SEED_QUESTION)
    stored = analyse_hits(pool.hits, index.row)
    fresh = [analyse_chunk(h) for h in pool.hits]
    for a, b in zip(stored, fresh, strict=True):
        # A chunk's terms are its sentences' stems, so title and sentences are all there is to compare.
        assert (a.title_terms, a.sentences) == (b.title_terms, b.sentences)
        assert np.array_equal(a.keys, b.keys)
    assert np.array_equal(
        rerank_features(query, pool.hits, stored), rerank_features(query, pool.hits, fresh), equal_nan=True
    )
    # A row that no longer matches the hit's text is not used.
    changed = replace(
        pool.hits[0], chunk=replace(pool.hits[0].chunk, text=pool.hits[0].chunk.text + " Tillegg.")
    )
    assert analyse_hits([changed], index.row)[0].sentences[-1][2] == analyse_chunk(changed).sentences[-1][2]


def test_pool_features_are_finite_where_defined_and_repeatable(assistant):
    retriever = assistant.retriever
    pool, query = retriever.pool(SEED_QUESTION)
    assert 5 < len(pool.hits) <= 60
    rows = rerank_features(query, pool.hits)
    assert rows.shape == (len(pool.hits), len(RERANK_FEATURES))
    assert np.array_equal(rows, rerank_features(query, pool.hits), equal_nan=True)
    dense = rows[:, RERANK_FEATURES.index("dense")]
    lexical = rows[:, RERANK_FEATURES.index("lexical")]
    assert np.all(np.isfinite(dense) | np.isfinite(lexical))  # every candidate came from one side at least
    coverage = rows[:, RERANK_FEATURES.index("cov_idf")]
    assert np.all((coverage >= 0) & (coverage <= 1))


def test_rerank_mode_reorders_the_pool_and_reports_its_time(assistant):
    from assistant.answering.context import AskRequest

    retriever = assistant.retriever
    pool, _ = retriever.pool(SEED_QUESTION)
    reranked = retriever.retrieve(SEED_QUESTION, 5, mode=RERANK_MODE)
    assert 0 < len(reranked.hits) <= 5
    assert {h.chunk.id for h in reranked.hits} <= {h.chunk.id for h in pool.hits}
    scores = [h.score for h in reranked.hits]
    assert scores == sorted(scores, reverse=True)
    answer = assistant.ask(AskRequest(question=SEED_QUESTION, retriever=RERANK_MODE))
    assert "rerank" in answer.timings_ms and answer.timings_ms["rerank"] >= 0
    assert answer.answerable and answer.citations


def test_english_questions_search_bm25_with_the_translation(assistant):
    reranker = assistant.retriever.reranker
    query, translation = reranker.lexical_query("Who signed the defence pact?", "en")
    assert translation and translation in query
    if reranker.settings.keep_original_terms:
        assert query.startswith("Who signed the defence pact?")
    assert "putin" in reranker.lexical_query("Who did Putin sign the pact with?", "en")[0].lower()
    assert reranker.lexical_query("Hvem signerte forsvarspakten?", "nb") == (None, "")


def test_a_keyword_search_read_as_norwegian_searches_the_words_the_archive_never_uses_in_translation(
    assistant,
):
    """ "Article 4" reads as Bokmål; "Article" is in no passage, so "artikkel" is searched too and the features see
    it as an English question's translation. A longer question, or one whose words the archive uses, is as
    before: the reranker's training pools are made of longer questions."""
    retriever = assistant.retriever
    frequency = retriever.lexical.current().document_frequency
    assert detect_language("Article 4") in ("nb", "nn")
    assert unknown_words("Article 4", frequency) == ["Article"]
    query, translation = retriever.reranker.lexical_query("Article 4", "nb", frequency)
    assert translation == "artikkel" and query.split() == ["Article", "4", "artikkel"]
    assert retriever.reranker.lexical_query("artikkel 4", "nb", frequency) == (None, "")
    assert unknown_words("What does Article 4 commit each side to?", frequency) == []
    assert retriever.reranker.lexical_query("Hvem signerte forsvarspakten?", "nb", frequency) == (None, "")
    answer = assistant.ask(AskRequest("Article 4"))
    assert answer.retrieved[0].article.id == SEED_ID
    assert answer.citations and "Artikkel 4" in answer.citations[0].quote


def test_a_misspelt_word_of_a_norwegian_question_is_searched_as_the_archive_spells_it(assistant):
    """BM25 finds no passage for "Rusland"; the search adds "russland", one letter away, and the features see no
    translation. A question spelt as the archive spells it is searched as it is."""
    retriever = assistant.retriever
    frequency = retriever.lexical.current().document_frequency
    question = "Hvem signerte forsvarspakten mellom Rusland og Nord-Korea?"
    query, translation = retriever.reranker.lexical_query(question, "nb", frequency)
    assert translation == "" and query.startswith(question) and "russland" in query.split()
    assert retriever.reranker.lexical_query(question.replace("Rusland", "Russland"), "nb", frequency) == (
        None,
        "",
    )
    assert retriever.reranker.lexical_query("Who signed the pact with Rusland?", "en", frequency)[
        1
    ]  # translated
    answer = assistant.ask(AskRequest(question))
    assert answer.retrieved[0].article.id == SEED_ID


def test_without_a_model_file_the_rerank_mode_says_how_to_get_one():
    broken = Reranker(None, None)
    query = make_query("hva", "nb")
    with pytest.raises(ConfigError, match="make train"):
        broken.order(query, ())


def test_picker_never_quotes_a_caption_even_when_it_holds_the_words(assistant):
    picker = assistant.extractive.picker
    assert picker is not None
    retrieval = assistant.retriever.retrieve(SEED_QUESTION, 3, mode=RERANK_MODE)
    hit = retrieval.hits[0]
    caption = (
        "Forsvarspakten mellom Nord-Korea og Russland inneholder en klausul. Foto: Ola Nordmann / NTB scanpix"
    )
    text = caption + " " + hit.chunk.text
    fake = replace(hit, chunk=replace(hit.chunk, text=text, end=hit.chunk.start + len(text)))
    chosen = picker.choose(SEED_QUESTION, (fake, *retrieval.hits[1:]), "nb")
    assert chosen and all(not is_furniture(span.text) for span, _ in chosen)
    assert all(span.text != caption for span, _ in chosen)


def test_an_english_question_does_not_quote_an_english_aside_of_a_norwegian_article(assistant):
    """An English remark in a Norwegian article shares an English question's own words; it is quoted only when
    nothing else is quotable."""
    from assistant.answering.picker import is_english_aside

    picker = assistant.extractive.picker
    question = "What does Article 4 commit each side to?"
    retrieval = assistant.retriever.retrieve(question, 3, mode=RERANK_MODE)
    hit = retrieval.hits[0]
    aside = "What Article 4 commits each side to is anyone's guess, a diplomat wrote on social media."
    text = aside + " " + hit.chunk.text
    fake = replace(hit, chunk=replace(hit.chunk, text=text, end=hit.chunk.start + len(text)))
    hits = (fake, *retrieval.hits[1:])
    spans = SentencePicker.spans(hits)
    assert [s.text for s in spans if is_english_aside(s, hits)] == [aside]
    chosen = picker.choose(question, hits, "en")
    assert chosen and not any(is_english_aside(span, hits) for span, _ in chosen)
    # with nothing else to quote, the aside is quoted
    alone = replace(hit, chunk=replace(hit.chunk, text=aside, end=hit.chunk.start + len(aside)))
    assert [span.text for span, _ in picker.choose(question, (alone,), "en")] == [aside]


def test_picker_quotes_the_best_sentence_the_previous_answer_did_not(assistant):
    """A follow-up never quotes the previous answer's sentences again; the picker chooses among the others, so a
    previous answer that held its best sentences does not leave the follow-up with nothing to quote."""
    picker = assistant.extractive.picker
    retrieval = assistant.retriever.retrieve(SEED_QUESTION, 3, mode=RERANK_MODE)
    vector = retrieval.query_vector
    first = picker.choose(SEED_QUESTION, retrieval.hits, "nb", vector)
    previous_answer = " ".join(span.text for span, _ in first)

    again = picker.choose(SEED_QUESTION, retrieval.hits, "nb", vector, avoid=previous_answer)

    assert first and again
    assert all(span.text not in previous_answer for span, _ in again)
    others = [
        s for s in SentencePicker.spans(retrieval.hits[: picker.passages]) if s.text not in previous_answer
    ]
    assert again[0][0] in others
    follow_up = assistant.extractive.answer(
        SEED_QUESTION, retrieval.hits, vector, "nb", avoid=previous_answer, asked=SEED_QUESTION
    )
    assert follow_up.citations
    assert all(c.quote not in previous_answer for c in follow_up.citations)


def _span(hit_index: int, n: int, text: str | None = None) -> SentenceSpan:
    return SentenceSpan(hit_index, 100 * n, 100 * n + 50, text or f"Setning {n} i passasje {hit_index}.")


def test_pick_adds_the_next_best_sentence_only_within_the_margin():
    spans = [_span(0, 0), _span(1, 1), _span(0, 2)]
    scores = np.array([2.0, 1.6, 1.2])
    assert pick(scores, spans, 0.5) == [0, 1]
    assert pick(scores, spans, 0.3) == [0]
    assert pick(np.zeros(0), [], 1.0) == []


def test_pick_from_the_same_passage_skips_a_second_passage():
    spans = [_span(0, 0), _span(1, 1), _span(0, 2), _span(2, 3)]
    scores = np.array([2.0, 1.8, 1.5, 1.9])
    assert pick(scores, spans, 1.0) == [0, 3]
    assert pick(scores, spans, 1.0, same_passage=True) == [0, 2]
    # Nothing of the best one's passage within the margin: the best sentence alone.
    assert pick(scores, spans, 0.4, same_passage=True) == [0]


def test_pick_never_quotes_the_same_sentence_twice():
    """Overlapping chunks repeat a sentence: its copy is passed over for the next one within the margin."""
    spans = [_span(0, 0, "Samme setning her."), _span(1, 0, "Samme setning her."), _span(1, 2)]
    assert pick(np.array([2.0, 1.9, 1.7]), spans, 0.5) == [0, 2]


def test_the_shipped_picker_settings_come_from_models_json(assistant):
    meta = json.loads((MODELS / "models.json").read_text(encoding="utf-8"))["picker"]
    picker = assistant.extractive.picker
    assert picker.second_margin == meta["second_margin"]
    assert picker.second_same_passage == meta.get("second_same_passage", False)


def test_picker_features_cover_every_sentence(assistant):
    retrieval = assistant.retriever.retrieve(SEED_QUESTION, 3, mode=RERANK_MODE)
    spans = SentencePicker.spans(retrieval.hits)
    assert spans and all(isinstance(s, SentenceSpan) for s in spans)
    rows = picker_features(make_query(SEED_QUESTION, "nb"), retrieval.hits, spans)
    assert rows.shape == (len(spans), len(PICKER_FEATURES))
    for s in spans:
        assert retrieval.hits[s.hit_index].chunk.text[s.start : s.end] == s.text


def test_training_is_deterministic(tmp_path):
    """Two trainings on the same rows write byte-identical model files (fixed seed, one thread); another seed
    gives another model."""
    from evals.train import RERANK_PARAMS, train_ranker

    examples = _random_pools()
    texts = []
    for _ in range(2):
        booster = train_ranker(examples, RERANK_FEATURES, RERANK_PARAMS, rounds=30)
        path = tmp_path / f"model{len(texts)}.txt"
        booster.save_model(str(path))
        texts.append(path.read_bytes())
    assert texts[0] == texts[1]
    # `--seed` reaches LightGBM's bagging: another seed, other trees
    booster = train_ranker(
        examples,
        RERANK_FEATURES,
        {**RERANK_PARAMS, "seed": RERANK_PARAMS["seed"] + 1},
        rounds=30,
    )
    assert booster.model_to_string() != texts[0].decode()


def test_training_on_an_index_without_the_gold_passages_says_which_index_it_needs():
    """Pools that never hold a question's gold passage (an index of another corpus) stop training with a clear
    message instead of a numpy error."""
    from evals.train import RERANK_PARAMS, Example, train_ranker

    rows = np.zeros((5, len(RERANK_FEATURES)))
    examples = [
        Example(item=None, hits=tuple(range(5)), query=None, rows=rows, labels=np.zeros(5, dtype=np.int32))
    ] * 3
    with pytest.raises(SystemExit, match=r"none of the 3 training questions.*full index of the eval corpus"):
        train_ranker(examples, RERANK_FEATURES, RERANK_PARAMS, rounds=5)


class _Collection:
    """Chroma's `get` on a few stored vectors, in pages, in an order other than the ids'."""

    def __init__(self, ids, vectors):
        self.ids, self.vectors = ids, vectors

    def get(self, include, limit, offset):
        assert include == ["embeddings"]
        return {"ids": self.ids[offset : offset + limit], "embeddings": self.vectors[offset : offset + limit]}


class _Store:
    def __init__(self, ids, vectors):
        self.chunks = _Collection(ids, vectors)

    def counts(self):
        return 1, len(self.chunks.ids)


def test_a_rebuild_is_compared_with_the_shipped_files_it_replaces(tmp_path):
    """`make train` scores the files it is about to replace when they use this code's features, and names each
    validation set where the rebuilt pair ranks or answers worse."""
    import shutil

    from evals.train import comparison_lines, replaced_models

    assert replaced_models(tmp_path) is None
    for name in ("models.json", "reranker.txt", "picker.txt"):
        shutil.copy(MODELS / name, tmp_path / name)
    assert (
        replaced_models(tmp_path)["picker"]["languages"]
        == json.loads((MODELS / "models.json").read_text(encoding="utf-8"))["picker"]["languages"]
    )
    record = json.loads((tmp_path / "models.json").read_text(encoding="utf-8"))
    record["picker"]["features"] = record["picker"]["features"][:-1]
    (tmp_path / "models.json").write_text(json.dumps(record), encoding="utf-8")
    assert replaced_models(tmp_path) is None  # another code's features: nothing to score them with

    figures = {"hit@5": 0.95, "mrr@10": 0.85, "answer_found": 0.76, "citation_precision": 0.8}
    worse = figures | {"answer_found": 0.72}
    lines = comparison_lines(
        {
            "validation (nb)": {"replaced": figures, "rebuilt": worse},
            "validation (en)": {"replaced": figures, "rebuilt": figures},
        }
    )
    warnings = [line for line in lines if line.startswith("- ")]
    assert warnings == [
        "- validation (nb): the rebuilt files answer worse than those they replaced "
        "(answer_found + citation_precision: 1.52 against 1.56)."
    ]
    assert "| validation (nb) | rebuilt | 0.95 | 0.85 | 0.72 | 0.8 |" in lines


def test_a_rebuild_is_also_checked_on_validation_no_choice_has_seen():
    """Wikipedia validation is scored beside the sets the choices are made on, never chosen on, and answered as
    the product answers its language (Norwegian): by the picker only where the picker chooses for nb."""
    from evals.train import (
        CHECK_LANGUAGES,
        VALIDATION_LANGUAGES,
        answered_by_picker,
        eval_sets,
        judged_on,
        picker_sets_for,
    )

    sets = eval_sets()
    assert set(CHECK_LANGUAGES) <= set(sets) and not set(CHECK_LANGUAGES) & set(VALIDATION_LANGUAGES)
    assert {i.dataset for i in sets["validation (wiki)"]} == {"norquad:wiki:validation"}
    assert (
        "validation (wiki)" not in picker_sets_for(["nb", "nn", "en"])
        and judged_on("nb") == "validation (nb)"
    )
    assert answered_by_picker("validation (wiki)", ["nb", "en"])
    assert not answered_by_picker("validation (wiki)", ["en"])


def test_training_pools_use_exact_neighbours():
    """The training store answers with the exact cosine top-k (equal ones by chunk id), reads every page of the
    stored vectors, refuses filters it cannot apply, and passes everything else through."""
    from assistant.core.types import NO_FILTERS, Filters
    from evals.train import ExactNeighbours

    rng = np.random.default_rng(3)
    ids = [f"a{i:03d}#0-x" for i in range(25)][::-1]
    vectors = rng.normal(size=(25, 8)).astype(np.float32)
    vectors[7] = vectors[3]  # a tie: ids[3] and ids[7] point the same way

    class Paged(ExactNeighbours):
        page = 10  # three pages

    store = Paged(_Store(ids, vectors))
    query = vectors[3] * 2.0
    got = store.nearest(query, 5, NO_FILTERS)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ (query / np.linalg.norm(query))
    expected = sorted(range(25), key=lambda i: (-round(float(cosine[i]), 5), ids[i]))[:5]
    assert [m.chunk_id for m in got] == [ids[i] for i in expected]
    assert got[0].chunk_id == min(ids[3], ids[7]) and abs(got[0].similarity - 1.0) < 1e-5
    assert store.nearest(query, 5, NO_FILTERS) == got
    assert store.counts() == (1, 25)
    with pytest.raises(ValueError):
        store.nearest(query, 5, Filters(sources=("x",)))


def test_truncated_model_is_the_shorter_training():
    """Choosing the rounds after training to the most gives the model that training to fewer would."""
    from evals.train import RERANK_PARAMS, Example, train_ranker, truncated

    rng = np.random.default_rng(1)
    examples = []
    for _q in range(30):
        rows = rng.normal(size=(10, len(RERANK_FEATURES)))
        labels = np.zeros(10, dtype=np.int32)
        labels[int(np.argmax(rows[:, 6] + 0.3 * rows[:, 9]))] = 1
        examples.append(Example(item=None, hits=tuple(range(10)), query=None, rows=rows, labels=labels))

    def fit(rounds):
        return train_ranker(examples, RERANK_FEATURES, RERANK_PARAMS, rounds=rounds)

    rows = np.vstack([e.rows for e in examples])
    np.testing.assert_array_equal(truncated(fit(40), 15).predict(rows), fit(15).predict(rows))


@settings(max_examples=200, deadline=None)
@given(
    terms=st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
    idf=st.lists(st.floats(0, 9, allow_nan=False), min_size=8, max_size=8),
    found=st.lists(st.sets(st.sampled_from("abcdefghxyz"), max_size=6), min_size=1, max_size=4),
)
def test_coverage_by_term_bits_equals_coverage_by_stems(terms, idf, found):
    """The features match a chunk's or a sentence pair's stems once, as bits; the share must be the very same
    float as matching the united stems, or a model would see other features than it was trained on."""
    weights = TermWeights(terms, dict(zip("abcdefgh", idf, strict=True)))
    term_bits = TermBits(terms)
    united = set().union(*found)
    mask = 0
    for stems in found:
        mask |= term_bits.mask(stems)
    assert weights.cover_mask(mask, term_bits.bits) == weights.cover(united)
    assert weights.cover_mask(mask, term_bits.bits) == weights.cover(united)  # the remembered share too
