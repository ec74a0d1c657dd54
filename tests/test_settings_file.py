"""Settings read from kilde.toml keep their types, and a value of the wrong shape is named, not stored."""

import os
import re
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


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('allowed_origins = ["*"]', "'*' is not an origin"),
        ('allowed_origins = ["not a url", "https://ok.example"]', "'not a url' is not an origin"),
        ('allowed_origins = ["https://x.org/path/"]', "is not an origin"),
        ('trusted_proxies = ["10.0.0.999"]', "'10.0.0.999' is not an IP address or network"),
        ("allowed_origins = [1, 2]", "expected a list of strings"),
        ("refuse_unseen_words = [1, 2]", "expected a list of strings"),
        ("allowed_origins = 5", "expected a list or a comma-separated string"),
        ("top_k = 2.9", "expected a whole number"),
        ("top_k = true", "expected a whole number"),
        ("answerable_threshold = 5.0", "answerable_threshold must be from 0 to 1"),
        ("support_threshold = -1", "support_threshold must be from 0 to 1"),
        ("request_budget_s = 0", "request_budget_s must be positive"),
        ("chroma_timeout_s = 0", "chroma_timeout_s must be a positive number of seconds, got 0"),
        ("chroma_timeout_s = inf", "'chroma_timeout_s' has an invalid value inf: not a finite number"),
        ("chroma_timeout_s = nan", "'chroma_timeout_s' has an invalid value nan: not a finite number"),
        ("rate_limit_per_minute = -5", "rate_limit_per_minute must be 0 (no limit) or more"),
        ("ui_concurrency = 0", "ui_concurrency must be at least 1"),
        ("port = 70000", "port must be from 0 to 65535"),
        ('retriever = "hybrid-rerank"', "retriever must be one of hybrid+rerank, hybrid, dense, bm25, got"),
        ('llm_backend = "ollama"', "llm backend must be one of extractive, openai, openai-compatible, got"),
        ('auth_mode = "open"', "auth mode must be one of none, session, proxy, got 'open'"),
        ('auth_mode = "proxy"\nproxy_user_header = ""', "proxy_user_header must name the header"),
        # Taken without a word before round seventeen (docs/RELIABILITY.md):
        ("llm_max_tokens = 0", "llm_max_tokens must be at least 1, got 0"),
        ("llm_context_tokens = -1", "llm_context_tokens must be at least 1, got -1"),
        ("llm_max_retries = -3", "llm_max_retries must be 0 or more, got -3"),
        ("max_article_chars = -5", "max_article_chars must be 0 (no cap) or more, got -5"),
        ("llm_timeout_s = inf", "'llm_timeout_s' has an invalid value inf: not a finite number"),
        (
            "llm_first_token_timeout_s = inf",
            "'llm_first_token_timeout_s' has an invalid value inf: not a finite",
        ),
        (
            "llm_total_timeout_s = 1e400",
            "'llm_total_timeout_s' has an invalid value inf: not a finite number",
        ),
        ("request_budget_s = inf", "'request_budget_s' has an invalid value inf: not a finite number"),
        ("reader_margins = {no = nan}", "the value for no is not a finite number"),
        ("rerank_floors = {no = -inf}", "the value for no is not a finite number"),
        ("refuse_missing_terms = {nb = -1}", "refuse_missing_terms must be whole numbers, 0 (never) or more"),
        (
            "refuse_missing_terms = {nb = 1.5}",
            "refuse_missing_terms must be whole numbers, 0 (never) or more",
        ),
        ('collection = ""', "collection must be 3 to 512 letters, digits"),
        ('collection = "../../elsewhere"', "collection must be 3 to 512 letters, digits"),
    ],
)
def test_a_setting_out_of_its_range_or_shape_stops_kilde_with_its_name(tmp_path, body, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        settings_from_file(tmp_path, body + "\n")


@pytest.mark.parametrize(
    ("var", "value", "line", "says"),
    [
        ("KILDE_TOP_K", "five", 'top_k = "five"', "Setting 'top_k' has an invalid value 'five'"),
        ("KILDE_TOP_K", "0", "top_k = 0", "top_k must be at least 1, got 0"),
        (
            "KILDE_LLM_TIMEOUT",
            "nan",
            "llm_timeout_s = nan",
            "'llm_timeout_s' has an invalid value",
        ),
        ("KILDE_PORT", "99999", "port = 99999", "port must be from 0 to 65535, got 99999"),
        ("KILDE_ALLOWED_ORIGINS", "*", 'allowed_origins = ["*"]', "allowed_origins: '*' is not an origin"),
        (
            "KILDE_TRUSTED_PROXIES",
            "10.0.0.999",
            'trusted_proxies = ["10.0.0.999"]',
            "trusted_proxies: '10.0.0.999' is not an IP address",
        ),
    ],
)
def test_a_bad_value_names_the_variable_or_the_file_that_set_it(tmp_path, var, value, line, says):
    """A value out of range said which setting, never where it was set: a deployment with kilde.toml, a unit file
    and a container's environment had three places to look. The message now opens with the variable or the file;
    a value given as an override (a command-line flag) is named by the setting alone."""
    with pytest.raises(ConfigError) as from_env:
        resolve_settings({}, environ={var: value}, config_file=tmp_path / "none.toml")
    assert str(from_env.value).startswith(f"{var}: ") and says in str(from_env.value)
    path = tmp_path / "kilde.toml"
    path.write_text(f"[kilde]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as from_file:
        resolve_settings({}, environ={}, config_file=path)
    assert str(from_file.value).startswith(f"{path}: ") and says in str(from_file.value)


def test_a_settings_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    """Windows Notepad saves UTF-8 with a byte-order mark; TOML refused the file at line 1, column 1, whatever it
    held. It is read past, as the HTTP API reads past one in a JSON body."""
    path = tmp_path / "kilde.toml"
    path.write_bytes("\ufeff[kilde]\ntop_k = 4\n".encode())
    assert resolve_settings({}, environ={}, config_file=path).top_k == 4


def test_the_chroma_servers_timeout_is_read_from_the_environment_and_the_file(tmp_path):
    nowhere = tmp_path / "none.toml"
    assert resolve_settings({}, environ={}, config_file=nowhere).chroma_timeout_s == 30.0
    env = {"KILDE_CHROMA_TIMEOUT": "2.5"}
    assert resolve_settings({}, environ=env, config_file=nowhere).chroma_timeout_s == 2.5
    assert settings_from_file(tmp_path, "chroma_timeout_s = 4\n").chroma_timeout_s == 4.0


def test_the_chroma_servers_token_is_read_from_the_environment_only_and_never_shown(tmp_path):
    """KILDE_CHROMA_TOKEN is the one way to give the token: a file (or a flag, which `ps` shows) would spread
    it. A token in kilde.toml is refused by name, pointing at the variable; a token an HTTP header cannot carry
    is refused without repeating it; the header it goes in may be set anywhere."""
    nowhere = tmp_path / "none.toml"
    token = "kilde-chroma-TOKEN-0123456789abcdef"
    settings = resolve_settings({}, environ={"KILDE_CHROMA_TOKEN": token}, config_file=nowhere)
    assert settings.chroma_token == token and settings.chroma_token_header == "Authorization"
    assert token not in repr(settings)
    env = {"KILDE_CHROMA_TOKEN": token, "KILDE_CHROMA_TOKEN_HEADER": "X-Chroma-Token"}
    assert resolve_settings({}, environ=env, config_file=nowhere).chroma_token_header == "X-Chroma-Token"
    assert (
        settings_from_file(tmp_path, 'chroma_token_header = "X-Api-Key"\n').chroma_token_header == "X-Api-Key"
    )
    with pytest.raises(ConfigError) as in_file:
        settings_from_file(tmp_path, f'chroma_token = "{token}"\n')
    assert "chroma_token is read from the environment only" in str(in_file.value)
    assert "KILDE_CHROMA_TOKEN" in str(in_file.value) and token not in str(in_file.value)
    for bad in (token + "\n", f" {token}", token.replace("-", "ø", 1), token.replace("-", "\x00", 1)):
        with pytest.raises(ConfigError) as refused:
            resolve_settings({}, environ={"KILDE_CHROMA_TOKEN": bad}, config_file=nowhere)
        assert "KILDE_CHROMA_TOKEN holds what an HTTP header cannot carry" in str(refused.value)
        assert token[-8:] not in str(refused.value)
    for header in ("", "X Chroma Token", "Authorization:", "X-Tøken"):
        with pytest.raises(ConfigError, match="chroma_token_header must be an HTTP header name"):
            settings_from_file(tmp_path, f"chroma_token_header = {header!r}\n".replace("'", '"'))


def test_well_formed_origins_and_proxies_are_kept(tmp_path):
    settings = settings_from_file(
        tmp_path,
        'allowed_origins = ["https://intranet.example.org", "http://127.0.0.1:8081/", "http://[::1]:8080"]\n'
        'trusted_proxies = ["10.0.0.5", "10.0.0.0/24", "::1"]\n',
    )
    assert settings.allowed_origins[1] == "http://127.0.0.1:8081/" and len(settings.trusted_proxies) == 3


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("top_k = 0\n[kilde]\n", "Kilde reads the [kilde] table only; found top_k beside it"),
        ("[kidle]\ntop_k = -3\n[kilde_ui]\n", "found kidle, kilde_ui beside it"),
        ("[kilde]\nretrivr = 'bm25'\ntop_kk = 3\n", "unknown settings retrivr, top_kk"),
        ("kilde = 5\n", "kilde must be a table"),
    ],
)
def test_settings_outside_the_kilde_table_are_named_not_ignored(tmp_path, text, says):
    path = tmp_path / "kilde.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(says)):
        resolve_settings({}, environ={}, config_file=path)


