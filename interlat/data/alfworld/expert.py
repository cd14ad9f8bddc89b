"""The ALFWorld turn protocol and the expert trajectories the receivers train on.

Turns alternate: assistant turns "Thought: ...\nAction: <command>" and human turns
"Observation: <text>" (ShareGPT-style dicts `{"from": "gpt"|"human", "value": ...}`).
`expert_record` builds them from alfworld's handcoded expert (or the planner walkthrough)
replayed in the engine; `parse_action` reads a command back out of a generated turn.
"""

import re

from interlat.data.alfworld.engine import handcoded_expert_run, make_env, play_commands
from interlat.data.alfworld.games import Game
from interlat.errors import InterlatError

NOTHING_HAPPENS = "Nothing happens."
WELCOME = "-= Welcome to TextWorld, ALFRED! =-"
_ACTION = re.compile(r"^\s*Action:\s*(.*?)\s*$", re.MULTILINE)
#: Generous cap for the handcoded expert when it has to be played live (official data).
EXPERT_MAX_STEPS = 50


def parse_action(output: str) -> str | None:
    """The command on the first "Action: ..." line (lower-cased, spaces collapsed), or None."""
    match = _ACTION.search(output or "")
    if match is None:
        return None
    cmd = " ".join(match[1].split()).strip().rstrip(".").lower()
    return cmd or None


def clean_intro(feedback: str) -> str:
    """The first observation without TextWorld's banner: the room and the task."""
    return feedback.replace(WELCOME, "").strip()


_THOUGHTS = (
    ("look", "First, I look around to see where I am."),
    ("go to ", "I should go to {rest} and check there."),
    ("open ", "The {rest} is closed, so I open it to look inside."),
    ("close ", "I close the {rest} before moving on."),
    ("take ", "I found what I need, so I take {rest}."),
    ("move ", "Now I put {rest}."),
    ("heat ", "I need it hot, so I heat {rest}."),
    ("cool ", "I need it cool, so I cool {rest}."),
    ("clean ", "I need it clean, so I clean {rest}."),
    ("use ", "I turn on {rest} to look at the object under its light."),
    ("examine ", "I examine {rest} more closely."),
    ("inventory", "I check what I am carrying."),
)


def thought_for(cmd: str) -> str:
    """A short templated thought about the subgoal a command serves."""
    for prefix, text in _THOUGHTS:
        if cmd.startswith(prefix):
            return text.format(rest=cmd[len(prefix) :].replace(" to ", " in/on ", 1))
    return "I try another action."


def expert_actions(game: Game, expert: str = "handcoded", seed: int = 0) -> list[str]:
    """The expert's commands: stored ones if the game has them, else played live."""
    if expert == "planner":
        if game.walkthrough:
            return list(game.walkthrough)
        raise InterlatError(f'{game.path}: field "walkthrough" is empty')
    if expert != "handcoded":
        raise InterlatError(f"expert {expert!r}: expected 'handcoded' or 'planner'")
    if game.expert_actions:
        return list(game.expert_actions)
    actions = handcoded_expert_run(game.path, EXPERT_MAX_STEPS, seed)
    if actions is None:
        raise InterlatError(f"{game.path}: alfworld's handcoded expert does not win")
    return actions


def expert_record(game: Game, expert: str = "handcoded", seed: int = 0) -> dict:
    """The expert episode: task id, first observation (room + task) and the turns."""
    actions = expert_actions(game, expert, seed)
    feedback, won = play_commands(make_env(), actions, game.path)
    if not won:
        raise InterlatError(f"{game.path}: {expert} expert's commands do not reach won")
    turns = []
    for i, cmd in enumerate(actions):
        if i:
            turns.append({"from": "human", "value": f"Observation: {feedback[i]}"})
        turns.append({"from": "gpt", "value": f"Thought: {thought_for(cmd)}\nAction: {cmd}"})
    return {
        "task_id": game.task_id,
        "task_type": game.task_type,
        "task": game.task,
        "observation": clean_intro(feedback[0]),
        "turns": turns,
    }
