"""Task sampling for generated ALFWorld games: scenes, room layouts and task combinations.

The ALFWorld benchmark (docs/method.md section 5) reports success on `valid_seen` (rooms seen
in training) and `valid_unseen` (new rooms). The generator keeps that contract:

- a *layout* is an AI2-THOR scene id plus the receptacle instances placed in it; train
  and `valid_seen` games use training scenes (`valid_seen` reuses exact train layouts),
  `valid_unseen` games use the test scenes of `alfworld.gen.constants` and receptacle
  sets that no train layout has;
- a *combination* is (object type, parent receptacle or lamp type); a seeded hash puts
  each combination in either the seen pool or the unseen pool, so no `valid_unseen`
  combination can ever appear in train.

Scene contents come from alfworld's own `gen/layouts/FloorPlan<N>-objects.json`;
receptacle/object affordances from `alfworld.gen.constants`. Games are kept small
(3-5 receptacles, a few objects) so that expert episodes stay short.
"""

import hashlib
import json
import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from interlat.data.alfworld.engine import alfworld_constants, alfworld_package_dir
from interlat.errors import InterlatError

#: The six ALFWorld task types, spelled as `alfworld`'s `alfred_tw_env.TASK_TYPES`.
TASK_TYPES = (
    "pick_and_place_simple",
    "look_at_obj_in_light",
    "pick_clean_then_place_in_recep",
    "pick_heat_then_place_in_recep",
    "pick_cool_then_place_in_recep",
    "pick_two_obj_and_place",
)

#: The receptacle a state-change task needs (the domain's CleanObject/HeatObject/CoolObject).
APPLIANCE = {
    "pick_clean_then_place_in_recep": "SinkBasin",
    "pick_heat_then_place_in_recep": "Microwave",
    "pick_cool_then_place_in_recep": "Fridge",
}
#: The affordance (`constants.VAL_ACTION_OBJECTS` key) the target object needs.
AFFORDANCE = {
    "pick_clean_then_place_in_recep": "Cleanable",
    "pick_heat_then_place_in_recep": "Heatable",
    "pick_cool_then_place_in_recep": "Coolable",
}
LAMP = "DeskLamp"
#: Receptacles a desk lamp stands on (ALFRED scenes; lamps are not in VAL_RECEPTACLE_OBJECTS).
LAMP_HOSTS = ("Desk", "SideTable", "Dresser", "DiningTable", "CoffeeTable", "Shelf")
#: Receptacle types that may come in two instances (more search, as in real rooms).
MULTI = ("Cabinet", "Drawer", "Shelf", "CounterTop")
MAX_RECEPTACLES = 5
UNSEEN_SHARE = 3  # out of 10: share of combinations reserved for valid_unseen


@dataclass(frozen=True)
class Receptacle:
    rtype: str
    rid: str  # ALFRED-style id, e.g. "Cabinet|+00.12|+01.50|-02.33"
    loc: tuple[int, int, int, int]


@dataclass(frozen=True)
class Layout:
    scene: int
    receptacles: tuple[Receptacle, ...]

    @property
    def key(self) -> tuple:
        """What "same room layout" means: scene id and the receptacle type multiset."""
        return (self.scene, tuple(sorted(r.rtype for r in self.receptacles)))


@dataclass(frozen=True)
class Placement:
    otype: str
    oid: str
    host: str  # rid of the receptacle holding the object


@dataclass(frozen=True)
class TaskSpec:
    task_type: str
    object_target: str
    parent_target: str  # "" for look_at_obj_in_light, as in ALFRED's pddl_params
    toggle_target: str  # "" unless look_at_obj_in_light
    layout: Layout
    objects: tuple[Placement, ...]
    agent_loc: tuple[int, int, int, int]

    @property
    def combo(self) -> tuple[str, str]:
        return (self.object_target, self.parent_target or self.toggle_target)


@cache
def scene_objects(scene: int) -> frozenset[str]:
    """Object and receptacle types of AI2-THOR scene `scene` (alfworld's layout files)."""
    path = alfworld_package_dir() / "gen" / "layouts" / f"FloorPlan{scene}-objects.json"
    if not path.is_file():
        return frozenset()
    return frozenset(json.loads(Path(path).read_text()))


