"""ALFWorld evaluation: a receiver plays text-environment episodes under one message variant.

docs/method.md section 5. Every test game (valid_seen and valid_unseen) is played once per seed.
The environments of a chunk step together (`interlat.evaluate.episodes.run_episodes`), and at each
step the receiver generates ONCE, batched, for all unfinished episodes. An episode's prompt
is the episode so far under the receiver's chat template: the first human turn (room, task,
plan sentence) with the variant's message spliced at the marker, then the receiver's earlier
outputs and the "Observation: ..." turns. Insertion and adapter are those of the MATH
evaluation (`interlat.evaluate.messages.splice_prompts`), so every variant works here too
(interlat, text, no_comm, cot_full, no_cot, cross_task, the noise variants, ...); a latent
variant's message is drawn once per episode, seeded per (seed, task). Each episode's KV cache
is kept between steps (`cached_policy`, `interlat.model.stepcache`): a step feeds only what
the conversation gained since the last one; at T=0 it takes the actions of the recomputing
`receiver_policy`.

The action is the first "Action: ..." line of the output (an unparsable output still costs
a step); an episode ends at the engine's `won` flag (success) or after `max_steps` steps. Every
record also carries the expert-forced next-action predictions of its task
(`interlat.evaluate.forced`: greedy, under the expert's history) and how many were right.
Reference decoding is sampling at T=0.7 with 100 new tokens (config values).

Finished (seed, chunk) record sets are kept in a work folder outside Snakemake's outputs so a
killed evaluation resumes; the folder is stamped with the settings and the contents of the
inputs (`interlat.workdir.open_state`), and chunks of other settings (another receiver, test
set, games, decoding or step cap) are deleted, never reused. All records are written as one Parquet file at the end.
"""

import hashlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import polars as pl
import torch

from interlat.conversations import ROLES, chat_messages
from interlat.data.alfworld.games import Game, read_game_file
from interlat.errors import InterlatError
from interlat.evaluate.episodes import Episode, Policy, run_episodes
from interlat.evaluate.forced import forced_counts, forced_predictions
from interlat.evaluate.messages import (
    PLAIN_VARIANTS,
    generate_with_message,
    raw_messages,
    splice_prompts,
    task_seed,
)
from interlat.model.decode import Sampling
from interlat.model.stepcache import StepCache
from interlat.text.chat import render_ids, stop_ids
from interlat.text.prompts import MARKER
from interlat.workdir import open_state, run_chunks

log = logging.getLogger(__name__)

RECORD_SCHEMA = {
    "task_id": pl.String,
    "game": pl.String,
    "task_type": pl.String,
    "split": pl.String,
    "variant": pl.String,
    "seed": pl.Int64,
    "steps": pl.Int64,
    "won": pl.Boolean,
    "actions": pl.List(pl.String),
    "message_rows": pl.Int64,
    "seconds": pl.Float64,
    # expert-forced next action (interlat.evaluate.forced): predicted actions, exact matches, expert steps
    "forced_actions": pl.List(pl.String),
    "forced_correct": pl.Int64,
    "forced_steps": pl.Int64,
}


def game_of(row: dict, games_dir: Path, where: str) -> Game:
    """The playable game of a converted test row (`game`: its folder under `games_dir`)."""
    path = Path(games_dir) / row.get("game", "") / "game.tw-pddl"
    if "game" not in row or not path.is_file():
        raise InterlatError(f"{where}: task_id {row['id']}: field \"game\": {path}: no such game file")
    read_game_file(path)  # a truncated or invalid game file is one line naming it, before any episode
    return Game(path=str(path), task_type=row["subject"], task=row["task"], split=row["split"], task_id=row["id"])


def episode_prompt(tokenizer, row: dict, turns: list[dict], plain: bool) -> list[int]:
    """Token ids of the episode so far: the first human turn, then the turns played."""
    first = chat_messages(row, "none" if plain else "interlat")[:1]
    rest = [{"role": ROLES[t["from"]], "content": t["value"]} for t in turns]
    return render_ids(tokenizer, first + rest, generation=True)


