"""Loaders and cleaning: every input format, the seed's web leftovers, and bad input named by file."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.core.dates import parse_date
from assistant.core.errors import BadInputError
from assistant.testing.corpus import NORQUAD_NEWS, SEED, SEED_ID
from ingest.cleaning import CleaningRules, clean_text
from ingest.loaders import decode, discover, load_file, load_paths

LEFTOVERS = ("Share", "Les også", "Les mer", "Siste nytt", "Nyhetsartikler generert", "kvalitetssikret")


def test_seed_article_loses_its_web_leftovers_and_keeps_its_story():
    [article] = load_file(SEED).articles
    assert article.id == SEED_ID
    assert article.title == "Nord-Korea og Russland inngår forsvarspakt"
    assert article.date == "2024-11-27"
    assert article.language == "nb"
    assert article.source == "Geopolitika"  # the footer's brand line names the publisher
    for leftover in LEFTOVERS:
        assert leftover not in article.text, leftover
    assert "\nGeopolitika" not in article.text
    assert "Artikkel 4 i avtalen sier" in article.text
    assert article.text.startswith("En ny avtale mellom Russland og Nord-Korea")
    assert article.text.endswith("autoritære makter allierer seg.")  # no teaser for another article


def test_cleaning_rules_live_in_the_data_file_and_apply_to_upper_case_variants(tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("drop_lines:\n  - '^annonse$'\nfooter_starts: []\n", encoding="utf-8")
    custom = CleaningRules.load(rules_file)
    assert clean_text("Tekst her.\nANNONSE\nMer tekst.", custom) == "Tekst her.\n\nMer tekst."
    assert (
        clean_text("Første avsnitt.\nLES OGSÅ: Noe helt annet\nAndre avsnitt.")
        == "Første avsnitt.\n\nAndre avsnitt."
    )


@pytest.mark.parametrize(
    "line, iso",
    [
        ("27. november, 2024", "2024-11-27"),
        ("27. november 2024", "2024-11-27"),
        ("2024-11-27", "2024-11-27"),
        ("2024-11-27T10:15:00Z", "2024-11-27"),
        ("2024-11-27 10:15:00 +0100", "2024-11-27"),
        ("November 27, 2024", "2024-11-27"),
        ("3.1.2025", "2025-01-03"),
        ("Nord-Korea og Russland", None),
        ("31. februar 2024", None),
    ],
)
def test_date_lines(line, iso):
    assert parse_date(line) == iso


def test_markdown_with_iso_date_and_heading(tmp_path):
    path = tmp_path / "ferje.md"
    path.write_text(
        "2025-03-05\n\n# Ferja er innstilt\n\nFerja mellom Moss og Horten er innstilt i dag. "
        "Det skyldes sterk vind.\n\nLes mer\n",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert (article.id, article.title, article.date) == ("ferje", "Ferja er innstilt", "2025-03-05")
    assert article.text == "Ferja mellom Moss og Horten er innstilt i dag. Det skyldes sterk vind."


def test_a_markdown_export_is_read_as_rendered_with_its_headline_and_published_date(tmp_path):
    """A page saved as Markdown: its menu of links was read as the headline, its date line ("Publisert … kl. …")
    was not understood, and links, photos, emphasis and comments were quoted as syntax."""
    path = tmp_path / "skred.md"
    path.write_text(
        "[Hopp til hovedinnhold](#main)\n\n[Nordlys](https://x.example/) | [Nyheter](https://x.example/n)\n\n"
        "# Snøskred stengte E8 i elleve timer\n\nPublisert 14.02.2024 kl. 06:45 · Oppdatert 14.02.2024 kl. 18:20\n\n"
        "Av **Jonas Eriksen**\n\n![Brøytebiler ved skredet. Foto: Jonas Eriksen](https://x.example/s.jpg)\n\n"
        "Et snøskred på om lag **200 meter** gikk over E8 ved *Helligskogen* natt til onsdag.\n\n"
        "[Del på Facebook](https://x.example/f) [Kopier lenke](#)\n\n"
        "**Les også:** [Rekordmye snø i Troms](https://x.example/r)\n\n<!-- ad: midtbanner -->\n\n*Annonse*\n\n"
        "Vegen ble åpnet igjen etter at [Statens vegvesen](https://x.example/v) vurderte skredfaren som lav.\n\n"
        "Les [varselet][1] hos [NVE](javascript:alert(1)).\n\n[1]: https://x.example/varsel\n\n"
        "**Tags:** #skred #E8\n\n*Har du tips? Send e-post til tips@nordlys.example*\n",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert (article.title, article.date) == ("Snøskred stengte E8 i elleve timer", "2024-02-14")
    assert article.text == (
        "Et snøskred på om lag 200 meter gikk over E8 ved Helligskogen natt til onsdag.\n\n"
        "Vegen ble åpnet igjen etter at Statens vegvesen vurderte skredfaren som lav.\n\nLes varselet hos NVE."
    )
    plain = tmp_path / "plain.txt"  # a text file is no Markdown: its asterisks and brackets are its own
    plain.write_text(
        "Regnestykket\n\nSvaret på 2*3*4 er [ifølge læreren] 24, og **ikke** 12.\n", encoding="utf-8"
    )
    assert load_file(plain).articles[0].text == "Svaret på 2*3*4 er [ifølge læreren] 24, og **ikke** 12."


def test_a_markdown_export_shows_addresses_footnotes_and_quotes_as_rendered_not_their_syntax(tmp_path):
    """Autolinks ("<https://…>") kept their brackets, footnote marks ("[^1]") stayed in the sentence and the note's
    own text was deleted, a reference image left a "!", quote marks, escapes ("1\\. mai"), raw HTML tags and
    entities were quoted, and a line that opens with a bracketed label ("[Oppdatert 14.20]: …") was taken for a
    reference definition and deleted."""
    path = tmp_path / "ferje.md"
    path.write_text(
        "# Kommunen kjøper ny elektrisk ferje\n\nPublisert 14.02.2024 kl. 09:30\n\n"
        "<!--\n  annonse: toppbanner\n-->\n\n"
        "Kommunestyret vedtok torsdag å kjøpe en ny elektrisk ferje til sambandet, melder <https://www.nrk.no/nordland>.\n\n"
        '![Den nye ferja ved kai. Foto: Kommunen](https://x.example/ferje.jpg "Ferja")\n\n'
        "Ferja skal settes i drift 1\\. mai 2026[^1], og prisen er 180 millioner kroner[^pris]. Se [budsjettet][] og "
        "![kart][kart] [planen] for detaljer.\n\n"
        "> Dette er en historisk dag for øya, sier ordfører Kari Nordmann.\n\n"
        "[Oppdatert 14.20]: Saken er oppdatert med nye tall fra &laquo;Samferdselsetaten&raquo;.\n\n"
        'Spørsmål om vedtaket kan sendes til <post@kommune.example> eller <a href="https://kommune.example/skjema" '
        'onclick="track()">skjemaet</a>, som er merket ~~foreløpig~~ `endelig`.\n\n'
        '[budsjettet]: https://kommune.example/budsjett "Budsjett 2024"\n'
        "[planen]:\n    <https://kommune.example/plan>\n"
        "  [kart]: https://x.example/kart.png\n"
        "> [1]: https://kommune.example/kilde\n\n"
        "[^1]: Ifølge samferdselsetaten.\n[^pris]: Inkludert moms.\n",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert (article.title, article.date) == ("Kommunen kjøper ny elektrisk ferje", "2024-02-14")
    assert article.text == (
        "Kommunestyret vedtok torsdag å kjøpe en ny elektrisk ferje til sambandet, melder "
        "https://www.nrk.no/nordland.\n\n"
        "Ferja skal settes i drift 1. mai 2026, og prisen er 180 millioner kroner. Se budsjettet og planen for "
        "detaljer.\n\n"
        "Dette er en historisk dag for øya, sier ordfører Kari Nordmann.\n\n"
        "[Oppdatert 14.20]: Saken er oppdatert med nye tall fra «Samferdselsetaten».\n\n"
        "Spørsmål om vedtaket kan sendes til post@kommune.example eller skjemaet, som er merket foreløpig endelig.\n\n"
        "Ifølge samferdselsetaten.\n\nInkludert moms."
    )


@pytest.mark.parametrize(
    "markdown, rendered",
    [
        ("Les mer på <https://www.nrk.no/sapmi>.", "Les mer på https://www.nrk.no/sapmi."),
        ("Se [varselet] fra NVE.\n\n[varselet]: https://varsom.no", "Se varselet fra NVE."),
        (
            "Se [varselet] fra NVE.",
            "Se [varselet] fra NVE.",
        ),  # no definition: the brackets are the text's own
        ("Tallet[^a] steg.\n\n[^a]: Tall fra SSB.", "Tallet steg.\n\nTall fra SSB."),
        (
            "Ruta går langs kysten ![Kart over ruta][k] til Bodø.\n\n[k]: /kart.png",
            "Ruta går langs kysten til Bodø.",
        ),
        ("Forbudet gjelder fra 1\\. juli\\.", "Forbudet gjelder fra 1. juli."),
        ("Koden `<img src=x>` ble fjernet.", "Koden <img src=x> ble fjernet."),
        ("Han skrev <b>ikke</b> under&nbsp;avtalen.", "Han skrev ikke under avtalen."),
        ("a <b og b > c er ulikt.", "a <b og b > c er ulikt."),  # prose, not a tag
        (
            "Ferja går i dag.\n<script>\nalert(1)\n</script>\nOgså i morgen.",
            "Ferja går i dag.\n\nOgså i morgen.",
        ),
    ],
    ids=[
        "autolink",
        "shortcut-reference",
        "brackets",
        "footnote",
        "reference-image",
        "escapes",
        "code",
        "html",
        "prose-lt",
        "script",
    ],
)
def test_markdown_leftovers_read_as_rendered(tmp_path, markdown, rendered):
    path = tmp_path / "sak.md"
    path.write_text(f"Overskrift\n\n{markdown}\n", encoding="utf-8")
    assert load_file(path).articles[0].text == rendered


@pytest.mark.parametrize(
    "opening",
    ["[", "![", "[^", "**a ", "__a ", "~~a ", "<!--", "<script>"],
    ids=["link", "photo", "footnote", "bold", "underscores", "struck", "comment", "script"],
)
def test_a_markdown_file_of_unclosed_markup_lands_with_its_text(tmp_path, opening):
    """Each opening of a link, a photo, a footnote mark, bold or struck text, a comment or a script that never
    closes stays, and the text after it lands. (Each was read to the end of its line, a comment to the end of its
    file, looking for its close: 30,000 of them held the ingest for tens of seconds; `python -m bench.markup`
    measures the load time against ordinary prose.)"""
    path = tmp_path / "sak.md"
    path.write_text(f"Overskrift\n\n{opening * 2_000} {ONE_PARAGRAPH}\n", encoding="utf-8")
    result = load_file(path)
    assert not result.rejected and ONE_PARAGRAPH in result.articles[0].text


ONE_PARAGRAPH = "Kommunestyret vedtok budsjettet torsdag kveld, og eiendomsskatten økes med to promille."


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notat.txt", ONE_PARAGRAPH + "\n"),
        ("notat.md", ONE_PARAGRAPH + "\n"),
        ("notat.html", f"<html><body><p>{ONE_PARAGRAPH}</p></body></html>"),
        (
            "titled.html",
            f"<html><head><title>{ONE_PARAGRAPH}</title></head><body><p>{ONE_PARAGRAPH}</p></body></html>",
        ),
        ("notat.json", json.dumps({"text": ONE_PARAGRAPH})),
    ],
)
def test_a_text_of_one_paragraph_is_its_own_headline_and_its_own_text(tmp_path, name, content):
    """A note or a page of one paragraph and no title lands with that paragraph as its text (was: taken for the
    headline, leaving no text, and rejected)."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    [article] = load_file(path).articles
    assert article.text == ONE_PARAGRAPH and article.title == ONE_PARAGRAPH


