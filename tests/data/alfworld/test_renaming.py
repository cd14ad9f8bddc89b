"""Renamed copies of ALFWorld train episodes (`data.alfworld.renamed_copies`)."""

import json
import re

from interlat.data.alfworld.renaming import renamed_copies, target_object


def _record(task_id: str, obj: str, parent: str, where: str, other: str) -> dict:
    """A record shaped like `interlat data --benchmark alfworld` writes (one pick-and-place episode)."""
    task = f"Your task is to: put some {obj} on {parent}."
    turns = [
        ("gpt", f"Thought: I should go to {where} 1 and check there.\nAction: go to {where} 1"),
        ("human", f"Observation: You arrive at {where} 1. On the {where} 1, you see a {obj} 1, and a {other} 1."),
        ("gpt", f"Thought: I found what I need, so I take {obj} 1 from {where} 1.\nAction: take {obj} 1 from {where} 1"),
        ("human", f"Observation: You pick up the {obj} 1 from the {where} 1."),
        ("gpt", f"Thought: Now I put {obj} 1 in/on {parent} 1.\nAction: move {obj} 1 to {parent} 1"),
    ]
    return {
        "task_id": task_id, "benchmark": "alfworld", "problem": task, "subject": "pick_and_place_simple",
        "observation": f"You are in the middle of a room. Looking quickly around you, you see a {where} 1, and a {parent} 1.\n\n{task}",
        "level": 0, "split": "train", "trajectory": [{"from": f, "value": v} for f, v in turns],
        "plan": f"take {obj} 1 from {where} 1, move {obj} 1 to {parent} 1",
        "game": f"json_2.1.1/train/pick_and_place_simple-{obj.capitalize()}-None-{parent.capitalize()}-18/trial_T1",
    }  # fmt: skip


RECORDS = [
    _record("a1", "potato", "countertop", "fridge", "egg"),
    _record("b2", "spoon", "sinkbasin", "drawer", "fork"),
    _record("c3", "book", "desk", "shelf", "pen"),
    _record("d4", "mug", "cabinet", "countertop", "cup"),
]


def test_target_object_is_read_from_the_official_folder_name():
    assert [target_object(r) for r in RECORDS] == ["potato", "spoon", "book", "mug"]
    assert target_object({"game": "somewhere/else"}) == ""


def test_a_copy_renames_the_target_everywhere_and_only_the_target():
    copies = renamed_copies(RECORDS, 2, seed=0)
    assert len(copies) == 2 * len(RECORDS)
    for copy in copies:
        source = next(r for r in RECORDS if copy["game"] == r["game"])
        old, text = target_object(source), json.dumps(copy)
        new = re.search(r"put some (\w+) on", copy["problem"])[1]
        assert new != old and not re.search(rf"\b{old}\b", text)
        # the new name is another train target that the source never mentions
        assert new in {"potato", "spoon", "book", "mug"} and not re.search(rf"\b{new}\b", json.dumps(source))
        # every action and the plan now name the new object; the rest of the episode is unchanged
        assert copy["plan"] == source["plan"].replace(old, new)
        assert [t["value"] for t in copy["trajectory"]] == [
            re.sub(rf"\b{old}\b", new, t["value"]) for t in source["trajectory"]
        ]
        assert {k: v for k, v in copy.items() if k not in ("task_id", "problem", "observation", "trajectory", "plan")} == {
            k: v for k, v in source.items() if k not in ("task_id", "problem", "observation", "trajectory", "plan")
        }


def test_copies_get_distinct_content_derived_ids_and_follow_the_seed():
    a, b, c = (renamed_copies(RECORDS, 2, seed=s) for s in (0, 0, 1))
    ids = [r["task_id"] for r in a]
    assert a == b and len(set(ids)) == len(ids) and not set(ids) & {r["task_id"] for r in RECORDS}
    assert [r["problem"] for r in a] != [r["problem"] for r in c]


def test_no_copies_at_zero_and_at_most_the_names_available():
    assert renamed_copies(RECORDS, 0, seed=0) == []
    # "mug" episode mentions cup, countertop, cabinet: potato, spoon, book remain -> at most 3 copies
    copies = renamed_copies(RECORDS, 10, seed=0)
    assert sum(c["game"] == RECORDS[3]["game"] for c in copies) == 3