def receiver_policy(receiver, tokenizer, rows: dict, raw: dict | None, variant: str, cfg: Sampling, generator) -> Policy:
    """The recomputing policy: every call re-encodes each unfinished episode from its start.

    One batched generation per call for all unfinished episodes (rows and raw messages by
    task id). Kept as the reference for `cached_policy` (same outputs at T=0) and for P8.
    """
    plain = variant in PLAIN_VARIANTS

    def policy(episodes: list[Episode]) -> list[str]:
        mine = [rows[ep.game.task_id] for ep in episodes]
        prompts = [episode_prompt(tokenizer, r, ep.turns, plain) for r, ep in zip(mine, episodes, strict=True)]
        msgs = None if raw is None else [raw[ep.game.task_id] for ep in episodes]
        plans = [r["plan"] for r in mine]
        return [text for text, _ in generate_with_message(receiver, tokenizer, prompts, plans, msgs, variant, cfg, generator)]

    return policy


def _prefill(receiver, tokenizer, prompts, mine, raw, variant, episodes) -> tuple[StepCache, torch.Tensor, list[int]]:
    """A new cache holding each episode's prompt, its message spliced at the marker."""
    msgs = None if raw is None else [raw[ep.game.task_id] for ep in episodes]
    embeds, lengths = splice_prompts(receiver, tokenizer, prompts, [r["plan"] for r in mine], msgs, variant)
    marker = tokenizer.convert_tokens_to_ids(MARKER)
    rows, ends, floors = [], [], []
    for b, ids in enumerate(prompts):
        p = ids.index(marker) if marker in ids else len(ids)  # the spliced block replaces the marker
        extra = int(lengths[b]) - len(ids)
        rows.append(embeds[b, : int(lengths[b])])
        ends.append([i if i < p else i + extra for i in range(len(ids))])
        floors.append(p + 1 if p < len(ids) else 0)  # never rewind into the spliced message
    cache = StepCache(receiver.lm)
    h = cache.extend(rows, prompts, ends)
    return cache, h, floors


def cached_policy(receiver, tokenizer, rows: dict, raw: dict | None, variant: str, cfg: Sampling, generator) -> Policy:
    """The policy evaluation uses: like `receiver_policy`, but each episode's KV cache is kept.

    The first call for a set of episodes prefills their prompts (message spliced); each later
    call feeds each episode only what its conversation gained since (the end of its last output,
    the observation, the next turn's header). A cached turn that the rendered conversation no
    longer starts with (a generated text that re-tokenises differently) is rewound to the common
    prefix; one reaching into the first turn restarts the batch from a fresh prefill.
    """
    plain = variant in PLAIN_VARIANTS
    stops = stop_ids(tokenizer, receiver.lm)
    state: dict = {"episodes": [], "cache": None, "floors": []}

    def policy(episodes: list[Episode]) -> list[str]:
        mine = [rows[ep.game.task_id] for ep in episodes]
        prompts = [episode_prompt(tokenizer, r, ep.turns, plain) for r, ep in zip(mine, episodes, strict=True)]
        known = {id(ep): i for i, ep in enumerate(state["episodes"])}
        order = [known.get(id(ep)) for ep in episodes]
        cache = state["cache"]
        fresh = cache is None or None in order
        if not fresh:
            cache.keep(order)
            floors = [state["floors"][i] for i in order]
            keep = [cache.common_prefix(b, ids) for b, ids in enumerate(prompts)]
            fresh = any(n < f for n, f in zip(keep, floors, strict=True))
        if fresh:
            cache, h, floors = _prefill(receiver, tokenizer, prompts, mine, raw, variant, episodes)
        else:
            for b, n in enumerate(keep):
                cache.rewind(b, n)
            h = cache.extend_tokens([ids[n:] for ids, n in zip(prompts, keep, strict=True)])
        state.update(episodes=list(episodes), cache=cache, floors=floors)
        tokens = cache.generate(h, eos_ids=stops, cfg=cfg, generator=generator)
        return [tokenizer.decode(t, skip_special_tokens=True) for t in tokens]

    return policy


