"""interlat.grading: last-\\boxed{} extraction and symbolic MATH grading (docs/method.md section 5)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from interlat import grading
from interlat.grading import extract_boxed, grade


def _solution(answer: str) -> str:
    return f"Working through the steps, we find the answer is $\\boxed{{{answer}}}$."


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("2", "2.0"),
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("\\dfrac{3}{4}", "\\frac34"),
    ("\\{1,2\\}", "\\{2,1\\}"),
    ("x^2+2x", "x(x+2)"),
    ("90^\\circ", "90"),
]
DIFFERENT = [
    ("3", "4"),
    ("\\frac{1}{2}", "\\frac{1}{3}"),
    ("\\sqrt{8}", "3\\sqrt{2}"),
    ("x+1", "x-1"),
]


@pytest.mark.parametrize("gold,predicted", EQUIVALENT)
def test_equivalent_forms_grade_true(gold, predicted):
    assert grade(_solution(predicted), _solution(gold))


@pytest.mark.parametrize("gold,predicted", DIFFERENT)
def test_wrong_answers_grade_false(gold, predicted):
    assert not grade(_solution(predicted), _solution(gold))


@pytest.mark.parametrize(
    "text,want",
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{a\\}b}", "a\\}b"),
        ("first \\boxed{3} then \\boxed{4} done", "4"),
        ("\\boxed {7}", "7"),
        ("\\boxed{}", ""),
        ("no box here", None),
        ("\\boxed{5} and then \\boxed{\\frac{1}{2", None),
    ],
)
def test_extract_boxed(text, want):
    assert extract_boxed(text) == want


def test_prediction_without_box_is_wrong_and_last_box_wins():
    gold = _solution("4")
    assert not grade("the answer is 4", gold)
    assert not grade("\\boxed{}", gold)
    assert grade("maybe \\boxed{3}? no: \\boxed{4}", gold)
    assert not grade("maybe \\boxed{4}? no: \\boxed{3}", gold)


def test_gold_without_box_is_a_data_error():
    with pytest.raises(ValueError, match="no \\\\boxed"):
        grade("\\boxed{4}", "the answer is 4")


def test_grading_works_inside_a_thread_pool():
    cases = [(p, g, True) for g, p in EQUIVALENT] + [(p, g, False) for g, p in DIFFERENT]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda c: grade(_solution(c[0]), _solution(c[1])), cases))
    assert got == [want for _, _, want in cases]


def test_timeout_counts_as_wrong_and_the_worker_recovers():
    gold = _solution("5")
    assert grade(_solution("5.0"), gold, timeout_s=30)
    start = time.monotonic()
    # sympy cannot settle 9^(9^(9^9)) == 5 in any reasonable time.
    assert not grade(_solution("9^{9^{9^{9}}}"), gold, timeout_s=1)
    assert time.monotonic() - start < 10
    assert grade(_solution("\\frac{10}{2}"), gold, timeout_s=30)


def test_worker_raises_timeout_error():
    with pytest.raises(TimeoutError):
        grading._WORKER.run(time.sleep, (30,), 0.5)
    assert grading._WORKER.run(abs, (-3,), 30) == 3
