"""bench/test_time.py reads pytest's own JUnit report: the reader's share is summed from the named tests."""

import subprocess
import sys

import pytest

from bench.test_time import READER_TESTS, main, read_report


def test_the_reader_share_is_summed_from_a_real_pytest_report(tmp_path):
    (tmp_path / "test_sample.py").write_text(
        "import time\ndef test_quick():\n    pass\ndef test_slow():\n    time.sleep(0.3)\n",
        encoding="utf-8",
    )
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "test_sample.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    times = read_report(report)
    assert set(times.tests) == {"test_sample::test_quick", "test_sample::test_slow"}
    slow, n = times.share(["test_sample::test_slow"])
    assert n == 1 and 0.3 <= slow <= times.total_s
    assert times.share(READER_TESTS) == (0, 0)


def test_the_named_reader_tests_exist():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for prefix in READER_TESTS:
        module, _, name = prefix.partition("::")
        path = root / (module.replace(".", "/") + ".py")
        assert path.is_file(), prefix
        assert not name or f"def {name}(" in path.read_text(encoding="utf-8"), prefix


def test_a_missing_or_broken_report_is_named(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuite", encoding="utf-8")
    for path in (tmp_path / "absent.xml", broken):
        with pytest.raises(SystemExit, match=path.name):
            main([str(path)])
