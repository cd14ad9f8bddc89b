"""ALFWorld episodes: expert trajectories for training and batched evaluation episodes.

METHOD.md section 2 trains the receiver on expert trajectories of alternating turns:
assistant turns "Thought: ...\\nAction: <command>" and human turns "Observation: <text>"
(ShareGPT-style dicts `{"from": "gpt"|"human", "value": ...}`). `expert_trajectory`
builds them from alfworld's handcoded expert (or the planner walkthrough) replayed in the
engine.

METHOD.md section 5 evaluates by playing episodes: the receiver's output is parsed for the
first "Action: ..." line; an unparsable output still counts as a step and gets the
feedback "Nothing happens."; success is the engine's `won` flag (never `done`); an
episode ends at `won` or after `max_steps`. `run_episodes` steps many environments
together and calls the policy once per step for all unfinished episodes, so the receiver
can generate for the whole batch at once. `bench_episodes` compares that with playing one
environment at a time.
"""

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from interlat.data.alfworld_engine import (
    handcoded_expert_run,
    make_env,
    play_commands,
    seeded_random,
)
from interlat.data.alfworld_games import Game
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


# --------------------------------------------------------------------------- expert data

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


def expert_trajectory(game: Game, expert: str = "handcoded", seed: int = 0) -> list[dict]:
    """Alternating gpt ("Thought/Action") and human ("Observation") turns, ending on the win."""
    return expert_record(game, expert, seed)["turns"]


# --------------------------------------------------------------------------- episodes


@dataclass
class Episode:
    """One running episode, as the policy sees it: first observation and turns so far."""

    game: Game
    observation: str  # room description and task (banner removed)
    turns: list[dict] = field(default_factory=list)  # gpt/human turns after the first
    actions: list[str] = field(default_factory=list)  # parsed commands ("" if unparsable)
    won: bool = False
    env: Any = field(default=None, repr=False)

    @property
    def steps(self) -> int:
        return len(self.actions)


@dataclass(frozen=True)
class EpisodeRecord:
    game: str  # game.tw-pddl path
    task_id: str
    task_type: str
    split: str
    steps: int
    won: bool
    actions: tuple[str, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "actions": list(self.actions)}


Policy = Callable[[list[Episode]], Sequence[str]]


def _start(game: Game) -> Episode:
    env = make_env()
    env.load(game.path)
    state = env.reset()
    return Episode(game=game, observation=clean_intro(state["feedback"]), env=env)


def _advance(ep: Episode, output: str) -> None:
    cmd = parse_action(output)
    ep.turns.append({"from": "gpt", "value": output})
    if cmd is None:
        ep.actions.append("")
        feedback = NOTHING_HAPPENS
    else:
        ep.actions.append(cmd)
        state, _, _ = ep.env.step(cmd)
        feedback, ep.won = state["feedback"], bool(state["won"])
    ep.turns.append({"from": "human", "value": f"Observation: {feedback}"})


def _record(ep: Episode) -> EpisodeRecord:
    g = ep.game
    return EpisodeRecord(
        g.path, g.task_id, g.task_type, g.split, ep.steps, ep.won, tuple(ep.actions)
    )


def run_episodes(
    games: Sequence[Game],
    policy: Policy,
    *,
    max_steps: int = 20,
    seed: int = 0,
    batch_size: int | None = None,
) -> list[EpisodeRecord]:
    """Play `games` with `policy`, `batch_size` environments at a time (default: all).

    Each step calls `policy(unfinished_episodes)` once and expects one output string per
    episode. Episodes end at the engine's `won` or after `max_steps` steps; records come
    back in the order of `games`. `seed` seeds Python's `random` while stepping (the
    engine itself is deterministic; the policy seeds its own sampling).
    """
    if max_steps < 1:
        raise InterlatError(f"max_steps {max_steps}: expected >= 1")
    size = batch_size or max(1, len(games))
    records: list[EpisodeRecord] = []
    with seeded_random(seed):
        for lo in range(0, len(games), size):
            chunk = [_start(g) for g in games[lo : lo + size]]
            live = list(chunk)
            while live:
                outputs = list(policy(live))
                if len(outputs) != len(live):
                    raise InterlatError(
                        f"policy returned {len(outputs)} outputs for {len(live)} episodes"
                    )
                for ep, out in zip(live, outputs, strict=True):
                    _advance(ep, out)
                live = [ep for ep in live if not (ep.won or ep.steps >= max_steps)]
            for ep in chunk:
                ep.env.close()
            records += [_record(ep) for ep in chunk]
    return records


def replay_policy(plans: dict[str, Sequence[str]], latency_s: float = 0.0) -> Policy:
    """A policy that replays fixed commands per task id (e.g. the expert's), as "Action:" lines.

    `latency_s` sleeps once per call, standing in for one batched model forward.
    """

    def policy(episodes: list[Episode]) -> list[str]:
        if latency_s:
            time.sleep(latency_s)
        outs = []
        for ep in episodes:
            plan = plans[ep.game.task_id]
            cmd = plan[ep.steps] if ep.steps < len(plan) else "look"
            outs.append(f"Thought: {thought_for(cmd)}\nAction: {cmd}")
        return outs

    return policy


def bench_episodes(
    games: Sequence[Game],
    policy: Policy | None = None,
    *,
    max_steps: int = 20,
    latency_s: float = 0.0,
) -> dict:
    """Episodes per second: all environments stepped together vs one environment at a time.

    The default policy replays each game's stored expert actions (or walkthrough), with
    `latency_s` per policy call standing in for a model forward. Both modes run here,
    back to back, on the same games and policy.
    """
    if policy is None:
        plans = {g.task_id: g.expert_actions or g.walkthrough or () for g in games}
        policy = replay_policy(plans, latency_s)
    calls = {"n": 0}

    def counted(episodes):
        calls["n"] += 1
        return policy(episodes)

    t0 = time.perf_counter()
    batched = run_episodes(games, counted, max_steps=max_steps)
    t1 = time.perf_counter()
    batched_calls, calls["n"] = calls["n"], 0
    sequential = [r for g in games for r in run_episodes([g], counted, max_steps=max_steps)]
    t2 = time.perf_counter()
    n = len(games)
    return {
        "n_episodes": n,
        "latency_s": latency_s,
        "batched_s": round(t1 - t0, 3),
        "sequential_s": round(t2 - t1, 3),
        "batched_episodes_per_s": round(n / (t1 - t0), 3),
        "sequential_episodes_per_s": round(n / (t2 - t1), 3),
        "batched_policy_calls": batched_calls,
        "sequential_policy_calls": calls["n"],
        "batched_success": sum(r.won for r in batched) / max(1, n),
        "sequential_success": sum(r.won for r in sequential) / max(1, n),
    }
