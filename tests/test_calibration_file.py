"""Writing `assistant/models/calibration.json`: every calibrating command updates its own keys, keeps the others,
and stops on a file it cannot read instead of writing over what it held. Every test writes under tmp_path."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from assistant.core.errors import BadInputError
from evals import calibrate, calibrate_reader, support_eval

# What `python -m evals.calibrate` computes, trimmed to the keys it turns into settings plus one of provenance.
RESULT = {
    "answerable_threshold": 0.78,
    "refuse_missing_terms": {"en": 1},
    "refuse_unseen_words": ["nb"],
    "refuse_unseen_words_min_chunks": 900,
    "auc": 0.53,
}
UNREADABLE = {
    "cut short": '{"answerable_threshold": 0.78, "support_thr',
    "not an object": "[0.78]",
}


def test_calibrate_updates_its_keys_and_keeps_every_other(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"answerable_threshold": 0.5, "support_threshold": 0.61}), encoding="utf-8")
    calibrate.write_calibration(RESULT, path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["support_threshold"] == 0.61 and data["answerable_threshold"] == 0.78
    assert data["answerable_threshold_provenance"] == {"auc": 0.53}
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]  # no temporary file left behind


def test_a_missing_calibration_file_is_created(tmp_path):
    path = tmp_path / "calibration.json"
    calibrate.merge_into_calibration({"rerank_floors_provenance": {"command": "x"}}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"rerank_floors_provenance": {"command": "x"}}


@pytest.mark.parametrize("write", [calibrate.write_calibration, calibrate.merge_into_calibration])
@pytest.mark.parametrize("text", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_calibration_file_is_named_and_kept_as_it_was(tmp_path, write, text):
    path = tmp_path / "calibration.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInputError) as raised:
        write(RESULT, path)
    message = str(raised.value)
    assert str(path) in message and "git checkout" in message and "\n" not in message
    assert path.read_text(encoding="utf-8") == text


def test_a_calibrating_command_stops_on_an_unreadable_file_before_it_computes(tmp_path, capsys):
    path = tmp_path / "calibration.json"
    path.write_text(UNREADABLE["cut short"], encoding="utf-8")
    computed = []

    def compute() -> dict:
        computed.append(True)
        return RESULT

    code = calibrate.run_calibration("calibrate", compute, calibrate.write_calibration, False, path)
    assert code == BadInputError.exit_code and not computed
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"calibrate: {path}: ") and "\n" not in error
    assert path.read_text(encoding="utf-8") == UNREADABLE["cut short"]


def test_a_dry_run_reads_no_calibration_file(tmp_path, capsys):
    path = tmp_path / "calibration.json"
    path.write_text(UNREADABLE["cut short"], encoding="utf-8")
    assert (
        calibrate.run_calibration("calibrate", lambda: RESULT, calibrate.write_calibration, True, path) == 0
    )
    assert json.loads(capsys.readouterr().out) == RESULT


def _write_support(result: dict, path) -> None:
    support_eval.write_calibration(0.61, np.array([-1.0, 2, 0, -3, -2, -1]), path)


def _write_reader(result: dict, path) -> None:
    keys = ("reader_margins", "reader_rank_weights", "reader_missing_terms", "reader_unseen_words")
    calibrate_reader.write_reader_margins({key: {} for key in keys}, path)


@pytest.mark.parametrize("write", [_write_support, _write_reader], ids=["support_eval", "calibrate_reader"])
def test_the_other_calibrating_commands_keep_an_unreadable_file_too(tmp_path, write):
    path = tmp_path / "calibration.json"
    path.write_text(UNREADABLE["cut short"], encoding="utf-8")
    with pytest.raises(BadInputError, match="git checkout"):
        write(RESULT, path)
    assert path.read_text(encoding="utf-8") == UNREADABLE["cut short"]
    path.unlink()
    write(RESULT, path)  # a missing file is created
    assert json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def shipped_calibration_at(monkeypatch):
    """Point Kilde's settings at another calibration file; the cached read is dropped before and after."""
    from assistant.core import config

    def point(path):
        monkeypatch.setattr(config, "CALIBRATION_FILE", path)
        config.read_calibration.cache_clear()

    yield point
    config.read_calibration.cache_clear()


@pytest.mark.parametrize("text", [*UNREADABLE.values(), None], ids=[*UNREADABLE, "missing"])
def test_settings_refuse_a_calibration_file_they_cannot_read_instead_of_answering_with_defaults(
    tmp_path, shipped_calibration_at, text
):
    """A corrupt or missing file was read as empty: every refusal then followed the defaults (a dense threshold of
    0.80 instead of the calibrated one, no reader margins), without a word."""
    from assistant.core.config import Settings
    from assistant.core.errors import ConfigError

    path = tmp_path / "calibration.json"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    shipped_calibration_at(path)
    with pytest.raises(ConfigError, match=re.escape("git checkout -- assistant/models/calibration.json")):
        Settings()


def test_a_calibrated_value_of_the_wrong_kind_is_named(tmp_path, shipped_calibration_at):
    from assistant.core.config import Settings
    from assistant.core.errors import ConfigError

    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"answerable_threshold": 0.78, "reader_margins": [1, 2]}), encoding="utf-8")
    shipped_calibration_at(path)
    with pytest.raises(ConfigError, match="reader_margins"):
        Settings()
    # A key the file does not record takes its default, as before
    path.write_text(json.dumps({"answerable_threshold": 0.78}), encoding="utf-8")
    shipped_calibration_at(path)
    settings = Settings()
    assert settings.answerable_threshold == 0.78 and settings.reader_margins == {}


NOT_FINITE_OR_WHOLE = {
    "rerank_floors": {"no": float("nan")},
    "reader_rerank_floors": {"no": float("inf")},
    "reader_margins": {"no": float("-inf")},
    "reader_rank_weights": {"no": float("inf")},
    "support_weights": [float("nan")] * 6,
    "refuse_missing_terms": {"nb": 1.5},
    "reader_missing_terms": {"no": float("inf")},
    "refuse_unseen_words_min_chunks": float("nan"),
    "rerank_sure_min_chunks": float("inf"),
}


@pytest.mark.parametrize(("key", "value"), NOT_FINITE_OR_WHOLE.items(), ids=NOT_FINITE_OR_WHOLE)
def test_a_calibrated_value_that_is_no_finite_number_or_no_whole_count_is_named(
    tmp_path, shipped_calibration_at, key, value
):
    """JSON's NaN and Infinity parse: a floor, margin or weight of nan was taken (nan compares false with every
    score, so the rule never, or always, refused), a count of inf was an OverflowError from deep in the settings,
    and a count of 1.5 was taken as 1. Each names the key and the way out."""
    from assistant.core.config import Settings
    from assistant.core.errors import ConfigError

    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"answerable_threshold": 0.78, key: value}), encoding="utf-8")
    shipped_calibration_at(path)
    with pytest.raises(ConfigError) as caught:
        Settings()
    said = str(caught.value)
    assert said.startswith(f"{path}: {key} = ") and "(not a " in said, said
    assert "git checkout -- assistant/models/calibration.json" in said
