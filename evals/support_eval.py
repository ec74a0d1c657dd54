"""Calibrate and measure the sentence-support check on evals/data/support_pairs.jsonl.

    python -m evals.support_eval            # fit, report, write assistant/models/calibration.json
    python -m evals.support_eval --no-write # report only

The positive class is the *unsupported* flag (label false): precision is the share of flagged
sentences that are really unsupported, recall the share of unsupported sentences that get flagged.
The logistic weights are fitted on all pairs; the figures are reported twice, in-sample and from
5-fold cross-validation grouped by passage (no passage is in both the fit and the test fold).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from assistant.answering.support import FEATURES, SupportChecker
from assistant.core.config import CALIBRATION_FILE
from assistant.core.errors import BadInputError
from evals.calibrate import merge_into_calibration, read_calibration_file

DATA = Path(__file__).resolve().parent / "data" / "support_pairs.jsonl"


def load(path: Path = DATA) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def feature_matrix(rows: list[dict], checker: SupportChecker) -> np.ndarray:
    return np.vstack([checker.features(r["sentence"], r["passage"])[0] for r in rows])


# Evidence must point the right way: similarity and overlap can only raise the score, a missing
# number or name or a negation mismatch can only lower it. A feature fitted with the wrong sign
# (lexical overlap is high in subtle falsifications too) is left out instead.
SIGNS = (1, 1, -1, -1, -1)


def fit(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Logistic regression with sign constraints; returns (bias, *weights)."""
    active = list(range(x.shape[1]))
    while True:
        w = _fit(x[:, active], y)
        wrong = [f for f, v in zip(active, w[1:], strict=False) if v * SIGNS[f] < 0]
        if not wrong:
            break
        active.remove(min(wrong, key=lambda f: abs(w[1 + active.index(f)])))
    full = np.zeros(x.shape[1] + 1)
    full[0] = w[0]
    full[[1 + f for f in active]] = w[1:]
    return full


def _fit(x: np.ndarray, y: np.ndarray, l2: float = 0.05, steps: int = 200) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns (bias, *weights)."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -40, 40)))
        grad = xb.T @ (p - y) + reg @ w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + reg + np.eye(len(w)) * 1e-9
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def probabilities(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(w[0] + x @ w[1:], -40, 40)))


def metrics(scores: np.ndarray, supported: np.ndarray, threshold: float) -> dict:
    flagged = scores < threshold
    unsupported = ~supported
    tp = int((flagged & unsupported).sum())
    fp = int((flagged & supported).sum())
    fn = int((~flagged & unsupported).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "threshold": round(threshold, 3),
        "precision": round(precision, 3),
        "recall": round(recall, 3),
        "f1": round(f1, 3),
        "flagged": tp + fp,
        "unsupported": tp + fn,
        "pairs": len(scores),
    }


def best_threshold(scores: np.ndarray, supported: np.ndarray) -> float:
    """The threshold with the best F1 for the unsupported flag (ties: the lower, flagging less)."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 3)
    return float(max(grid, key=lambda t: (metrics(scores, supported, t)["f1"], -t)))


def cross_validate(x: np.ndarray, y: np.ndarray, groups: list[str], folds: int = 5) -> np.ndarray:
    unique = sorted(set(groups))
    rng = np.random.default_rng(7)
    rng.shuffle(unique)
    fold_of = {g: i % folds for i, g in enumerate(unique)}
    out = np.zeros(len(y))
    for k in range(folds):
        test = np.array([fold_of[g] == k for g in groups])
        w = fit(x[~test], y[~test])
        out[test] = probabilities(x[test], w)
    return out


def write_calibration(threshold: float, weights: np.ndarray, path: Path = CALIBRATION_FILE) -> None:
    """Merge our keys into the calibration file; other keys (answerable_threshold) are kept."""
    merge_into_calibration(
        {
            "support_threshold": round(threshold, 3),
            "support_weights": [round(float(v), 4) for v in weights],
            "support_features": ["bias", *FEATURES],
        },
        path,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--no-write", action="store_true", help="report only; leave calibration.json alone")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if not args.no_write:
        try:
            read_calibration_file()  # an unreadable file stops the command before it fits, not after
        except BadInputError as exc:
            print(f"support_eval: {exc}", file=sys.stderr)
            return exc.exit_code

    from assistant.answering.extractive import SentenceVectors
    from assistant.build import build_embedder, build_support_checker
    from assistant.core.config import resolve_settings

    settings = resolve_settings()
    rows = load(args.data)
    checker = build_support_checker(settings, SentenceVectors(build_embedder(settings)))
    x = feature_matrix(rows, checker)
    y = np.array([1.0 if r["label"] else 0.0 for r in rows])
    supported = y.astype(bool)

    weights = fit(x, y)
    in_sample = probabilities(x, weights)
    threshold = best_threshold(in_sample, supported)
    cv_scores = cross_validate(x, y, [r["passage"] for r in rows])
    report = {
        "data": str(args.data),
        "features": ["bias", *FEATURES],
        "weights": [round(float(v), 4) for v in weights],
        "in_sample": metrics(in_sample, supported, threshold),
        "cross_validated": metrics(cv_scores, supported, threshold),
        "by_kind_missed": {},
    }
    for row, score in zip(rows, cv_scores, strict=False):
        if not row["label"] and score >= threshold:
            report["by_kind_missed"][row["kind"]] = report["by_kind_missed"].get(row["kind"], 0) + 1
    report["false_flags_by_kind"] = {}
    for row, score in zip(rows, cv_scores, strict=False):
        if row["label"] and score < threshold:
            report["false_flags_by_kind"][row["kind"]] = report["false_flags_by_kind"].get(row["kind"], 0) + 1
    if not args.no_write:
        write_calibration(threshold, weights)
        report["written"] = str(CALIBRATION_FILE)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"support check on {len(rows)} labelled pairs ({int((~supported).sum())} unsupported)")
        print(f"weights {dict(zip(report['features'], report['weights'], strict=False))}")
        for name in ("in_sample", "cross_validated"):
            m = report[name]
            print(
                f"{name:>16}: threshold {m['threshold']}  precision {m['precision']}  recall {m['recall']}  "
                f"F1 {m['f1']}  (flagged {m['flagged']} of {m['pairs']})"
            )
        print(f"missed unsupported (cv) by kind: {report['by_kind_missed']}")
        print(f"supported flagged (cv) by kind: {report['false_flags_by_kind']}")
        if "written" in report:
            print(f"wrote support_threshold and support_weights to {report['written']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