def test_a_settings_file_that_is_a_folder_or_not_utf8_is_named(tmp_path):
    (tmp_path / "folder.toml").mkdir()
    (tmp_path / "latin1.toml").write_bytes("[kilde]\nsource = 'Bergens Tidende \xe6'\n".encode("latin-1"))
    for name in ("folder.toml", "latin1.toml"):
        with pytest.raises(ConfigError, match="cannot be read as a UTF-8 settings file"):
            resolve_settings({}, environ={}, config_file=tmp_path / name)


def test_the_environment_is_held_to_the_same_ranges():
    for var, value in (
        ("KILDE_REQUEST_BUDGET", "-1"),
        ("KILDE_RATE_LIMIT", "-5"),
        ("KILDE_UI_CONCURRENCY", "0"),
        ("KILDE_ALLOWED_ORIGINS", "*"),
    ):
        with pytest.raises(ConfigError):
            resolve_settings({}, environ={var: value, "KILDE_CONFIG": os.devnull})


def test_a_settings_file_named_by_kilde_config_that_does_not_exist_is_named(tmp_path):
    missing = tmp_path / "kilde.tmol"  # a typo would run Kilde on its defaults, the settings unseen
    with pytest.raises(ConfigError, match=r"KILDE_CONFIG names .*kilde\.tmol, which does not exist"):
        resolve_settings({}, environ={"KILDE_CONFIG": str(missing)})


