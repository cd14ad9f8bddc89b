"""Expert-forced next-action accuracy: ALFWorld's diagnostic that needs no won episode.

At every step of a test episode's expert trajectory the receiver sees the expert's history
(the first human turn with the variant's message, then the expert's turns so far, exactly the
conversation it was trained on) and generates the next turn greedily; the prediction is right
when its parsed action equals the expert's. A receiver that wins episodes must score high here,
so this is the first place to look when one does not (docs/method.md section 5.4).

The steps of many episodes run batched on `cached_policy`, each episode's KV cache extended
by the expert's turn and observation after every prediction (the generated turn is rewound).
"""

import torch

from interlat.data.alfworld.expert import parse_action
from interlat.data.alfworld.games import Game
from interlat.evaluate.episodes import Episode
from interlat.model.decode import Sampling


def expert_actions(row: dict) -> list[str]:
    """The expert's parsed actions: one per gpt turn of the conversation."""
    return [parse_action(t["value"]) or "" for t in row["conversations"][1::2]]


def forced_predictions(policy_of, receiver, tokenizer, rows: list[dict], raw: dict | None, variant: str,
                       max_new_tokens: int) -> dict[str, list[str]]:
    """Per task id, the parsed action ("" if none) predicted at each expert step.

    `policy_of` builds the policy (`cached_policy` or the recomputing `receiver_policy`), given
    rows by task id and raw messages by task id (None unless the variant is latent).
    """
    by_id = {r["id"]: r for r in rows}
    cfg = Sampling(temperature=0.0, top_p=1.0, top_k=0, max_new_tokens=max_new_tokens)
    policy = policy_of(receiver, tokenizer, by_id, raw, variant, cfg, torch.Generator())
    episodes = [
        Episode(game=Game(path="", task_type=r.get("subject", ""), task=r["task"], split=r.get("split", ""),
                          task_id=r["id"]), observation=r["task"])
        for r in rows
    ]
    n = {r["id"]: len(expert_actions(r)) for r in rows}
    live = [ep for ep in episodes if n[ep.game.task_id]]
    while live:
        for ep, out in zip(live, policy(live), strict=True):
            ep.actions.append(parse_action(out) or "")
            # the expert's history through its next observation: gpt, human, ..., gpt, human
            ep.turns = by_id[ep.game.task_id]["conversations"][1 : 1 + 2 * ep.steps]
        live = [ep for ep in live if ep.steps < n[ep.game.task_id]]
    return {ep.game.task_id: list(ep.actions) for ep in episodes}


def forced_counts(rows: list[dict], predicted: dict[str, list[str]]) -> dict[str, tuple[int, int]]:
    """Per task id, (exact matches, expert steps)."""
    out = {}
    for r in rows:
        want = expert_actions(r)
        got = predicted.get(r["id"], [])
        out[r["id"]] = (sum(a == b and a != "" for a, b in zip(got, want, strict=False)), len(want))
    return out
