"""ALFWorld games (generator, loader) and episodes (expert data, batched runner).

Fast tests use the checked-in fixture `tests/data/alfworld/` (two generated games laid
out like the official release, plus folders the loader must skip); `slow` tests generate
games of all six task types and play them in the real engine.
"""

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "assets" / "alfworld"


@pytest.fixture(scope="module", autouse=True)
def _alfworld_data(tmp_path_factory):
    """`import alfworld` creates $ALFWORLD_DATA: point it at a temporary folder."""
    old = os.environ.get("ALFWORLD_DATA")
    os.environ["ALFWORLD_DATA"] = str(tmp_path_factory.mktemp("alfworld_data"))
    yield
    if old is None:
        os.environ.pop("ALFWORLD_DATA", None)
    else:
        os.environ["ALFWORLD_DATA"] = old


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One game per task type in each split (18 games), seed 0."""
    from interlat.data.alfworld.games import generate_games

    out = tmp_path_factory.mktemp("alfworld_games")
    summary = generate_games(out, seed=0, n_train=6, n_valid_seen=6, n_valid_unseen=6)
    return out, summary


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _traj(folder: Path) -> dict:
    return json.loads((folder / "traj_data.json").read_text())


# --------------------------------------------------------------------------- fast


def test_task_type_names_are_alfworlds():
    from alfworld.agents.environment.alfred_tw_env import TASK_TYPES as ALFWORLD

    from interlat.data.alfworld.games import TASK_TYPES

    assert TASK_TYPES == tuple(ALFWORLD.values())


def test_parse_action_takes_first_action_line():
    from interlat.data.alfworld.expert import parse_action

    assert parse_action("Thought: hmm\nAction: go to cabinet 1\nAction: look") == "go to cabinet 1"
    assert parse_action("Action:   Take  Mug 1 from desk 1.  ") == "take mug 1 from desk 1"
    assert parse_action("I would go to the cabinet.") is None
    assert parse_action("Action:") is None
    assert parse_action("") is None


def test_loader_reads_official_layout_and_skips_what_alfredtwenv_skips():
    from interlat.data.alfworld.games import load_games, task_id

    games = load_games(FIXTURE, "valid_seen")
    assert [g.task_type for g in games] == [
        "pick_and_place_simple",
        "pick_cool_then_place_in_recep",
    ]
    for g in games:
        game = json.loads(Path(g.path).read_text())
        assert g.task_id == task_id(game["pddl_problem"], "valid_seen")
        assert f"Your task is to: {g.task}." in game["grammar"] and g.split == "valid_seen"
        assert g.walkthrough and g.walkthrough == tuple(game["walkthrough"])
    assert games[0].expert_actions and games[1].expert_actions is None  # official: none stored


def test_task_id_depends_on_problem_and_split():
    from interlat.data.alfworld.games import task_id

    assert task_id("p", "valid_seen") == task_id("p", "valid_seen")
    assert (
        len({task_id("p", "valid_seen"), task_id("p", "valid_unseen"), task_id("q", "valid_seen")})
        == 3
    )


@pytest.mark.parametrize("missing", ["game.tw-pddl", "traj_data.json"])
def test_missing_game_file_names_the_folder(tmp_path, missing):
    from interlat.data.alfworld.games import load_games
    from interlat.errors import InterlatError

    shutil.copytree(FIXTURE, tmp_path / "data")
    trial = next((tmp_path / "data").glob("json_2.1.1/valid_seen/pick_cool*/trial_*"))
    (trial / missing).unlink()
    with pytest.raises(InterlatError) as err:
        load_games(tmp_path / "data", "valid_seen")
    assert str(trial) in err.value.message and missing in err.value.message
    assert err.value.exit_code == 2


def test_missing_split_folder_is_an_error(tmp_path):
    from interlat.data.alfworld.games import load_games
    from interlat.errors import InterlatError

    with pytest.raises(InterlatError, match="valid_unseen"):
        load_games(FIXTURE, "valid_unseen")


def test_expert_trajectory_alternates_thought_action_and_observation():
    from interlat.data.alfworld.engine import make_env, play_commands
    from interlat.data.alfworld.expert import expert_record, parse_action
    from interlat.data.alfworld.games import load_games

    games = load_games(FIXTURE, "valid_seen")
    assert len(games) >= 2, games
    for game in games:  # stored expert, then live expert
        rec = expert_record(game)
        turns = rec["turns"]
        assert [t["from"] for t in turns] == ["gpt", "human"] * (len(turns) // 2) + ["gpt"]
        assert all(re.fullmatch(r"Thought: .+\nAction: .+", t["value"]) for t in turns[::2])
        assert all(t["value"].startswith("Observation: ") for t in turns[1::2])
        assert rec["observation"].endswith(f"Your task is to: {game.task}.")
        actions = [parse_action(t["value"]) for t in turns[::2]]
        assert play_commands(make_env(), actions, game.path)[1]


def test_run_episodes_garbage_policy_stops_at_max_steps():
    from interlat.data.alfworld.games import load_games
    from interlat.evaluate.episodes import run_episodes

    games = load_games(FIXTURE, "valid_seen")
    seen = []

    def garbage(episodes):
        seen.append(len(episodes))
        return ["I am not sure what to do."] * len(episodes)

    records = run_episodes(games, garbage, max_steps=3)
    assert seen == [2, 2, 2] and [r.steps for r in records] == [3, 3]
    assert not any(r.won for r in records) and all(r.actions == ("",) * 3 for r in records)
    assert [r.task_id for r in records] == [g.task_id for g in games]


def test_run_episodes_counts_unparsable_outputs_as_steps():
    from interlat.data.alfworld.expert import NOTHING_HAPPENS
    from interlat.data.alfworld.games import load_games
    from interlat.evaluate.episodes import Episode, run_episodes

    game = load_games(FIXTURE, "valid_seen")[0]
    plan = list(game.expert_actions)
    last: list[Episode] = []

    def sloppy(episodes):  # every other output lacks an "Action:" line
        ep = episodes[0]
        last[:] = episodes
        k = ep.steps
        return [f"Action: {plan[k // 2]}" if k % 2 else "thinking..."]

    [rec] = run_episodes([game], sloppy, max_steps=2 * len(plan))
    assert rec.won and rec.steps == 2 * len(plan)
    assert rec.actions[::2] == ("",) * len(plan) and rec.actions[1::2] == tuple(plan)
    assert last[0].turns[1]["value"] == f"Observation: {NOTHING_HAPPENS}"


def test_parse_cache_leaves_feedback_unchanged():
    from interlat.data.alfworld.engine import make_env, play_commands, use_parse_cache
    from interlat.data.alfworld.games import load_games

    game = load_games(FIXTURE, "valid_seen")[0]
    runs = []
    for enable in (False, True):
        make_env()
        use_parse_cache(enable)
        runs.append(play_commands(make_env(), list(game.expert_actions), game.path))
    assert runs[0] == runs[1] and runs[1][1]


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_generated_games_use_the_official_layout(generated):
    from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv

    from interlat.data.alfworld.engine import logic_texts
    from interlat.data.alfworld.games import TASK_TYPES

    out, summary = generated
    domain, grammar = logic_texts()
    assert sorted(p.name for p in out.iterdir()) == ["json_2.1.1", "summary.json"]
    for split in ("train", "valid_seen", "valid_unseen"):
        trials = sorted((out / "json_2.1.1" / split).glob("*/trial_*"))
        assert len(trials) == 6 and summary["splits"][split]["per_type"] == dict.fromkeys(
            TASK_TYPES, 1
        )
        for trial in trials:
            assert sorted(p.name for p in trial.iterdir()) == ["game.tw-pddl", "traj_data.json"]
            traj, game = _traj(trial), json.loads((trial / "game.tw-pddl").read_text())
            p = traj["pddl_params"]
            target = p["parent_target"] or p["toggle_target"]
            scene = traj["scene"]["scene_num"]
            assert (
                trial.parent.name
                == f"{traj['task_type']}-{p['object_target']}-None-{target}-{scene}"
            )
            assert game["pddl_domain"] == domain and game["solvable"] is True
            goal = re.search(r"Your task is to: (.*?)\.\"", game["grammar"])[1]
            assert game["grammar"].replace(goal, "UNKNOWN GOAL", 1) == grammar
        config = {
            "env": {"goal_desc_human_anns_prob": 0, "task_types": [1, 2, 3, 4, 5, 6]},
            "dataset": {"eval_id_data_path": str(out / "json_2.1.1" / split), "num_eval_games": -1},
        }
        assert AlfredTWEnv(config, train_eval="eval_in_distribution").num_games == 6


@pytest.mark.slow
def test_generated_games_play_to_won(generated):
    """The walkthrough and the engine's experts win within 3/4 of the step cap (20)."""
    from interlat.data.alfworld.engine import make_env, play_commands
    from interlat.data.alfworld.games import load_games

    out, _ = generated
    cap = 15
    for split in ("train", "valid_seen", "valid_unseen"):
        games = load_games(out, split)
        assert games, split
        for game in games:
            for actions in (game.walkthrough, game.expert_actions):
                assert actions and len(actions) <= cap
                assert play_commands(make_env(), list(actions), game.path)[1], game.path
    for game in load_games(out, "valid_unseen"):  # alfworld's planner expert, step by step
        env = make_env("planner")
        env.load(game.path)
        state, steps = env.reset(), 0
        while not state["won"] and steps < cap:
            state, _, _ = env.step(state["extra.expert_plan"][0])
            steps += 1
        assert state["won"], game.path