def _static_receptacles(scene: int) -> list[str]:
    c = alfworld_constants()
    movable = set(c.MOVABLE_RECEPTACLES)
    return sorted(
        t for t in scene_objects(scene) if t in c.VAL_RECEPTACLE_OBJECTS and t not in movable
    )


def _pickables(scene: int) -> list[str]:
    c = alfworld_constants()
    placeable = set().union(*c.VAL_RECEPTACLE_OBJECTS.values())
    return sorted(t for t in scene_objects(scene) if t in placeable and not t.endswith("Sliced"))


def _holders(otype: str, rtypes) -> list[str]:
    c = alfworld_constants()
    return [r for r in rtypes if otype in c.VAL_RECEPTACLE_OBJECTS.get(r, ())]


def is_unseen_combo(seed: int, combo: tuple[str, str]) -> bool:
    """Seeded, stable split of combinations into the seen and unseen pools."""
    digest = hashlib.sha256(f"{seed}:{combo[0]}:{combo[1]}".encode()).digest()
    return digest[0] % 10 < UNSEEN_SHARE


def scene_combos(task_type: str, rtypes, scene: int) -> list[tuple[str, str]]:
    """(object, parent-or-lamp) combinations of `task_type` playable with receptacles `rtypes`."""
    c = alfworld_constants()
    objs, rtypes = _pickables(scene), sorted(set(rtypes))
    if task_type == "look_at_obj_in_light":
        if LAMP not in scene_objects(scene) or not set(LAMP_HOSTS) & set(rtypes):
            return []
        return [(o, LAMP) for o in objs if _holders(o, rtypes)]
    appliance = APPLIANCE.get(task_type)
    if appliance and appliance not in rtypes:
        return []
    if task_type in AFFORDANCE:
        objs = [o for o in objs if o in c.VAL_ACTION_OBJECTS[AFFORDANCE[task_type]]]
    combos = []
    for o in objs:
        for parent in _holders(o, rtypes):
            starts = [r for r in _holders(o, rtypes) if r not in (parent, appliance)]
            if parent != appliance and starts:
                combos.append((o, parent))
    return combos


def _coord(rng: random.Random) -> str:
    return f"{rng.uniform(-3, 3):+06.2f}"


def _rid(rtype: str, rng: random.Random) -> str:
    xyz = "|".join(_coord(rng) for _ in range(3))
    if rtype.endswith("Basin"):  # ALFRED: "Sink|x|y|z|SinkBasin" shows as "sinkbasin 1"
        return f"{rtype[: -len('Basin')]}|{xyz}|{rtype}"
    return f"{rtype}|{xyz}"


def _loc(rng: random.Random, used: set) -> tuple[int, int, int, int]:
    while True:
        loc = (rng.randint(-12, 12), rng.randint(-12, 12), rng.choice((0, 90, 180, 270)), 30)
        if loc not in used:
            used.add(loc)
            return loc


def build_layout(scene: int, needed: list[str], rng: random.Random, size: int) -> Layout:
    """A layout of `scene` with the `needed` receptacle types plus distractors, `size` in all."""
    rtypes = list(dict.fromkeys(needed))
    spare = [r for r in _static_receptacles(scene) if r not in rtypes]
    rng.shuffle(spare)
    rtypes += spare[: max(0, size - len(rtypes))]
    if len(rtypes) < size and any(r in MULTI for r in rtypes) and rng.random() < 0.3:
        rtypes.append(rng.choice([r for r in rtypes if r in MULTI]))
    used: set = set()
    recs = tuple(Receptacle(r, _rid(r, rng), _loc(rng, used)) for r in sorted(rtypes))
    return Layout(scene, recs)


def _place(otype: str, hosts: list[Receptacle], rng: random.Random) -> Placement:
    return Placement(otype, _rid(otype, rng), rng.choice(hosts).rid)


