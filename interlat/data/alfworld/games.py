"""ALFWorld games: a seeded offline generator, the official download, and one loader for both.

docs/method.md section 5 evaluates on ALFWorld's `valid_seen` and `valid_unseen` splits and
section 2 trains on expert trajectories. Both read games laid out as the official release
(`<root>/json_2.1.1/<split>/<task_type>-<Object>-<mrecep>-<Parent>-<scene>/trial_<id>/`
holding `traj_data.json` and `game.tw-pddl`), which is also what alfworld's `AlfredTWEnv`
walks. `generate_games` writes that layout offline with all six task types, every game
checked to be won by both the planner walkthrough and alfworld's handcoded expert within
3/4 of the step cap; `download_official` fetches the real release through alfworld's own
`alfworld-download` routines; `load_games` reads either one.
"""

import contextlib
import hashlib
import json
import logging
import os
import random
import re
import runpy
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from interlat.atomic import atomic_dir, write_json
from interlat.data.alfworld import pddl, scenes
from interlat.data.alfworld.engine import grammar_with_goal, solve
from interlat.errors import InterlatError

log = logging.getLogger(__name__)

TASK_TYPES = scenes.TASK_TYPES
SPLITS = ("train", "valid_seen", "valid_unseen")
DATA_FOLDER = "json_2.1.1"
MAX_ATTEMPTS = 100
_GOAL = re.compile(r"Your task is to: (.*?)\.\"")


@dataclass(frozen=True)
class Game:
    """One playable game: where it is, what it asks, and its expert data if computed."""

    path: str  # the game.tw-pddl file
    task_type: str
    task: str  # the goal text, e.g. "put a clean mug in coffeemachine"
    split: str
    task_id: str  # sha256(pddl_problem + split)[:16]: content-derived, stable
    walkthrough: tuple[str, ...] | None = None  # planner commands (game.tw-pddl)
    expert_actions: tuple[str, ...] | None = None  # handcoded expert commands (generated data)

    @property
    def folder(self) -> Path:
        return Path(self.path).parent