def test_a_long_paragraph_without_a_title_is_headed_by_its_first_sentence_cut_short(tmp_path):
    second = "Ordføreren sa at skolene skal skjermes mot kutt."
    path = tmp_path / "notat.txt"
    path.write_text(f"{ONE_PARAGRAPH} {second}\n", encoding="utf-8")
    [article] = load_file(path).articles
    assert (article.title, article.text) == (ONE_PARAGRAPH, f"{ONE_PARAGRAPH} {second}")
    path.write_text("Kommunestyret " * 40 + "\n", encoding="utf-8")
    [article] = load_file(path).articles
    assert len(article.title) <= 200 and article.title.endswith("Kommunestyret…")
    assert article.text == ("Kommunestyret " * 40).strip()


@pytest.mark.parametrize(
    ("head", "lines", "date"),
    [
        ("", "<p>Kommunestyret vedtok budsjettet for 2025 torsdag kveld.</p>", None),
        ('<meta property="article:published_time" content="2024-11-27T10:00:00+01:00">', "", "2024-11-27"),
        ("", '<time datetime="2024-11-27">27. november 2024</time>', "2024-11-27"),
        ("", "<p>Publisert 27.11.2024 kl. 10:15</p>", "2024-11-27"),
    ],
)
def test_a_saved_page_is_dated_by_what_dates_it_not_by_a_year_in_its_text(tmp_path, head, lines, date):
    """A page without a date was dated 2025-01-01 for "budsjettet for 2025" in its text."""
    path = tmp_path / "side.html"
    body = "<p>Kommunestyret vedtok budsjettet for 2025 torsdag kveld, og skolene skjermes mot kutt.</p>"
    path.write_text(
        f"<html><head><title>Budsjett</title>{head}</head><body><article>{lines}{body}</article></body></html>",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert article.date == date


def test_english_text_is_detected_as_english(tmp_path):
    path = tmp_path / "en.txt"
    path.write_text(
        "Council approves new harbour bath\n\nThe city council voted on Tuesday to build a new "
        "harbour bath near the ferry terminal. Construction starts in the spring.",
        encoding="utf-8",
    )
    assert load_file(path).articles[0].language == "en"


def test_html_gives_text_title_date_author_and_canonical_url(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        """<html><head><title>Ferja er forsinket</title>
      <link rel="canonical" href="https://avis.example/a/1"><meta name="author" content="Kari Nordmann">
      <meta property="og:site_name" content="Avisa"><meta property="article:published_time" content="2024-03-05T10:00:00Z">
      </head><body><nav>Meny</nav><article><h1>Ferja er forsinket</h1>
      <p>Ferja mellom Moss og Horten er forsinket i dag på grunn av tåke. Passasjerene må vente i flere timer.</p>
      <script>alert(1)</script><p>Bastø Fosen beklager forsinkelsen og lover bedre informasjon.</p>
      <p>Les også: Noe annet</p></article></body></html>""",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert article.title == "Ferja er forsinket"
    assert article.url == article.id == "https://avis.example/a/1"
    assert (article.date, article.author, article.source) == ("2024-03-05", "Kari Nordmann", "Avisa")
    assert "alert" not in article.text and "Les også" not in article.text and "Meny" not in article.text
    assert "forsinket i dag på grunn av tåke" in article.text


_XHTML_PAGE = """<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"
  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="nb" lang="nb"><head>
  <meta http-equiv="Content-Type" content="text/html; charset=utf-8" /><title>Ferja er forsinket</title>
  <link rel="canonical" href="https://avis.example/a/1" /><meta name="author" content="Kari Nordmann" />
  <meta property="og:site_name" content="Avisa" /><meta property="article:published_time" content="2024-03-05" />
</head><body><article><h1>Ferja er forsinket</h1>
  <p class="ingress">Hundrevis av reisende venter på ferjekaia i Moss fordi tåka ligger tett over fjorden.</p>
  <div class="article-body"><p>Ferja mellom Moss og Horten er forsinket i dag på grunn av tåke. Passasjerene må vente i flere timer.</p>
  <p>Bastø Fosen beklager forsinkelsen og lover bedre informasjon.<br />Neste avgang er klokka åtte.</p>
</div></article></body></html>"""


@pytest.mark.parametrize(
    ("declaration", "encoding"),
    [
        ('<?xml version="1.0" encoding="utf-8"?>', "utf-8"),
        ("<?xml version='1.0' encoding='UTF-8' standalone='no' ?>", "utf-8-sig"),
        ('<?xml version="1.0"?>', "utf-8"),
        ('<?xml version="1.0" encoding="iso-8859-1"?>', "utf-8"),  # the bytes say otherwise: they decide
        ('<?xml version="1.0" encoding="utf-8"?>', "cp1252"),
        ('<?xml version="1.0" encoding="utf-16"?>', "utf-16"),
    ],
)
def test_a_saved_xhtml_page_with_an_xml_declaration_lands_like_the_page_without_it(
    tmp_path, declaration, encoding
):
    """lxml refuses text that declares an encoding: such a page was read without its address, site name and lede
    (stored under its file's name, without a source), and one whose body held a lone script stopped the ingest
    (test_bad_files_are_named_with_their_reason). The page is text by then, decoded by its bytes."""
    plain, declared = tmp_path / "plain.html", tmp_path / "declared.htm"
    plain.write_text(_XHTML_PAGE, encoding="utf-8")
    declared.write_bytes(f"{declaration}\n{_XHTML_PAGE}".encode(encoding))
    [expected], [article] = load_file(plain).articles, load_file(declared).articles
    assert article.id == article.url == "https://avis.example/a/1" and article.source == "Avisa"
    assert article.text.startswith("Hundrevis av reisende venter på ferjekaia i Moss fordi tåka ligger tett")
    assert replace(article, origin=None) == replace(expected, origin=None)


@pytest.mark.parametrize("lede_class", ["lead", "ingress", "article__lead", "standfirst"])
def test_an_html_lede_above_the_article_body_is_kept_and_the_headline_not_repeated(tmp_path, lede_class):
    """The extractor takes the element classed as the article's body; the lede printed above it, in an element of
    its own, was lost ("Hvor må fødende reise?" found nothing), and a breadcrumb trail and the headline above the
    body stayed in the text."""
    path = tmp_path / "page.html"
    path.write_text(
        f"""<html><head><title>Sykehuset stenger fødeavdelingen</title></head><body><nav>Nyheter Sport</nav>
      <article><header><div class="crumbs">Forsiden › Rogaland</div><h1>Sykehuset stenger fødeavdelingen</h1>
      <p class="{lede_class}">Fødende i Haugesund må reise til Stavanger i fem uker fordi sykehuset mangler
      jordmødre.</p></header><div class="article-body">
      <p>Helse Fonna opplyser at fødeavdelingen holder stengt fra 8. juli til 11. august i år.</p>
      <p>Klinikkdirektøren sier at sykehuset har prøvd å leie inn jordmødre fra Sverige uten å lykkes.</p>
      <p>Fødende som bor nord i regionen kan også velge sykehuset i Stord, opplyser helseforetaket.</p>
      <p>Ordføreren i Haugesund kaller stengingen uforsvarlig og vil ta saken opp med helseministeren.</p>
      </div></article><aside><p class="lead-story">Dette er en helt annen sak om noe helt annet enn fødsler.</p>
      </aside></body></html>""",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert article.title == "Sykehuset stenger fødeavdelingen"
    assert article.text.startswith("Fødende i Haugesund må reise til Stavanger i fem uker fordi sykehuset")
    assert "Helse Fonna opplyser" in article.text and "helt annen sak" not in article.text
    assert article.text.count("Fødende i Haugesund") == 1


def _news_page(head: str = "", header: str = "", rest: str = "") -> str:
    """A saved Norwegian news page: site header and menu, an article with its header (kicker, headline, lede,
    byline), its body, then a list of other articles and the site's footer with the publisher's address."""
    return f"""<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">
      <title>Anmeldelse: «Et dukkehjem» på Nationaltheatret</title><meta property="og:site_name" content="NRK">
      <meta property="article:published_time" content="2024-09-12T06:00:00+02:00">{head}</head><body>
      <header class="site-header"><nav><a href="/">Forsiden</a> <a href="/kultur">Kultur</a></nav></header>
      <main><article class="article"><header class="article-header">{header}
      <h1>Anmeldelse: «Et dukkehjem» på Nationaltheatret</h1>
      <p class="article-lead">Nationaltheatrets nye oppsetning av Ibsens klassiker er en triumf for skuespillerne.</p>
      </header><div class="article-body">
      <p>Det er ikke første gang «Et dukkehjem» settes opp på Nationaltheatret, men sjelden har stykket føltes så nytt.</p>
      <p>Regissøren har flyttet handlingen til en moderne leilighet i Oslo, og grepet fungerer overraskende godt.</p>
      <p>Forestillingen spilles på Hovedscenen fram til jul, og billettene selges allerede raskt.</p></div>
      {rest}</article><aside class="related"><h2>Flere anmeldelser</h2><a href="/x"><div class="rating">2/6</div>
      <p>Slakt av ny musikal</p></a></aside></main><footer><address>NRK, Bjørnstjerne Bjørnsons plass 1, 0340 Oslo
      </address></footer></body></html>"""


@pytest.mark.parametrize(
    "rating, reads",
    [
        ('<div class="rating">5/6</div>', "5/6"),
        ('<div class="article-meta"><span class="rating">5/6</span> Anmeldelse</div>', "5/6"),
        (
            '<span class="dice dice-5" role="img" aria-label="Terningkast 5"><svg><circle r="2"/></svg></span>',
            None,
        ),
        ('<div class="terningkast"><img src="/terning-5.svg" alt="Terningkast 5"></div>', None),
        ('<div class="dice"><svg role="img"><title>Terningkast 5</title><circle r="2"/></svg></div>', None),
        (
            '<div class="review-rating"><span class="stars" aria-label="4 av 6 stjerner">★★★★☆☆</span></div>',
            None,
        ),
        ('<div class="stars">★★★★☆☆</div>', "4/6"),
        ('<p>Terningkast: <span class="rating">5</span></p>', "Terningkast: 5"),
    ],
    ids=["div", "in-page-meta", "die-aria", "die-img", "die-svg-title", "stars-label", "stars", "inline"],
)
def test_a_reviews_rating_on_a_saved_page_is_kept_as_the_articles_text(tmp_path, rating, reads):
    """The extractor drops an element classed `rating` (with its text, or a die drawn as an image, whose label it
    never reads): "Hvilket terningkast fikk forestillingen?" found nothing. A rating in a list of other reviews,
    and a "rate this article" widget with no score, stay out."""
    path = tmp_path / "anmeldelse.html"
    widget = '<div class="article-rating">Hva synes du om saken? ☆☆☆☆☆</div>'
    path.write_text(_news_page(header=rating, rest=widget), encoding="utf-8")
    [article] = load_file(path).articles
    reads = reads or next(label for label in ("Terningkast 5", "4 av 6 stjerner") if label in rating)
    assert reads in article.text.split("\n\n")
    assert article.text.startswith("Nationaltheatrets nye oppsetning")
    assert "2/6" not in article.text and "Hva synes du" not in article.text
    assert article.text.count(reads) == 1


@pytest.mark.parametrize(
    "head, header",
    [
        (  # JSON-LD: a list of author objects, their roles in the names; the page's meta names the site
            '<meta name="author" content="NRK"><script type="application/ld+json">{"@context": "https://schema.org",'
            '"@type": "ReviewNewsArticle", "author": [{"@type": "Person", "name": "Kari Nordmann, Journalist"},'
            '{"@type": "Person", "name": "Ola Hansen", "jobTitle": "Fotograf"}]}</script>',
            "",
        ),
        (  # JSON-LD in a @graph, one author object with "name" and one with given and family names
            '<script type="application/ld+json">{"@graph": [{"@type": "WebPage", "name": "Kultur"}, {"@type": '
            '"NewsArticle", "author": [{"@type": "Person", "name": "Kari Nordmann", "url": "https://nrk.no/kari"},'
            '{"@type": "Person", "givenName": "Ola", "familyName": "Hansen"}]}]}</script>',
            "",
        ),
        ('<meta name="author" content="Av Kari Nordmann og Ola Hansen">', ""),
        (  # a byline of author links, each with its role beside it
            "",
            '<div class="byline"><div class="author"><a rel="author" href="/kari"><span class="author__name">Kari '
            'Nordmann</span></a><span class="author__role">Journalist</span></div><div class="author"><a '
            'rel="author" href="/ola"><span class="author__name">Ola Hansen</span></a><span class="author__role">'
            "Kulturjournalist</span></div><time>Publisert 12.09.2024, kl. 06:00</time></div>",
        ),
        ("", "<address>Av Kari Nordmann og Ola Hansen, journalister i NRK</address>"),
    ],
    ids=["json-ld-list", "json-ld-graph", "meta-og", "rel-author-with-roles", "address"],
)
def test_html_authors_are_every_name_the_page_gives_without_roles(tmp_path, head, header):
    """Only the first of two authors was kept, a role was read as a name or part of one ("Kari Nordmann
    Kulturjournalist", "Kari Nordmann; Journalist"), "Av" and "og" were kept, and an author list in JSON-LD
    after a `<meta name="author">` naming the site was lost. The footer's address is the publisher's."""
    path = tmp_path / "anmeldelse.html"
    path.write_text(_news_page(head=head, header=header), encoding="utf-8")
    [article] = load_file(path).articles
    assert article.author == "Kari Nordmann; Ola Hansen"


def test_html_author_names_drop_roles_addresses_and_the_words_around_them():
    from ingest.html_page import author_names

    assert author_names("Kari Nordmann, journalist i NRK") == ["Kari Nordmann"]
    assert author_names("Tekst: Kari Nordmann Foto: Ola Hansen") == ["Kari Nordmann", "Ola Hansen"]
    assert author_names("Journalist: Kari Nordmann kari.nordmann@nrk.no") == ["Kari Nordmann"]
    assert author_names("Kari Nordmann / NTB") == ["Kari Nordmann", "NTB"]
    assert author_names("https://www.facebook.com/kari.nordmann") == []
    assert author_names("Publisert 12.09.2024") == [] and author_names("Journalist") == []
    assert author_names("Inger-Lise Ødegård Hansen") == ["Inger-Lise Ødegård Hansen"]


def test_a_headline_repeated_below_a_breadcrumb_trail_leaves_the_text(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        """<html><head><title>Strømprisen kan doble seg</title></head><body><article>
      <div class="crumbs">Forsiden › Vestland</div><h1>Strømprisen kan doble seg</h1>
      <p>Lav fyllingsgrad i vannmagasinene gjør at strømprisen i Vestland kan bli dobbelt så høy som i fjor.</p>
      <p>Fyllingsgraden i magasinene i prisområde NO5 var 38 prosent i uke 10.</p></article></body></html>""",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert article.text.startswith("Lav fyllingsgrad i vannmagasinene")


def test_json_and_jsonl_accept_the_documented_fields(tmp_path):
    objects = [
        {
            "id": "a1",
            "title": "Tittel en",
            "text": "Dette er den første artikkelen om budsjettet i kommunen.",
            "date": "2024-05-01",
            "url": "https://x.example/1",
            "source": "Avis",
            "language": "nb",
        },
        {
            "title": "Second",
            "body": "The second article is about the new library in town.",
            "published": "2024-05-02",
        },
        {
            "title": "Tredje",
            "content": "Tredje artikkel handler om ferjene på Vestlandet i vinter.",
            "url": "javascript:alert(1)",
        },
    ]
    (tmp_path / "many.json").write_text(json.dumps(objects), encoding="utf-8")
    (tmp_path / "many.jsonl").write_text(
        "\n".join(json.dumps(o) for o in objects[:2]) + "\n{broken\n", encoding="utf-8"
    )
    many = load_file(tmp_path / "many.json").articles
    assert next(a.id for a in many) == "a1" and many[0].source == "Avis" and many[0].date == "2024-05-01"
    assert many[1].date == "2024-05-02" and many[1].id.startswith("sha-") and many[1].language == "en"
    assert many[2].url is None  # a javascript: address is never kept
    lines = load_file(tmp_path / "many.jsonl")
    assert len(lines.articles) == 2
    [problem] = lines.rejected
    assert problem.source.endswith("many.jsonl:3") and "malformed JSON" in problem.reason


def test_a_json_body_given_as_html_is_read_as_its_text(tmp_path):
    """A CMS export's body is often the page's HTML: tags, entities and embeds were stored and quoted as text."""
    body = (
        '<p class="lead">Bystyret vedtok å bygge et nytt bibliotek på Tasta.</p><figure><img src="t.jpg"/>'
        "<figcaption>Slik kan det bli. Illustrasjon: Helen &amp; Hard</figcaption></figure><p>Det skal stå "
        "ferdig i 2027.<br>&ndash; Et løft, sa Mona&nbsp;Tjelta.</p><p><strong>Les også:</strong> <a "
        'href="https://x.example/1">Nye åpningstider</a></p><iframe src="https://x.example/v"></iframe>'
    )
    path = tmp_path / "export.json"
    path.write_text(json.dumps({"articles": [{"title": "Nytt bibliotek", "body": body}]}), encoding="utf-8")
    [article] = load_file(path).articles
    assert article.text == (
        "Bystyret vedtok å bygge et nytt bibliotek på Tasta.\n\nDet skal stå ferdig i 2027.\n\n"
        "– Et løft, sa Mona Tjelta."
    )
    prose = tmp_path / "prose.json"  # one "<" in prose is no markup
    prose.write_text(
        json.dumps({"title": "Ulikhet", "text": "Svaret er at a <b og b > c, sa læreren i timen."})
    )
    assert load_file(prose).articles[0].text == "Svaret er at a <b og b > c, sa læreren i timen."


def test_content_hash_id_is_stable_and_changes_with_content(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(
        json.dumps({"title": "T", "text": "En tekst som er lang nok til å telle."}), encoding="utf-8"
    )
    first = load_file(path).articles[0]
    assert load_file(path).articles[0].id == first.id
    path.write_text(
        json.dumps({"title": "T", "text": "En annen tekst som er lang nok til å telle."}), encoding="utf-8"
    )
    assert load_file(path).articles[0].id != first.id


def test_norquad_annotation_files_through_the_adapter():
    ids = []
    for path in sorted(NORQUAD_NEWS.glob("answers_*.json")):
        result = load_file(path)
        assert not result.rejected
        ids += [a.id for a in result.articles]
        assert all(a.source == "NorQuAD news" and a.language == "nb" for a in result.articles)
    assert len(ids) == len(set(ids)) == 403
    assert "news-a1-d443" in ids


def test_legacy_encodings_are_decoded_not_rejected(tmp_path):
    text = "Søndag\n\nBlåbærsesongen er i gang på Østlandet, og det er rekordmange bær i år."
    for encoding in ("latin-1", "cp1252"):
        path = tmp_path / f"{encoding}.txt"
        path.write_bytes(
            (text + " Pris: 50 € – billig.").encode("cp1252")
            if encoding == "cp1252"
            else text.encode(encoding)
        )
        [article] = load_file(path).articles
        assert "Blåbærsesongen er i gang på Østlandet" in article.text
    assert "€" in load_file(tmp_path / "cp1252.txt").articles[0].text


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n ", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary file"),
        ("broken.json", b'{"title": "x", "text": ', "malformed JSON"),
        ("nobody.json", b'{"title": "only a title"}', "no 'text', 'body' or 'content' field"),
        ("listbody.json", b'{"title": "x", "text": ["paragraph"]}', "'text' must be a string, got a list"),
        (
            "listtitle.json",
            b'{"title": ["list", "title"], "text": "x"}',
            "'title' must be a string, got a list",
        ),
        ("badline.jsonl", b'{"title": oops}\n', "malformed JSON at column 11:"),
        ("nullbody.jsonl", b'{"title": "x", "body": null}\n', "'body' must be a string, got null"),
        ("strings.json", b'["Kort tekst."]', "expected a JSON object, got a string"),
        ("numbers.jsonl", b"42\n", "expected a JSON object, got a number"),
        ("short.txt", b"Tittel\n\nKort.", "no article text left"),
        ("scripts.html", b"<html><body><script>var a = 1;</script></body></html>", "no article text found"),
        (
            "declared.html",
            b'<?xml version="1.0" encoding="utf-8"?>\n<html><body><script>var a = 1;</script></body></html>',
            "no article text found",
        ),
        (
            "saved.htm",
            b"<!-- lagret side -->\n<html><body><script>var a = 1;</script></body></html>",
            "cannot parse HTML: the page extractor failed",
        ),
    ],
)
def test_bad_files_are_named_with_their_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    result = load_file(path)
    assert not result.articles
    [problem] = result.rejected
    assert (
        isinstance(problem, BadInputError)
        and problem.source.startswith(str(path))
        and reason in problem.reason
    )


def test_a_broken_file_does_not_stop_the_batch(tmp_path):
    (tmp_path / "good.txt").write_text(
        "Godt nytt\n\nKommunen har fått nytt bibliotek med lange åpningstider.", encoding="utf-8"
    )
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    results = dict(load_paths([tmp_path, tmp_path / "missing.txt"]))
    loaded = [a.id for r in results.values() for a in r.articles]
    rejected = {Path(e.source).name: e.reason for r in results.values() for e in r.rejected}
    assert loaded == ["good"]
    assert "bad.json" in rejected and "missing.txt" in rejected
    assert "notes.pdf" not in rejected  # folders are filtered by type; only named files are reported
    files, problems = discover([tmp_path / "notes.pdf"])
    assert not files and "unsupported file type .pdf" in problems[0].reason


def test_decode_prefers_utf8_and_handles_bom():
    assert decode("Blåbær".encode("utf-8-sig"), "x") == "Blåbær"
    assert decode("Blåbær".encode("utf-16"), "x") == "Blåbær"


def test_documentation_beside_articles_is_not_ingested(tmp_path):
    (tmp_path / "README.md").write_text(
        "# Corpus\n\nThis folder holds the sample articles and their licence.", encoding="utf-8"
    )
    (tmp_path / "LICENSE").write_text("CC0", encoding="utf-8")
    (tmp_path / "story.txt").write_text(
        "Nyhet\n\nKommunen har vedtatt et nytt budsjett for skolene i år.", encoding="utf-8"
    )
    files, problems = discover([tmp_path])
    assert [f.name for f in files] == ["story.txt"] and not problems
    assert [f.name for f in discover([tmp_path / "README.md"])[0]] == [
        "README.md"
    ]  # named explicitly, it loads


@pytest.mark.parametrize(
    "front",
    [
        '---\ntitle: "Ferja er innstilt: vinden tar"\ndate: 2025-01-02\nsource: Lokalavisa\nauthor: Kari Nordmann\n'
        "url: https://lokalavisa.example/ferja\nlang: nb\ntags:\n  - ferje\n  - vær\ndraft: false\n---\n",
        '+++\ntitle = "Ferja er innstilt: vinden tar"\ndate = 2025-01-02T08:00:00+01:00\nsource = "Lokalavisa"\n'
        'author = "Kari Nordmann"\nurl = "https://lokalavisa.example/ferja"\nlanguage = "nb"\n+++\n',
    ],
    ids=["yaml", "toml"],
)
def test_markdown_front_matter_gives_the_article_its_fields_and_stays_out_of_its_text(tmp_path, front):
    path = tmp_path / "ferja.md"
    body = "# Ferja er innstilt\n\nFerja mellom Bodø og Moskenes er innstilt resten av dagen på grunn av sterk vind."
    path.write_text(front + "\n" + body + "\n", encoding="utf-8")
    result = load_file(path)
    [article] = result.articles
    assert article.title == "Ferja er innstilt: vinden tar" and article.date == "2025-01-02"
    assert (article.source, article.author, article.language) == ("Lokalavisa", "Kari Nordmann", "nb")
    assert article.url == "https://lokalavisa.example/ferja" and article.id == "ferja"
    assert "Moskenes" in article.text and not any(k in article.text for k in ("title", "draft", "+++", "---"))
    assert not result.warnings


def test_text_between_two_rules_is_the_articles_own_not_front_matter(tmp_path):
    path = tmp_path / "notat.md"
    path.write_text(
        "---\nFerja mellom Bodø og Moskenes er innstilt i dag: vinden er for sterk.\n---\n\nMer i morgen.\n",
        encoding="utf-8",
    )
    [article] = load_file(path).articles
    assert "Moskenes" in article.title + article.text and "Mer i morgen" in article.text


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("dates.jsonl", '{"title": "A", "text": "%s", "date": "2024-13-45"}\n', "dates.jsonl:1"),
        ("dates.json", '[{"title": "A", "text": "%s", "published": "i går"}]', "dates.json[0]"),
        ("dates.md", "---\ntitle: A\ndate: neste uke\n---\n\n%s\n", "dates.md"),
    ],
)
def test_a_date_that_is_not_understood_is_named_and_the_article_still_lands(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content % "Ferja mellom Bodø og Moskenes er innstilt i dag.", encoding="utf-8")
    result = load_file(path)
    [article] = result.articles
    [warning] = result.warnings
    assert article.date is None and warning.startswith(str(tmp_path / where)) and "not understood" in warning


