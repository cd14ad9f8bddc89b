"""The ALFWorld benchmark folder: games in the official layout plus the pipeline's records.

`interlat data --benchmark alfworld` writes, like MATH's `interlat data`, a folder with
`train.jsonl` and `test.jsonl`, and next to them the games themselves
(`json_2.1.1/<split>/<task folder>/<trial>/`, the layout `load_games` and alfworld read).
The games come from the seeded offline generator, the official release (downloaded with
alfworld's own routines, or an existing `$ALFWORLD_DATA` folder), or any folder in that layout.

One record per game (docs/method.md sections 1, 2 and 5):

| field | value |
|---|---|
| `task_id` | content-derived id of the game (`alfworld_games.task_id`) |
| `benchmark` | `"alfworld"` |
| `problem` | the task, "Your task is to: ...": what the sender plans for |
| `observation` | the first observation, the room and the task: the receiver's first human turn |
| `subject` | the task type (one shard set per type, like a MATH subject) |
| `level` | 0 |
| `split` | `train` (in train.jsonl), `valid_seen` or `valid_unseen` (in test.jsonl) |
| `trajectory` | the expert's turns: gpt "Thought: ...\\nAction: ..." and human "Observation: ..." |
| `plan` | a reference plan: the expert's object actions ("take ..., heat ..., move ..."), to pretrain the tiny sender |
| `game` | the trial folder, relative to the benchmark folder |
"""

import hashlib
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from interlat.data.alfworld.expert import expert_actions, expert_record
from interlat.data.alfworld.games import (
    DATA_FOLDER,
    TASK_TYPES,
    Game,
    download_official,
    generate_games,
    load_games,
)
from interlat.errors import InterlatError

log = logging.getLogger(__name__)

TRAIN_SPLITS = ("train",)
TEST_SPLITS = ("valid_seen", "valid_unseen")
#: The expert's commands that act on objects: the steps of the reference plan.
PLAN_VERBS = ("take ", "move ", "heat ", "cool ", "clean ", "use ", "slice ")
GAME_FILES = ("traj_data.json", "game.tw-pddl")


def reference_plan(actions: list[str]) -> str:
    """The expert's object actions joined with commas (all actions if none acts on an object)."""
    steps = [a for a in actions if a.startswith(PLAN_VERBS)] or list(actions)
    return ", ".join(steps)


def select(games: list[Game], task_types, cap: int, seed: int) -> list[Game]:
    """Games of `task_types`, at most `cap` per type (0: all), drawn in a seeded order."""
    kept = [g for g in games if g.task_type in task_types]
    if cap:
        order = sorted(kept, key=lambda g: hashlib.sha256(f"{seed}:{g.task_id}".encode()).hexdigest())
        counts: dict[str, int] = {}
        chosen = set()
        for g in order:
            counts[g.task_type] = counts.get(g.task_type, 0) + 1
            if counts[g.task_type] <= cap:
                chosen.add(g.task_id)
        kept = [g for g in kept if g.task_id in chosen]
    return kept


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def copy_games(games: list[Game], src_root: Path, dst_root: Path) -> None:
    """Put each game's two files under `dst_root` at the same relative place (hard links if possible)."""
    for g in games:
        rel = g.folder.relative_to(src_root)
        for name in GAME_FILES:
            _link_or_copy(g.folder / name, dst_root / rel / name)


def _record(job: tuple[Game, str, str, int]) -> dict:
    game, rel, expert, seed = job
    rec = expert_record(game, expert, seed)
    return {
        "task_id": game.task_id,
        "benchmark": "alfworld",
        "problem": f"Your task is to: {game.task}.",
        "observation": rec["observation"],
        "subject": game.task_type,
        "level": 0,
        "split": game.split,
        "trajectory": rec["turns"],
        "plan": reference_plan(expert_actions(game, expert, seed)),
        "game": rel,
    }


def make_records(games: list[Game], root: Path, *, expert: str, seed: int, workers: int) -> list[dict]:
    """One record per game (expert episodes replayed in the engine, `workers` processes)."""
    jobs = [(g, str(g.folder.relative_to(root)), expert, seed) for g in games]
    if workers <= 1 or len(jobs) <= 1:
        return [_record(j) for j in jobs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_record, jobs, chunksize=4))


def _source_root(source: str, alfworld_data: str | None) -> Path:
    """The folder holding `json_2.1.1/` for source `official` (downloaded once) or a PATH.

    `alfworld_data` may name environment variables (`$ALFWORLD_DATA`), expanded here.
    """
    if source == "official":
        if not alfworld_data:
            raise InterlatError("--alfworld-data: required with --source official (the $ALFWORLD_DATA folder)")
        root = Path(os.path.expandvars(alfworld_data))
        if "$" in str(root):
            raise InterlatError(f"--alfworld-data: {alfworld_data}: an environment variable in it is not set")
        if not (root / DATA_FOLDER).is_dir():
            download_official(root)
        return root
    root = Path(source)
    if not (root / DATA_FOLDER).is_dir():
        raise InterlatError(f"{root}: no {DATA_FOLDER}/ folder, expected an ALFWorld data folder ($ALFWORLD_DATA layout)")
    return root


def build(
    out: Path,
    *,
    source: str,
    task_types: list[str],
    n_train: int,
    n_valid_seen: int,
    n_valid_unseen: int,
    max_train: int,
    max_test: int,
    max_steps: int,
    expert: str,
    alfworld_data: str | None,
    seed: int,
    workers: int,
) -> list[dict]:
    """Fill the (empty, temporary) folder `out` with games and return their records.

    `generated`: n_* games per task type and split; otherwise the games of `source` (see
    `_source_root`). Any source is then capped to `max_train` / `max_test` games per task
    type and split (0: all).
    """
    bad = [t for t in task_types if t not in TASK_TYPES]
    if bad or not task_types:
        raise InterlatError(f"--task-types: {bad[0] if bad else ''!r}: expected some of {', '.join(TASK_TYPES)}")
    if source == "generated":
        k = len(task_types)
        generate_games(out, seed=seed, n_train=n_train * k, n_valid_seen=n_valid_seen * k,
                       n_valid_unseen=n_valid_unseen * k, max_steps=max_steps,
                       task_types=tuple(task_types), workers=workers)  # fmt: skip
        src = out
    else:
        src = _source_root(source, alfworld_data)
    games = []
    for split in TRAIN_SPLITS + TEST_SPLITS:
        cap = max_train if split in TRAIN_SPLITS else max_test
        found = select(load_games(src, split), task_types, cap, seed)
        if not found:
            raise InterlatError(f"{src / DATA_FOLDER / split}: no games of task types {task_types}")
        games += found
    if source != "generated":
        copy_games(games, src, out)
        games = [g for split in TRAIN_SPLITS + TEST_SPLITS for g in load_games(out, split)]
    else:  # generated folders the caps dropped
        kept = {g.folder for g in games}
        for split in TRAIN_SPLITS + TEST_SPLITS:
            for g in load_games(out, split):
                if g.folder not in kept:
                    shutil.rmtree(g.folder)
                    if not any(g.folder.parent.iterdir()):
                        g.folder.parent.rmdir()
    log.info("%d ALFWorld games; replaying the %s expert", len(games), expert)
    return make_records(games, out, expert=expert, seed=seed, workers=workers)
