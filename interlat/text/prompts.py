"""Prompt text shared by collection, training and evaluation (docs/method.md sections 1-2, 4).

One constant per sentence so that training and evaluation can never drift apart.
"""

BOP = "<bop>"
EOP = "<eop>"
MARKER = "<FIRST_HUMAN_END>"
SPECIAL_TOKENS = (BOP, EOP, MARKER)

#: Announces the message in the receiver's first human turn (training and evaluation).
PLAN_SENTENCE = "Now, you are given a step-by-step plan to complete this task as follows: "

#: The sender's planner instruction, per benchmark (docs/method.md section 1).
PLANNER_INSTRUCTION = {
    "math": "Provide a plan only, not the final answer, for the following problem. ",
    "alfworld": "Please provide a general plan to solve this task. ",
}

#: Fixed ALFWorld episode text (turn prefixes, the engine's feedback to an unparsable action).
ALFWORLD_PHRASES = ("Thought: ", "Action: ", "Observation: ", "Nothing happens.")

#: The compression student's prefix (docs/method.md section 4).
STUDENT_PREFIX = "Please generate a plan to solve this task: "


def planner_messages(benchmark: str, task: str) -> list[dict]:
    """Chat messages asking the sender for a plan for `task`."""
    return [{"role": "user", "content": PLANNER_INSTRUCTION[benchmark] + task}]


def receiver_first_turn(task: str, with_plan: bool = True) -> str:
    """The receiver's first human turn: the task, the plan sentence and the marker.

    Without a plan (the `no_cot` receiver) the turn is the task alone.
    """
    if not with_plan:
        return task
    return f"{task} {PLAN_SENTENCE}{MARKER}"
