"""ALFWorld episodes played by a policy, many environments stepped together (docs/method.md, Evaluation).

The receiver's output is parsed for the first "Action: ..." line; an unparsable output still
counts as a step and gets the feedback "Nothing happens."; success is the engine's `won` flag
(never `done`); an episode ends at `won` or after `max_steps`. `run_episodes` steps many
environments together and calls the policy once per step for all unfinished episodes, so the
receiver can generate for the whole batch at once.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from interlat.data.alfworld.engine import make_env, seeded_random
from interlat.data.alfworld.expert import NOTHING_HAPPENS, clean_intro, parse_action
from interlat.data.alfworld.games import Game
from interlat.errors import InterlatError


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