def populate(task_type: str, combo, layout: Layout, rng: random.Random) -> TaskSpec:
    """Place the task's objects (and one or two distractors) in `layout`."""
    obj, target = combo
    look = task_type == "look_at_obj_in_light"
    parent, toggle = ("", target) if look else (target, "")
    appliance = APPLIANCE.get(task_type)
    recs = layout.receptacles
    starts = [r for r in recs if _holders(obj, [r.rtype]) and r.rtype not in (parent, appliance)]
    if not starts:
        starts = [r for r in recs if _holders(obj, [r.rtype])]
    pick_two = task_type == "pick_two_obj_and_place"
    if pick_two:  # both on one open receptacle: alfworld's expert (see _max_size) copes
        closed = alfworld_constants().OPENABLE_CLASS_LIST
        starts = [r for r in starts if r.rtype not in closed] or starts
    placed = [_place(obj, starts, rng)]
    if pick_two:
        placed.append(Placement(obj, _rid(obj, rng), placed[0].host))
    if look:
        placed.append(_place(LAMP, [r for r in recs if r.rtype in LAMP_HOSTS], rng))
    others = [o for o in _pickables(layout.scene) if o != obj]
    rng.shuffle(others)
    for o in others[: rng.randint(0, 2)]:
        hosts = [r for r in recs if _holders(o, [r.rtype])]
        if hosts:
            placed.append(_place(o, hosts, rng))
    agent = _loc(rng, {r.loc for r in recs})
    return TaskSpec(task_type, obj, parent, toggle, layout, tuple(placed), agent)


def _needed(task_type: str, scene: int, combo, rng: random.Random) -> list[str] | None:
    """Receptacle types a fresh layout needs for `combo`: parent/lamp host, appliance, start."""
    obj, target = combo
    rtypes = _static_receptacles(scene)
    if task_type == "look_at_obj_in_light":
        first = [rng.choice([h for h in LAMP_HOSTS if h in rtypes])]
    else:
        first = [target] + ([APPLIANCE[task_type]] if task_type in APPLIANCE else [])
    starts = [r for r in _holders(obj, rtypes) if r not in first]
    if not starts:
        return None
    return first + [rng.choice(starts)]


def sample_new(task_type, scenes, seed, unseen, rng, forbidden_keys=frozenset()) -> TaskSpec:
    """A task on a fresh layout of one of `scenes`, its combination from the chosen pool."""
    for scene in rng.sample(scenes, len(scenes)):
        combos = scene_combos(task_type, _static_receptacles(scene), scene)
        combos = [c for c in combos if is_unseen_combo(seed, c) == unseen]
        if not combos:
            continue
        combo = rng.choice(combos)
        needed = _needed(task_type, scene, combo, rng)
        if needed is None:
            continue
        layout = build_layout(scene, needed, rng, rng.randint(3, _max_size(task_type)))
        if layout.key in forbidden_keys:
            continue
        return populate(task_type, combo, layout, rng)
    raise InterlatError(f"alfworld generator: no scene can host a {task_type} task")


def _max_size(task_type: str) -> int:
    # alfworld 0.4.2's handcoded expert tracks "put", not the grammar's "move", so it
    # loses count of its inventory on pick_two tasks; small rooms keep it within the cap
    return MAX_RECEPTACLES - 1 if task_type == "pick_two_obj_and_place" else MAX_RECEPTACLES


def sample_on_layouts(task_type, layouts, seed, rng) -> TaskSpec:
    """A task (seen-pool combination) on one of the existing `layouts` (valid_seen)."""
    small = [lay for lay in layouts if len(lay.receptacles) <= _max_size(task_type)]
    for layout in rng.sample(small, len(small)) + rng.sample(layouts, len(layouts)):
        rtypes = [r.rtype for r in layout.receptacles]
        combos = [
            c for c in scene_combos(task_type, rtypes, layout.scene) if not is_unseen_combo(seed, c)
        ]
        if combos:
            return populate(task_type, rng.choice(combos), layout, rng)
    raise InterlatError(
        f"alfworld generator: valid_seen {task_type} games need a train layout that fits "
        f"one; raise n_train"
    )


def scene_pools() -> dict[str, list[int]]:
    """Training scenes (train, valid_seen) and test scenes (valid_unseen) with layout files."""
    c = alfworld_constants()
    train = [s for s in c.TRAIN_SCENE_NUMBERS if scene_objects(s)]
    test = [s for s in c.TEST_SCENE_NUMBERS if scene_objects(s)]
    return {"train": train, "valid_seen": train, "valid_unseen": test}
