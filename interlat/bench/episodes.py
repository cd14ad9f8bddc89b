"""P8: ALFWorld episodes, batched with each episode's KV cache kept across steps, vs one at a
time re-encoding the whole episode every step (the reference's loop), side by side.

All methods play the same test games of an `interlat data --benchmark alfworld` folder on the
real engine, with the same receiver and variant, at T=0 by default, so they take the same
actions (the table says whether they did) and the steps per second compare like for like.
Besides the total (engine and game loading included, the same work for every method), the
table gives the time spent in the receiver and the speedup on it alone. Times are wall-clock
and process CPU time: with one torch thread the CPU time is the work done, which stays
comparable when other jobs share the cores (wall-clock then does not).
The middle row (batched, still re-encoding) separates what batching buys from what the cache
buys. The receiver is a pipeline checkpoint or a random-weight one of a named shape (depth
reducible) over a word-level tokenizer of the games' text, padded with filler words to the
shape's vocabulary so the LM head has the real width.
"""

import time
from pathlib import Path

import torch

from interlat.bench.latency import SHAPES
from interlat.data.alfworld.games import Game
from interlat.errors import InterlatError
from interlat.evaluate.alfworld import cached_policy, game_of, receiver_policy
from interlat.evaluate.episodes import run_episodes
from interlat.model.decode import Sampling

COLUMNS = ["method", "episodes", "steps", "same actions", "wall s", "CPU s", "receiver CPU s", "speedup (wall)",
           "speedup (CPU)", "speedup (receiver CPU)"]
#: (name, policy, environments per batch: None = all)
METHODS = (
    ("batched, KV cache kept (interlat)", cached_policy, None),
    ("batched, re-encoding every step", receiver_policy, None),
    ("one at a time, re-encoding every step (reference)", receiver_policy, 1),
)


def episode_rows(data_dir: Path, limit: int) -> list[dict]:
    """Conversation rows of the folder's first `limit` test records (by task id), built by
    the conversion stage's own code (the plan is the record's reference plan)."""
    import polars as pl

    from interlat.convert import conversations, truth_frame
    from interlat.jsonl import iter_jsonl

    where = Path(data_dir) / "test.jsonl"
    if not where.is_file():
        raise InterlatError(f"{where}: no such file (expected an `interlat data --benchmark alfworld` folder)")
    records = sorted((r for _, r in iter_jsonl(where)), key=lambda r: str(r.get("task_id")))[: limit or None]
    index = pl.DataFrame([{"task_id": r["task_id"], "plan": r["plan"], "split": r["split"]} for r in records])
    return conversations(index, truth_frame(records, "alfworld", str(where)), "alfworld")


def _filler(i: int) -> str:
    """A made-up letters-only word (one word-level token): 'zq' + i in base 26."""
    word = ""
    while True:
        i, r = divmod(i, 26)
        word = chr(97 + r) + word
        if i == 0:
            return "zq" + word


def random_receiver(shape: str, layers: int, rows: list[dict], seed: int):
    """(receiver, tokenizer): random weights of `shape`, a tokenizer of the rows' text padded to its vocabulary."""
    from interlat.model.adapter import LatentAdapter
    from interlat.model.build import build_model
    from interlat.model.receiver import Receiver, add_special_tokens
    from interlat.text.prompts import ALFWORLD_PHRASES
    from interlat.text.tokenizer import build_tokenizer

    spec = {**SHAPES[shape], **({"num_layers": layers} if layers else {})}
    corpus = [*ALFWORLD_PHRASES, *(t["value"] for r in rows for t in r["conversations"]), *(r["plan"] for r in rows)]
    tok = build_tokenizer(corpus)
    spare = spec["vocab_size"] - len(tok)
    if spare > 0:
        tok = build_tokenizer(corpus + [" ".join(_filler(i) for i in range(spare))])
    vocab = max(spec.pop("vocab_size"), len(tok))
    lm = build_model("qwen2", vocab_size=vocab, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                     max_positions=8192, seed=seed, **spec)
    ids = add_special_tokens(tok, lm)
    d = spec["hidden_size"]
    return Receiver(lm, LatentAdapter(d, d), ids, prepended_length=256).eval(), tok


def _timed(policy, clock: list[float]):
    """`policy`, adding the CPU seconds spent in it to clock[0] (the receiver's share of a run)."""

    def run(episodes):
        t0 = time.process_time()
        out = policy(episodes)
        clock[0] += time.process_time() - t0
        return out

    return run


def bench_episodes(receiver, tok, rows: list[dict], games_dir: Path, *, variant: str, max_steps: int,
                   cfg: Sampling, seed: int) -> list[dict]:
    """One row per method of `METHODS` (see the module docstring), after one untimed warm-up
    step of every game (engine caches, first forwards)."""
    by_id = {r["id"]: r for r in rows}
    games: list[Game] = [game_of(r, games_dir, "test.jsonl") for r in rows]
    warm = Sampling(cfg.temperature, cfg.top_p, cfg.top_k, 2)
    run_episodes(games, receiver_policy(receiver, tok, by_id, None, variant, warm, torch.Generator()), max_steps=1)
    out, actions, per_step = [], [], []
    for method, make, batch_size in METHODS:
        clock = [0.0]
        policy = _timed(make(receiver, tok, by_id, None, variant, cfg, torch.Generator().manual_seed(seed)), clock)
        t0, c0 = time.perf_counter(), time.process_time()
        records = run_episodes(games, policy, max_steps=max_steps, seed=seed, batch_size=batch_size)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        steps = sum(r.steps for r in records)
        actions.append([r.actions for r in records])
        per_step.append((wall / steps, cpu / steps, clock[0] / steps))
        out.append({"method": method, "episodes": len(records), "steps": steps, "wall s": round(wall, 2),
                    "CPU s": round(cpu, 2), "receiver CPU s": round(clock[0], 2)})
    for r, acts, mine in zip(out, actions, per_step, strict=True):
        for k, name in enumerate(("speedup (wall)", "speedup (CPU)", "speedup (receiver CPU)")):
            r[name] = f"{per_step[-1][k] / mine[k]:.2f}x"
        r["same actions"] = "yes" if acts == actions[-1] else "no"
    return out
