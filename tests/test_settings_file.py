"""Settings read from kilde.toml keep their types, and a value of the wrong shape is named, not stored."""

from pathlib import Path

import pytest

from assistant.core.config import resolve_settings
from assistant.core.errors import ConfigError


def settings_from_file(tmp_path: Path, body: str):
    path = tmp_path / "kilde.toml"
    path.write_text("[kilde]\n" + body, encoding="utf-8")
    return resolve_settings({}, environ={}, config_file=path)


def test_a_per_language_table_is_read_as_numbers_by_language(tmp_path):
    settings = settings_from_file(
        tmp_path,
        "refuse_missing_terms = {nb = 2, en = 3}\nreader_margins = {no = -9.5}\n"
        'refuse_unseen_words = ["nb", "nn"]\nrefuse_unseen_words_min_chunks = 100\n',
    )
    assert settings.refuse_missing_terms == {"nb": 2, "en": 3}
    assert settings.reader_margins == {"no": -9.5}
    assert settings.refuse_unseen_words == ("nb", "nn")
    assert settings.refuse_unseen_words_min_chunks == 100


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('refuse_missing_terms = "nb=2"', "expected a table of numbers by language"),
        ('refuse_missing_terms = {nb = "two"}', "the value for nb is not a number"),
        ("reader_margins = {no = true}", "the value for no is not a number"),
    ],
)
def test_a_per_language_setting_of_another_shape_is_refused_by_name(tmp_path, line, says):
    with pytest.raises(ConfigError) as raised:
        settings_from_file(tmp_path, line + "\n")
    assert line.split(" =")[0] in str(raised.value) and says in str(raised.value)


@pytest.mark.parametrize(
    ("argv", "environ", "reader"),
    [
        (["ask", "Hva sier artikkel 4?"], {}, False),
        (["ask", "Hva sier artikkel 4?", "--reader"], {}, True),
        (["ask", "Hva sier artikkel 4?"], {"KILDE_READER": "1"}, True),
        (["ask", "Hva sier artikkel 4?", "--no-reader"], {"KILDE_READER": "1"}, False),
        (["serve", "--reader"], {}, True),
        (["demo", "--reader"], {}, True),
        (["mcp", "--reader"], {}, True),
        (["eval", "run", "--dataset", "evals/data/seed.jsonl", "--reader"], {}, True),
    ],
)
def test_the_reader_flag_of_a_command_that_answers_wins_over_the_environment(
    monkeypatch, tmp_path, argv, environ, reader
):
    from assistant.cli import build_parser
    from assistant.core.config import settings_from

    monkeypatch.chdir(tmp_path)  # no kilde.toml
    for name in ("KILDE_READER", "KILDE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert settings_from(build_parser().parse_args(argv)).reader is reader
