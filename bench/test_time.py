"""What the test suite's time is made of: the whole run, and the share of the tests that exist for Kilde's reader
(its tokenizer and weights, the model at inference, the reading stage, its export and training code, and the
reader's CI gate), read from the JUnit report that `make test` writes.

    python -m bench.test_time build/test-times.xml

Both figures come from the same run on the same machine, so the reader's cost is not a difference between runs
made at different commits or on different machines."""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

READER_TESTS = (
    "tests.test_e5_weights::",
    "tests.test_reader::",
    "tests.test_reading::",
    "tests.test_export_reader::",
    "tests.test_train_reader::",
    "tests.test_evals_ci::test_reader_answers_meet_the_ci_thresholds",
)


@dataclass(frozen=True)
class SuiteTimes:
    total_s: float  # the pytest session, wall clock
    tests: dict[str, float]  # "module::name" -> seconds (setup, call and teardown)

    def share(self, prefixes: Sequence[str]) -> tuple[float, int]:
        chosen = [t for name, t in self.tests.items() if name.startswith(tuple(prefixes))]
        return sum(chosen), len(chosen)


def read_report(path: Path) -> SuiteTimes:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise SystemExit(f"cannot read the JUnit report {path}: {exc} (make test writes it)") from exc
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        raise SystemExit(f"{path} holds no <testsuite>: not a pytest JUnit report")
    tests = {
        f"{case.get('classname')}::{case.get('name')}": float(case.get("time") or 0.0)
        for suite in suites
        for case in suite.iter("testcase")
    }
    return SuiteTimes(sum(float(s.get("time") or 0.0) for s in suites), tests)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.test_time", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "report", type=Path, help="the JUnit XML of a pytest run (make test: build/test-times.xml)"
    )
    args = parser.parse_args(argv)
    times = read_report(args.report)
    reader_s, reader_n = times.share(READER_TESTS)
    print(
        f"test suite: {times.total_s:.1f} s for {len(times.tests)} tests; "
        f"the reader's {reader_n} tests: {reader_s:.1f} s ({reader_s / 60:.1f} min, "
        f"{100 * reader_s / max(times.total_s, 1e-9):.1f} % of the run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