@pytest.mark.slow
def test_unseen_layouts_and_combinations_are_disjoint_from_train(generated):
    out, _ = generated

    def facts(split):
        rows = []
        for trial in sorted((out / "json_2.1.1" / split).glob("*/trial_*")):
            traj = _traj(trial)
            p, scene = traj["pddl_params"], traj["scene"]
            rtypes = tuple(sorted(r.split("|")[0] for r in scene["receptacles"]))
            combo = (p["object_target"], p["parent_target"] or p["toggle_target"])
            rows.append((scene["scene_num"], (scene["scene_num"], rtypes), combo))
        return [set(col) for col in zip(*rows, strict=True)]

    train, seen, unseen = facts("train"), facts("valid_seen"), facts("valid_unseen")
    assert not unseen[0] & train[0]  # scene ids
    assert not unseen[1] & train[1]  # room layouts
    assert not unseen[2] & (train[2] | seen[2])  # object/receptacle combinations
    assert seen[1] <= train[1]  # valid_seen reuses train layouts


@pytest.mark.slow
def test_generated_loader_and_expert_replay_policy_wins(generated):
    from interlat.data.alfworld.games import load_games
    from interlat.evaluate.episodes import run_episodes
    from tests.helpers import replay_policy

    out, _ = generated
    games = load_games(out, "valid_unseen")
    assert len({g.task_id for g in games}) == 6 and {g.split for g in games} == {"valid_unseen"}
    calls = []
    policy = replay_policy({g.task_id: g.expert_actions for g in games})
    records = run_episodes(games, lambda eps: calls.append(len(eps)) or policy(eps), max_steps=20)
    assert all(r.won for r in records)
    assert [r.steps for r in records] == [len(g.expert_actions) for g in games]
    assert calls[0] == 6 and len(calls) == max(r.steps for r in records)


@pytest.mark.slow
def test_generation_is_deterministic_by_seed(tmp_path, generated):
    from interlat.data.alfworld.games import generate_games

    kw = {"n_train": 2, "n_valid_seen": 1, "n_valid_unseen": 1}
    kw["task_types"] = ("pick_and_place_simple", "look_at_obj_in_light")
    a = generate_games(tmp_path / "a", seed=3, **kw)
    b = generate_games(tmp_path / "b", seed=3, workers=2, **kw)
    c = generate_games(tmp_path / "c", seed=4, **kw)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert a["splits"] == b["splits"] != c["splits"]
