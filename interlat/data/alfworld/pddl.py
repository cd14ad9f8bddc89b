"""ALFRED-domain PDDL problems and ALFWorld game files for generated tasks (docs/method.md section 5).

A `TaskSpec` (from `alfworld_scenes`) becomes what the official release ships per trial:
`traj_data.json` (task type, `pddl_params`, scene, a templated annotation) and
`game.tw-pddl`, a JSON object with `pddl_domain` (alfworld's `alfred.pddl`), `grammar`
(alfworld's `alfred.twl2` with the goal filled in by its own `add_task_to_grammar`),
`pddl_problem`, `solvable` and `walkthrough`. Ids are mangled the way ALFRED's
`PlannedGameState.fix_pddl_str_chars` does, so alfworld's demangler shows the same names
("cabinet 1", "sinkbasin 1") that official games show.
"""

from interlat.data.alfworld.engine import alfworld_constants, goal_library, logic_texts
from interlat.data.alfworld.scenes import LAMP, TaskSpec

_MANGLE = (("-", "_minus_"), ("|", "_bar_"), ("+", "_plus_"), (".", "_dot_"), (",", "_comma_"))


def mangle(name: str) -> str:
    """ALFRED id -> PDDL name (`-` is done first, as in ALFRED's own replacement)."""
    for old, new in _MANGLE:
        name = name.replace(old, new)
    return name


def _loc_name(loc) -> str:
    return mangle("loc|" + "|".join(str(int(v)) for v in loc))


def goal_pddl(spec: TaskSpec) -> str:
    """The goal block of alfworld's goal library, filled in; it closes the `define`."""
    text = goal_library()[spec.task_type]["pddl"]
    text = text.format(obj=spec.object_target, recep=spec.parent_target, toggle=spec.toggle_target)
    return text.replace("#", "-")


def _init_facts(spec: TaskSpec) -> list[str]:
    c = alfworld_constants()
    recs = {r.rid: r for r in spec.layout.receptacles}
    facts = [f"(atLocation agent1 {_loc_name(spec.agent_loc)})"]
    for r in spec.layout.receptacles:
        name = mangle(r.rid)
        facts.append(f"(receptacleType {name} {r.rtype}Type)")
        facts.append(f"(receptacleAtLocation {name} {_loc_name(r.loc)})")
        if r.rtype in c.OPENABLE_CLASS_LIST:
            facts.append(f"(openable {name})")
    for o in spec.objects:
        name = mangle(o.oid)
        facts.append(f"(objectType {name} {o.otype}Type)")
        facts.append(f"(inReceptacle {name} {mangle(o.host)})")
        facts.append(f"(objectAtLocation {name} {_loc_name(recs[o.host].loc)})")
        if o.otype == LAMP:
            facts.append(f"(toggleable {name})")
            continue
        facts.append(f"(pickupable {name})")
        for flag, key in (
            ("cleanable", "Cleanable"),
            ("heatable", "Heatable"),
            ("coolable", "Coolable"),
        ):
            if o.otype in c.VAL_ACTION_OBJECTS[key]:
                facts.append(f"({flag} {name})")
    rtypes = sorted({r.rtype for r in spec.layout.receptacles})
    otypes = sorted({o.otype for o in spec.objects})
    for rt in rtypes:
        for ot in otypes:
            if ot in c.VAL_RECEPTACLE_OBJECTS.get(rt, ()):
                facts.append(f"(canContain {rt}Type {ot}Type)")
    return facts


def problem_pddl(spec: TaskSpec, name: str) -> str:
    """The full ALFRED-domain problem for `spec` (objects, initial state, goal)."""
    recs = spec.layout.receptacles
    rtypes = sorted({r.rtype for r in recs} | {spec.parent_target} - {""})
    otypes = sorted({o.otype for o in spec.objects})
    locs = sorted({r.loc for r in recs} | {spec.agent_loc})
    objects = (
        ["agent1 - agent"]
        + [f"{t}Type - otype" for t in otypes]
        + [f"{t}Type - rtype" for t in rtypes]
        + [f"{mangle(o.oid)} - object" for o in spec.objects]
        + [f"{mangle(r.rid)} - receptacle" for r in recs]
        + [f"{_loc_name(loc)} - location" for loc in locs]
    )
    sep = "\n        "
    return (
        f"(define (problem {name})\n    (:domain alfred)\n"
        f"    (:objects{sep}{sep.join(objects)}\n    )\n"
        f"    (:init{sep}{sep.join(_init_facts(spec))}\n    )\n"
        f"{goal_pddl(spec).strip()}\n"
    )


def traj_data(spec: TaskSpec, trial: str) -> dict:
    """The `traj_data.json` fields alfworld reads (task_type, pddl_params) plus the scene."""
    return {
        "task_id": trial,
        "task_type": spec.task_type,
        "pddl_params": {
            "object_target": spec.object_target,
            "parent_target": spec.parent_target,
            "toggle_target": spec.toggle_target,
            "mrecep_target": "",
            "object_sliced": False,
        },
        "scene": {
            "floor_plan": f"FloorPlan{spec.layout.scene}",
            "scene_num": spec.layout.scene,
            "receptacles": [r.rid for r in spec.layout.receptacles],
        },
    }


def game_json(problem: str, grammar: str) -> dict:
    """A `game.tw-pddl` object before solving (`solvable`/`walkthrough` filled in later)."""
    domain, _ = logic_texts()
    return {
        "pddl_domain": domain,
        "grammar": grammar,
        "pddl_problem": problem,
        "solvable": None,
        "walkthrough": None,
    }