def test_kilde_config_naming_a_settings_file_is_read(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text("[kilde]\nport = 8123\n", encoding="utf-8")
    assert resolve_settings({}, environ={"KILDE_CONFIG": str(path)}).port == 8123


def test_the_number_of_questions_answered_at_once_is_set_by_the_environment_too():
    """docs/ui.md and docs/RELIABILITY.md name `KILDE_UI_CONCURRENCY`, which nothing read: `ui_concurrency` could
    be set in `kilde.toml` alone."""
    settings = resolve_settings({}, environ={"KILDE_UI_CONCURRENCY": "1", "KILDE_CONFIG": os.devnull})
    assert settings.ui_concurrency == 1


# What a person types into a numeric variable: the number meant, or a ConfigError naming the variable; never NaN or
# infinity taken into a timeout, a budget or a limit.
NUMERIC_VARIABLES = {
    "KILDE_REQUEST_BUDGET": ("request_budget_s", 4.0),
    "KILDE_LLM_TIMEOUT": ("llm_timeout_s", 4.0),
    "KILDE_CHROMA_TIMEOUT": ("chroma_timeout_s", 4.0),
    "KILDE_RATE_LIMIT": ("rate_limit_per_minute", 4),
    "KILDE_UI_CONCURRENCY": ("ui_concurrency", 4),
    "KILDE_PORT": ("port", 4),
}


@pytest.mark.parametrize("var", NUMERIC_VARIABLES)
def test_a_numeric_variable_is_the_number_meant_or_refused_by_its_name(var):
    name, four = NUMERIC_VARIABLES[var]
    for meant in (" 4 ", "4", "+4"):
        settings = resolve_settings({}, environ={var: meant, "KILDE_CONFIG": os.devnull})
        assert getattr(settings, name) == four and type(getattr(settings, name)) is type(four), meant
    for value in ("nan", "NaN", "inf", "-inf", "Infinity", "1e309", "0x10", "four", ""):
        try:
            settings = resolve_settings({}, environ={var: value, "KILDE_CONFIG": os.devnull})
        except ConfigError as exc:
            assert str(exc).startswith(f"{var}: "), exc
        else:  # an empty variable is unset: the default
            assert value == "" and getattr(settings, name) == getattr(
                resolve_settings({}, environ={"KILDE_CONFIG": os.devnull}), name
            )


@pytest.mark.parametrize(
    "line",
    ["lexical_same_language = nan", "lexical_cross_language = inf", "support_weights = [nan, 1.0]"],
)
def test_a_weight_that_is_no_finite_number_is_refused_by_name(tmp_path, line):
    """TOML has nan and inf; a NaN weight was taken, and compares false with every score."""
    with pytest.raises(ConfigError, match=re.escape(line.split(" = ")[0]) + ".*not a finite number"):
        settings_from_file(tmp_path, line + "\n")
