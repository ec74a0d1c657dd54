"""Reading commands pointed at a folder with no index say so and create nothing there."""

from __future__ import annotations

import pytest

from assistant.cli import main


@pytest.mark.parametrize("argv", [["ask", "Hva sier artikkel 4?"], ["stats"], ["articles"], ["show", "x"]])
def test_a_missing_index_is_reported_and_not_created(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.setenv("KILDE_CACHE_DIR", str(tmp_path / "cache"))
    missing = tmp_path / "MISSING"
    assert main([*argv, "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"No Kilde index found at {missing}" in err and "kilde ingest" in err
    assert not missing.exists()
