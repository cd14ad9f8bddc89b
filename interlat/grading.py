"""MATH answer grading: the last \\boxed{} checked symbolically (docs/method.md section 5).

`grade(prediction, gold_solution)` extracts the last complete `\\boxed{...}` of each
text (`extract_boxed`), parses both with math-verify and compares them with its
`verify` (numbers, fractions, radicals, sets, intervals, expressions), never with
string equality.

math-verify's own timeouts use `signal.alarm`, which raises outside the main thread,
so they are switched off here (`parsing_timeout=None`, `timeout_seconds=None`):
`grade` is safe in threads but unbounded in time. Some inputs make sympy run for
ever (e.g. a prediction of 9^{9^{9^{9}}}); for model output pass `timeout_s`, which
runs the check in one spawned worker process shared by all threads and replaces
that worker after a timeout (the answer then grades False).
"""

import atexit
import logging
import multiprocessing
import re
import threading

log = logging.getLogger(__name__)

_BOXED_OPEN = re.compile(r"\\boxed\s*\{")
#: Seconds a fresh worker process may take to start and import math-verify.
_WORKER_START_S = 120.0


def extract_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in `text`, or None if there is none.

    Braces are balanced (escaped `\\{`, `\\}` do not count); a last box left open
    (e.g. cut off by the token limit) gives None, not an earlier box.
    """
    opens = list(_BOXED_OPEN.finditer(text))
    if not opens:
        return None
    start = opens[-1].end()
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


class _IgnoreDisabledTimeoutWarning(logging.Filter):
    """Drops math-verify's "Timeout is disabled" warning: `grade` bounds time itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_IgnoreDisabledTimeoutWarning())


def _import_math_verify() -> None:
    import math_verify  # noqa: F401


def answers_match(gold_answer: str, predicted_answer: str) -> bool:
    """math-verify equivalence of two boxed contents (no timeout; thread-safe)."""
    from math_verify import parse, verify

    gold = parse(f"$\\boxed{{{gold_answer}}}$", parsing_timeout=None)
    predicted = parse(f"$\\boxed{{{predicted_answer}}}$", parsing_timeout=None)
    if not gold or not predicted:
        return False
    return bool(verify(gold, predicted, timeout_seconds=None))


class _Worker:
    """One spawned worker process shared by all threads; replaced after a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = None

    def run(self, fn, args: tuple, timeout_s: float):
        """fn(*args) in the worker; TimeoutError (and a fresh worker) after `timeout_s` s."""
        with self._lock:
            if self._pool is None:
                pool = multiprocessing.get_context("spawn").Pool(processes=1)
                try:
                    pool.apply_async(_import_math_verify).get(_WORKER_START_S)
                except BaseException:
                    pool.terminate()
                    raise
                self._pool = pool
            result = self._pool.apply_async(fn, args)
            try:
                return result.get(timeout_s)
            except multiprocessing.TimeoutError:
                self._stop()
                raise TimeoutError(f"{fn.__name__} took more than {timeout_s} s") from None

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def close(self) -> None:
        """Stop the worker process (if any); a later call starts a fresh one."""
        with self._lock:
            self._stop()


_WORKER = _Worker()
atexit.register(_WORKER.close)


def grade(prediction: str, gold_solution: str, *, timeout_s: float | None = None) -> bool:
    """Whether the last boxed answer of `prediction` equals that of `gold_solution`.

    A prediction without a (complete) box is wrong. A gold solution without one is a
    data error: ValueError. With `timeout_s`, the comparison runs in a worker process
    and counts as wrong if it takes longer (logged as a warning).
    """
    gold_answer = extract_boxed(gold_solution)
    if gold_answer is None or not gold_answer.strip():
        raise ValueError(f"gold solution has no \\boxed{{}} answer: {gold_solution[-200:]!r}")
    predicted_answer = extract_boxed(prediction)
    if predicted_answer is None or not predicted_answer.strip():
        return False
    if timeout_s is None:
        return answers_match(gold_answer, predicted_answer)
    try:
        return _WORKER.run(answers_match, (gold_answer, predicted_answer), timeout_s)
    except TimeoutError:
        log.warning(
            "grading timed out after %s s (gold %r, predicted %r): counted wrong",
            timeout_s,
            gold_answer[:100],
            predicted_answer[:100],
        )
        return False
