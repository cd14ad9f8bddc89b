"""The ALFWorld text engine, used the way `alfworld` itself uses it (docs/method.md section 5).

One place owns the `alfworld`/`textworld` imports: a game file is played by TextWorld's
`PddlEnv` wrapped in alfworld's own `AlfredDemangler` (display names such as
"sinkbasin 1"), `AlfredInfos` and, when an expert is wanted, `AlfredExpert` (the
handcoded expert of `alfworld-generate`, or the Fast Downward planner). Success is always
the engine's `won` flag.

`import alfworld` creates `$ALFWORLD_DATA` (default `~/.cache/alfworld`); the imports here
are lazy and point the variable at a temporary folder when it is unset, so importing
interlat never writes into the user's home.
"""

import contextlib
import copy
import importlib.util
import os
import random
import tempfile
from functools import cache
from pathlib import Path

ALFWORLD_DATA_FALLBACK = Path(tempfile.gettempdir()) / "interlat-alfworld-data"


def _ensure_data_env() -> None:
    os.environ.setdefault("ALFWORLD_DATA", str(ALFWORLD_DATA_FALLBACK))


@cache
def alfworld_package_dir() -> Path:
    """The installed `alfworld` package folder (found without importing it)."""
    spec = importlib.util.find_spec("alfworld")
    return Path(next(iter(spec.submodule_search_locations)))


def alfworld_constants():
    """`alfworld.gen.constants` (object/receptacle affordances, scene numbers)."""
    _ensure_data_env()
    import alfworld.gen.constants as constants

    return constants


def goal_library() -> dict:
    """`alfworld.gen.goal_library.gdict`: goal PDDL and text templates per task type."""
    _ensure_data_env()
    import alfworld.gen.goal_library as glib

    return glib.gdict


@cache
def logic_texts() -> tuple[str, str]:
    """alfworld's own `alfred.pddl` domain and `alfred.twl2` grammar texts."""
    data = alfworld_package_dir() / "data"
    return (data / "alfred.pddl").read_text(), (data / "alfred.twl2").read_text()


@contextlib.contextmanager
def seeded_random(seed: int):
    """Seed the global `random` (alfworld's templates and expert use it); restore after."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def grammar_with_goal(traj_data: dict, seed: int) -> str:
    """The twl2 grammar with the goal filled in by alfworld's `add_task_to_grammar`."""
    _ensure_data_env()
    from alfworld.agents.utils.misc import add_task_to_grammar

    with seeded_random(seed):
        return add_task_to_grammar(logic_texts()[1], traj_data, rng=random.Random(seed))


def use_parse_cache(enable: bool = True) -> None:
    """Memoise TextWorld's grammar-text parser (a pure function of its text).

    Every step re-parses the same command and feedback templates with tatsu, which is most
    of a step's cost; the memo hands out deep copies of the cached parse, so feedback and
    commands are unchanged (tested) and games play about a third faster.
    """
    import textworld.envs.pddl.textgen as textgen

    original = getattr(textgen, "_interlat_original_parse", textgen._parse_and_convert)
    if not enable:
        textgen._parse_and_convert = original
        return
    textgen._interlat_original_parse = original
    memo: dict = {}

    def parse(text, rule_name=None, **kwargs):
        if kwargs.get("trace"):
            return original(text, rule_name=rule_name, **kwargs)
        key = (text, rule_name)
        if key not in memo:
            memo[key] = original(text, rule_name=rule_name, **kwargs)
        return copy.deepcopy(memo[key])

    textgen._parse_and_convert = parse


def make_env(expert: str | None = None, *, facts: bool = False):
    """A TextWorld `PddlEnv` in alfworld's wrappers; `expert` is "handcoded", "planner" or None."""
    _ensure_data_env()
    import textworld
    import textworld.envs.pddl.textgen as textgen

    if not hasattr(textgen, "_interlat_original_parse"):
        use_parse_cache(True)
    from alfworld.agents.environment.alfred_tw_env import (
        AlfredDemangler,
        AlfredExpert,
        AlfredInfos,
    )
    from textworld.envs import PddlEnv

    infos = textworld.EnvInfos(won=True, admissible_commands=True, facts=facts, extras=["gamefile"])
    env = AlfredInfos(AlfredDemangler(PddlEnv(infos), shuffle=False))
    if expert is not None:
        env = AlfredExpert(env, expert_type=expert)
    return env


def play_commands(env, commands: list[str], gamefile: str | None = None) -> tuple[list[str], bool]:
    """Replay `commands` (loading `gamefile` first if given); feedback texts and `won`."""
    if gamefile is not None:
        env.load(gamefile)
    state = env.reset()
    feedback, won = [state["feedback"]], bool(state["won"])
    for cmd in commands:
        if won:
            break
        state, _, _ = env.step(cmd)
        feedback.append(state["feedback"])
        won = bool(state["won"])
    return feedback, won


def _planner_plan(env) -> list[str] | None:
    """The Fast Downward plan from the start state (TextWorld's `policy_commands`)."""
    infos = env.request_infos
    infos.policy_commands = True
    try:
        plan = env.reset()["policy_commands"]
    except Exception:  # the planner raises on unsolvable problems
        plan = None
    finally:
        infos.policy_commands = False
    return list(plan) if plan else None


def _handcoded_run(expert_env, max_steps: int, seed: int) -> list[str] | None:
    actions: list[str] = []
    with seeded_random(seed):
        try:
            state = expert_env.reset()
            while not state["won"] and len(actions) < max_steps:
                cmd = state["extra.expert_plan"][0]
                state, _, _ = expert_env.step(cmd)
                actions.append(cmd)
        except Exception:  # HandCodedAgentTimeout/Failed surface as plain exceptions
            return None
    if not state["won"]:
        return None
    # AlfredExpert's plan before the expert has acted is a placeholder "look"
    return actions[1:] if actions[:1] == ["look"] and len(actions) > 1 else actions


def solve(
    gamefile: str, max_steps: int, seed: int = 0, tries: int = 3
) -> tuple[list[str] | None, list[str] | None]:
    """Planner walkthrough and handcoded-expert actions, each None unless it wins in `max_steps`.

    Both run on one loaded game (loading is a large part of the cost). The handcoded
    expert (alfworld's `AlfredExpert`, as `alfworld-generate` uses it) reads
    `traj_data.json` next to `gamefile`; it picks random commands when stuck, so up to
    `tries` seeds are played and the first win is kept. The walkthrough is replayed to
    check that it reaches `won`.
    """
    base = make_env(facts=True)
    expert_env = make_env_around(base, "handcoded")
    expert_env.load(gamefile)
    expert = None
    for k in range(tries):
        expert = _handcoded_run(expert_env, max_steps, seed + k)
        if expert is not None:
            break
    if expert is None:
        return None, None
    plan = _planner_plan(base)  # leaves `base` at the start state
    if plan is None or len(plan) > max_steps:
        return None, expert
    won = False
    for cmd in plan:
        won = bool(base.step(cmd)[0]["won"])
    return (plan if won else None), expert


def make_env_around(env, expert: str):
    """Wrap an existing alfworld env chain in alfworld's `AlfredExpert`."""
    from alfworld.agents.environment.alfred_tw_env import AlfredExpert

    return AlfredExpert(env, expert_type=expert)


def handcoded_expert_run(gamefile: str, max_steps: int, seed: int = 0) -> list[str] | None:
    """Play alfworld's handcoded expert on `gamefile`; its commands if it wins, else None."""
    env = make_env("handcoded")
    env.load(gamefile)
    return _handcoded_run(env, max_steps, seed)
