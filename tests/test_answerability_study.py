"""The answerability study's choices (evals/answerability_study.py): the threshold rule it shares with the reader's
calibration, and the fit that keeps each signal in its direction."""

import numpy as np

from evals.answerability_study import FEATURES, Example, fit_logistic, logistic_scores, threshold_refusal


def example(answerable: bool, dataset: str = "val", passed: bool = True) -> Example:
    return Example("no", dataset, answerable, passed, 0.0, (0.0,) * len(FEATURES))


def test_the_threshold_is_the_highest_within_the_false_refusal_bound_and_counts_the_earlier_gates():
    examples = [example(True) for _ in range(20)] + [example(False) for _ in range(4)]
    scores = [float(i) for i in range(20)] + [0.5, 1.5, 2.5, 30.0]
    threshold, false_refusal, refused = threshold_refusal(examples, scores)
    assert (
        threshold == 1.0 and false_refusal == 0.05 and refused == 0.25
    )  # one of 20 refused; 0.5 of the negatives
    # an answerable question the earlier gates refuse spends the bound: no threshold may refuse another
    examples[19] = example(True, passed=False)
    threshold, false_refusal, refused = threshold_refusal(examples, scores)
    assert threshold == 0.0 and false_refusal == 0.05 and refused == 0.0


def test_a_large_set_keeps_the_bound_on_its_own():
    big = [example(True, "big") for _ in range(100)]
    small = [example(True, "small") for _ in range(100)]
    scores = [float(i) for i in range(100)] + [1000.0] * 100  # only the big set's questions are in reach
    assert threshold_refusal(big + small, scores)[0] == 5.0  # 5 % of "big" refused (2.5 % together)
    # with the big set below the size that counts alone, only the whole bound holds
    assert threshold_refusal(big[:99] + small, scores[:99] + scores[100:])[0] == 9.0


def test_a_signal_against_its_direction_gets_no_weight_when_directions_are_kept():
    rng = np.random.default_rng(0)
    margin = rng.normal(size=400)
    dense = rng.normal(size=400)
    y = (margin - dense + 0.3 * rng.normal(size=400) > 0).astype(float)  # higher dense, less answerable
    x = np.column_stack([margin, dense])
    free = fit_logistic(x, y, steps=500)
    kept = fit_logistic(x, y, signs=[1, 1], steps=500)
    assert free[2][1] < -0.5 and kept[2][1] == 0.0 and kept[2][0] > 0.5
    scores = logistic_scores(kept, x)
    assert np.corrcoef(scores, margin)[0, 1] > 0.99  # ranks by the margin alone