@pytest.mark.parametrize(
    ("name", "content", "where"),
    [
        ("tysk.md", "---\ntitle: Fähre\nlanguage: de\n---\n\n%s\n", "tysk.md"),
        ("tysk.jsonl", '{"title": "A", "text": "%s", "language": "de"}\n', "tysk.jsonl:1"),
    ],
)
def test_a_language_kilde_does_not_support_is_named_in_a_warning(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(
        content % "Ferja mellom Bodø og Moskenes er innstilt i dag på grunn av sterk vind.", encoding="utf-8"
    )
    result = load_file(path)
    [article] = result.articles
    [warning] = result.warnings
    assert warning.startswith(f"{tmp_path / where}: language 'de' is not one Kilde supports (nb, nn, en)")
    assert f"stored as {article.language!r}" in warning


def test_metadata_of_another_json_type_is_named_in_a_warning_not_dropped_quietly(tmp_path):
    path = tmp_path / "items.jsonl"
    record = {
        "id": ["a", "b"],
        "source": {"name": "NTB"},
        "title": "Ferja er innstilt",
        "text": "Ferja mellom Bodø og Moskenes er innstilt i dag på grunn av sterk vind.",
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    result = load_file(path)
    [article] = result.articles
    assert article.source is None and article.title == "Ferja er innstilt"
    assert result.warnings == [
        f"{tmp_path / 'items.jsonl'}:1: 'id' must be a string, got a list; stored without it",
        f"{tmp_path / 'items.jsonl'}:1: 'source' must be a string, got an object; stored without it",
    ]


def test_a_file_over_50_mb_is_refused_by_name_before_it_is_read(tmp_path):
    big = tmp_path / "arkiv.jsonl"
    with big.open("wb") as sparse:  # no 50 MB written: a hole of that size
        sparse.truncate(50 * 2**20 + 1)
    loaded = load_file(big)
    assert not loaded.articles
    [rejected] = loaded.rejected
    assert rejected.source.endswith("arkiv.jsonl")
    assert rejected.reason == (
        "the file has 52,428,801 bytes (50.0 MB); the limit is 52,428,800 bytes (50.0 MB) a file: split it "
        "into smaller files (a .jsonl file by its lines) and ingest those"
    )