def task_id(problem: str, split: str) -> str:
    """Content-derived id: the same problem in the same split always gets the same id."""
    return hashlib.sha256(f"{problem}\n{split}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- generator


def _job_seed(seed: int, split: str, index: int, attempt: int) -> int:
    digest = hashlib.sha256(f"{seed}:{split}:{index}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _sample(job: dict, rng: random.Random) -> scenes.TaskSpec:
    split, task_type, seed = job["split"], job["task_type"], job["seed"]
    if split == "valid_seen":
        return scenes.sample_on_layouts(task_type, job["layouts"], seed, rng)
    pool = scenes.scene_pools()[split]
    forbidden = job.get("forbidden", frozenset())
    return scenes.sample_new(task_type, pool, seed, split == "valid_unseen", rng, forbidden)


def _folder_name(spec: scenes.TaskSpec) -> str:
    target = spec.parent_target or spec.toggle_target
    return f"{spec.task_type}-{spec.object_target}-None-{target}-{spec.layout.scene}"


def _make_game(job: dict) -> dict:
    """Sample, write and solve one game, retrying with the next seed until both experts win."""
    cap = (3 * job["max_steps"]) // 4
    for attempt in range(MAX_ATTEMPTS):
        game_seed = _job_seed(job["seed"], job["split"], job["index"], attempt)
        spec = _sample(job, random.Random(game_seed))
        trial = f"trial_G{job['seed']}_{job['index']:05d}"
        folder = Path(job["root"]) / job["split"] / _folder_name(spec) / trial
        folder.mkdir(parents=True, exist_ok=True)
        traj = pddl.traj_data(spec, trial)
        grammar = grammar_with_goal(traj, game_seed)
        traj["turk_annotations"] = {"anns": [{"task_desc": _GOAL.search(grammar)[1]}]}
        problem = pddl.problem_pddl(spec, f"plan_{trial}")
        game = pddl.game_json(problem, grammar)
        write_json(folder / "traj_data.json", traj)
        write_json(folder / "game.tw-pddl", game)
        walkthrough, expert = solve(str(folder / "game.tw-pddl"), cap, seed=game_seed)
        if walkthrough is not None and expert is not None:
            game.update(solvable=True, walkthrough=walkthrough)
            traj["interlat"] = {"expert_actions": expert, "attempt": attempt}
            write_json(folder / "game.tw-pddl", game)
            write_json(folder / "traj_data.json", traj)
            return {
                "split": job["split"],
                "task_type": spec.task_type,
                "folder": str(folder.relative_to(job["root"])),
                "layout": spec.layout,
                "combo": spec.combo,
                "attempts": attempt + 1,
            }
        shutil.rmtree(folder)
        with contextlib.suppress(OSError):  # another worker may be filling the task folder
            folder.parent.rmdir()
    raise InterlatError(
        f"alfworld generator: {job['split']} game {job['index']} ({job['task_type']}): "
        f"no solvable game in {MAX_ATTEMPTS} attempts"
    )


def _run_jobs(jobs: list[dict], workers: int) -> list[dict]:
    if workers <= 1 or len(jobs) <= 1:
        return [_make_game(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_make_game, jobs, chunksize=1))


def generate_games(
    out_dir,
    *,
    seed: int,
    n_train: int,
    n_valid_seen: int,
    n_valid_unseen: int,
    max_steps: int = 20,
    task_types=TASK_TYPES,
    workers: int = 1,
) -> dict:
    """Write seeded ALFWorld games in the official layout under `out_dir`; return a summary.

    Game i of a split has task type `task_types[i % len(task_types)]`. Train and
    `valid_unseen` games get fresh layouts (training scenes / test scenes, unseen layouts
    never matching a train layout); `valid_seen` games reuse train layouts. Unseen games
    draw only from the unseen pool of (object, receptacle) combinations. Output files
    depend only on the arguments (not on `workers`); `out_dir` is replaced atomically.
    """
    bad = [t for t in task_types if t not in TASK_TYPES]
    if bad or not task_types:
        raise InterlatError(f"alfworld generator: task_types {bad}: expected some of {TASK_TYPES}")
    if min(n_train, n_valid_seen, n_valid_unseen) < 0 or max_steps < 4:
        raise InterlatError("alfworld generator: counts must be >= 0 and max_steps >= 4")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        root = tmp / DATA_FOLDER
        base = {"seed": seed, "max_steps": max_steps, "root": str(root)}

        def jobs(split, n, **extra):
            types = list(task_types)
            return [
                {**base, **extra, "split": split, "index": i, "task_type": types[i % len(types)]}
                for i in range(n)
            ]

        train = _run_jobs(jobs("train", n_train), workers)
        layouts = sorted({g["layout"] for g in train}, key=lambda lay: repr(lay))
        keys = frozenset(lay.key for lay in layouts)
        if n_valid_seen and not layouts:
            raise InterlatError("alfworld generator: valid_seen games need n_train > 0")
        valid = _run_jobs(
            jobs("valid_seen", n_valid_seen, layouts=layouts)
            + jobs("valid_unseen", n_valid_unseen, forbidden=keys),
            workers,
        )
        summary = _summary(train + valid, seed=seed, max_steps=max_steps)
        write_json(tmp / "summary.json", summary)
    summary = dict(summary, seconds=round(time.perf_counter() - start, 2), out_dir=str(out_dir))
    log.info("generated %s ALFWorld games in %.1f s", len(train + valid), summary["seconds"])
    return summary


def _summary(games: list[dict], *, seed: int, max_steps: int) -> dict:
    splits = {}
    for split in SPLITS:
        mine = [g for g in games if g["split"] == split]
        per_type = {t: sum(g["task_type"] == t for g in mine) for t in TASK_TYPES}
        splits[split] = {
            "n_games": len(mine),
            "per_type": per_type,
            "attempts": sum(g["attempts"] for g in mine),
            "scenes": sorted({g["layout"].scene for g in mine}),
            "layouts": sorted({repr(g["layout"].key) for g in mine}),
            "combos": sorted({"/".join(g["combo"]) for g in mine}),
            "folders": sorted(g["folder"] for g in mine),
        }
    return {"seed": seed, "max_steps": max_steps, "format": DATA_FOLDER, "splits": splits}


# --------------------------------------------------------------------------- loader


def _read_json(path: Path, fields: tuple[str, ...]) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InterlatError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict):
        raise InterlatError(f"{path}: a JSON {type(data).__name__}, expected an object")
    missing = [f for f in fields if f not in data]
    if missing:
        raise InterlatError(f'{path}: missing field "{missing[0]}"')
    return data


#: the fields of a `game.tw-pddl` file the engine needs to play it
GAME_FIELDS = ("pddl_domain", "grammar", "pddl_problem")


def read_game_file(path) -> dict:
    """A `game.tw-pddl` file, checked to be a JSON object with `GAME_FIELDS` (else one line naming it).

    Evaluation calls this for every game before the engine loads any (the engine's own
    errors are tracebacks).
    """
    path = Path(path)
    if not path.is_file():
        raise InterlatError(f"{path}: no such game file")
    return _read_json(path, GAME_FIELDS)


def _load_trial(folder: Path, split: str) -> Game | None:
    """One trial folder -> Game; None for folders AlfredTWEnv skips (movable, sliced, unsolvable)."""
    for name in ("traj_data.json", "game.tw-pddl"):
        if not (folder / name).is_file():
            raise InterlatError(
                f"{folder}: missing {name}, expected traj_data.json and game.tw-pddl"
            )
    traj = _read_json(folder / "traj_data.json", ("task_type",))
    if traj["task_type"] not in TASK_TYPES:
        return None
    gamefile = folder / "game.tw-pddl"
    game = read_game_file(gamefile)
    if not game.get("solvable"):
        return None
    goal = _GOAL.search(game["grammar"])
    if goal is None or goal[1] == "UNKNOWN GOAL":
        raise InterlatError(f'{gamefile}: field "grammar": no goal ("Your task is to: ...")')
    walk = game.get("walkthrough")
    expert = traj.get("interlat", {}).get("expert_actions")
    return Game(
        path=str(gamefile),
        task_type=traj["task_type"],
        task=goal[1],
        split=split,
        task_id=task_id(game["pddl_problem"], split),
        walkthrough=tuple(walk) if walk else None,
        expert_actions=tuple(expert) if expert else None,
    )


def load_games(data_dir, split: str) -> list[Game]:
    """All playable games of `split` under `data_dir` (the folder holding `json_2.1.1/`).

    Works for generated data and the official release alike; skips what alfworld's
    `AlfredTWEnv` skips (movable-receptacle and sliced tasks, other task types,
    unsolvable games). A trial folder without `traj_data.json` or `game.tw-pddl` is an
    error naming the folder. Games are sorted by folder; task ids must be unique.
    """
    split_dir = Path(data_dir) / DATA_FOLDER / split
    if not split_dir.is_dir():
        raise InterlatError(f"{split_dir}: no such folder, expected the {split} split of ALFWorld")
    games = []
    for task_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        if "movable" in task_dir.name or "Sliced" in task_dir.name:
            continue
        for trial in sorted(p for p in task_dir.iterdir() if p.is_dir()):
            game = _load_trial(trial, split)
            if game is not None:
                games.append(game)
    if not games:
        raise InterlatError(f"{split_dir}: no playable games")
    seen: dict[str, Game] = {}
    for game in games:
        if game.task_id in seen:
            raise InterlatError(
                f"{game.folder}: task_id {game.task_id} duplicates {seen[game.task_id].folder}"
            )
        seen[game.task_id] = game
    return games


# --------------------------------------------------------------------------- download


def download_official(data_dir) -> Path:
    """Fetch the official ALFWorld text games into `data_dir` with alfworld's own routines.

    Runs the `download`/`unzip` functions and URLs of the installed `alfworld-download`
    script for the three game archives (json, pddl, tw-pddl), skipping its Mask R-CNN
    detector, which the text benchmark never uses. Returns `data_dir/json_2.1.1`.
    """
    data_dir = Path(data_dir)
    script = shutil.which("alfworld-download") or str(
        Path(sys.executable).parent / "alfworld-download"
    )
    if not Path(script).is_file():
        raise InterlatError(f"{script}: alfworld-download not found; install alfworld==0.4.2")
    os.environ["ALFWORLD_DATA"] = str(data_dir)
    ns = runpy.run_path(script, run_name="alfworld_download")
    for url in ("JSON_FILES_URL", "PDDL_FILES_URL", "TW_PDDL_FILES_URL"):
        archive = ns["download"](ns[url], dst=str(data_dir))
        ns["unzip"](archive, dst=str(data_dir))
        os.remove(archive)
    out = data_dir / DATA_FOLDER
    if not out.is_dir():
        raise InterlatError(f"{out}: missing after alfworld-download")
    return out
