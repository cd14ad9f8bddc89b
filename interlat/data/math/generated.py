"""The embedded MATH-format benchmark: seeded multi-step problems with hendrycks MATH's schema.

Each record has `task_id` (content-derived), `problem`, `solution` (ending in ``\\boxed{...}``),
`subject` (a real MATH subject name), `level` (1-5), `split` and a reference `plan`: the
intermediate steps without the final answer, which the tiny sender is pretrained to write
(docs/method.md section 1: "provide a plan only, not the final answer"). The plan carries the
hard step (the intermediate equation); the receiver's remaining step is easy, and the
solution is the answer alone, so that a receiver without the plan must do both steps.
"""

import hashlib
import random

from interlat.errors import InterlatError

#: generator per subject: (a, x, b) -> (problem, plan, answer)
SUBJECTS = ("Algebra", "Prealgebra")


def task_id(benchmark: str, problem: str) -> str:
    """A stable, content-derived id: the first 16 hex digits of sha256(benchmark + problem)."""
    return hashlib.sha256(f"{benchmark}\n{problem}".encode()).hexdigest()[:16]


def _algebra(a: int, x: int, b: int) -> tuple[str, str]:
    c = a * x + b
    problem = f"Solve for $x$: ${a}x+{b}={c}$."
    plan = f"Subtract {b} from both sides to get {a}x={c - b}. Then divide both sides by {a}."
    return problem, plan


def _prealgebra(a: int, x: int, b: int) -> tuple[str, str]:
    c = a * x - b
    problem = f"Solve for $x$: ${a}x-{b}={c}$."
    plan = f"Add {b} to both sides to get {a}x={c + b}. Then divide both sides by {a}."
    return problem, plan


_MAKERS = {"Algebra": _algebra, "Prealgebra": _prealgebra}


def _level(a: int, x: int) -> int:
    """Difficulty 1-5 from the size of the product a*x (the number the plan must carry)."""
    return min(5, 1 + (a * x) // 36)


def generate(
    *,
    seed: int,
    n_train: int,
    n_test: int,
    subjects: tuple[str, ...] = SUBJECTS,
    a_range: tuple[int, int] = (2, 5),
    x_range: tuple[int, int] = (2, 15),
    b_range: tuple[int, int] = (2, 29),
    n_compress: int = 0,
) -> list[dict]:
    """Draw `n_train` + `n_test` problems per subject; train and test share no (a, x, b).

    `n_compress` more per subject (split `compress`) are drawn from the rest with their own
    seeded generator, so the train and test problems are the same whatever `n_compress` is.
    Only the compression student trains on them (docs/method.md section 4).
    """
    rng = random.Random(seed)
    records = []
    for subject in subjects:
        make = _MAKERS[subject]
        triples = [
            (a, x, b)
            for a in range(a_range[0], a_range[1] + 1)
            for x in range(x_range[0], x_range[1] + 1)
            for b in range(b_range[0], b_range[1] + 1)
            if subject != "Prealgebra" or a * x - b > 0
        ]
        if n_train + n_test + n_compress > len(triples):
            field = "n_train" if n_train + n_test > len(triples) else "n_compress"
            extra = f" + {n_compress} (n_compress)" if n_compress else ""
            raise InterlatError(
                f"field \"{field}\": {subject}: {n_train} + {n_test}{extra} problems asked, "
                f"{len(triples)} distinct ones exist"
            )
        chosen = rng.sample(triples, n_train + n_test)
        rest = sorted(set(triples) - set(chosen))
        chosen += random.Random(f"{seed}:compress:{subject}").sample(rest, n_compress)
        for i, (a, x, b) in enumerate(chosen):
            problem, plan = make(a, x, b)
            records.append(
                {
                    "task_id": task_id("math", problem),
                    "problem": problem,
                    "solution": f"\\boxed{{{x}}}",
                    "plan": plan,
                    "subject": subject,
                    "level": _level(a, x),
                    "split": "train" if i < n_train else "test" if i < n_train + n_test else "compress",
                }
            )
    return records