def run_settings(rows: list[dict], *, variant: str, cfg: Sampling, max_steps: int, batch_size: int) -> dict:
    """The settings that decide a chunk's records (the receiver and games are inputs)."""
    return {
        "rows": hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest(),
        "variant": variant,
        "sampling": asdict(cfg),
        "max_steps": max_steps,
        "batch_size": batch_size,
        "forced": "greedy next action under the expert's history",
    }


def evaluate_alfworld(
    receiver,
    tokenizer,
    rows: list[dict],
    messages: dict,
    *,
    games_dir: Path,
    variant: str,
    seeds: list[int],
    cfg: Sampling,
    max_steps: int,
    batch_size: int,
    work_dir: Path,
    out_path: Path,
    where: str = "conversations",
    receiver_dir: Path | None = None,
    inputs: dict | None = None,
    constants: dict | None = None,
    student=None,
) -> pl.DataFrame:
    """Play every row's game under `variant` for every seed; see the module docstring.

    `compressed_<K>` variants need `student` (`interlat.load_student`). `inputs` (name -> file or
    folder: receiver, conversations, latents, student) and `receiver_dir` (the
    checkpoint folder, same as inputs["receiver"]) stamp the work folder with the settings;
    the games folder is always one of the inputs.
    """
    rows = sorted(rows, key=lambda r: r["id"])
    if not rows:
        raise InterlatError(f"{where}: no test episodes")
    ids = [r["id"] for r in rows]
    by_id = {r["id"]: r for r in rows}
    games = [game_of(r, games_dir, where) for r in rows]
    inputs = {"receiver": receiver_dir, **(inputs or {}), "games": sorted({Path(g.path).parent for g in games})}
    open_state(work_dir, run_settings(rows, variant=variant, cfg=cfg, max_steps=max_steps, batch_size=batch_size), inputs)
    chunks = [(s, i) for s in seeds for i in range(0, len(games), batch_size)]

    def run_chunk(seed: int, start: int) -> pl.DataFrame:
        chunk = games[start : start + batch_size]
        if variant.startswith("compressed_"):  # Table 3: the student's K latents for the episode's first turn
            from interlat.compress.data import emit

            first_turns = [episode_prompt(tokenizer, by_id[g.task_id], [], False) for g in chunk]
            raw = emit(student, tokenizer, first_turns, student.K, variant)
        else:
            raw = raw_messages(variant, [g.task_id for g in chunk], ids, messages, seed, cap=receiver.prepended_length)
        raw_by_id = None if raw is None else {g.task_id: h for g, h in zip(chunk, raw, strict=True)}
        gen = torch.Generator().manual_seed(task_seed(seed, chunk[0].task_id))
        policy = cached_policy(receiver, tokenizer, by_id, raw_by_id, variant, cfg, gen)
        t0 = time.perf_counter()
        done = run_episodes(chunk, policy, max_steps=max_steps, seed=seed)
        dt = (time.perf_counter() - t0) / len(chunk)
        mine = [by_id[g.task_id] for g in chunk]
        predicted = forced_predictions(cached_policy, receiver, tokenizer, mine, raw_by_id, variant, cfg.max_new_tokens)
        forced = forced_counts(mine, predicted)
        recs = [
            {
                "task_id": rec.task_id,
                "game": by_id[rec.task_id]["game"],
                "task_type": rec.task_type,
                "split": rec.split,
                "variant": variant,
                "seed": seed,
                "steps": rec.steps,
                "won": rec.won,
                "actions": list(rec.actions),
                "message_rows": int(raw_by_id[rec.task_id].shape[0]) if raw_by_id else -1,
                "seconds": dt,
                "forced_actions": predicted[rec.task_id],
                "forced_correct": forced[rec.task_id][0],
                "forced_steps": forced[rec.task_id][1],
            }
            for rec in done
        ]
        right, total = (sum(r[k] for r in recs) for k in ("forced_correct", "forced_steps"))
        log.info("seed %d, games %d-%d: %d/%d won, expert-forced next action %d/%d right", seed, start,
                 start + len(chunk) - 1, sum(r["won"] for r in recs), len(recs), right, total)
        return pl.DataFrame(recs, schema=RECORD_SCHEMA)

    return run_chunks(work_dir, chunks, run_chunk, out_path, desc=f"alfworld {variant}", constants=constants)
