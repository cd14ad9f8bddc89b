"""ALFWorld episodes: every unfinished environment stepped together (one batched receiver
generation per step) vs one environment at a time (the reference's loop), side by side.

Both runs play the same games with the same receiver, variant and decoding on the real
engine; each counts episodes per second over the whole set (game loading included). The
receivers sample, so the two runs need not take the same actions: the table also reports the
steps played, and the rate per step is the like-for-like figure.
"""

import time
from pathlib import Path

import torch

from interlat.conversations import read_conversations
from interlat.evaluate.alfworld import game_of, receiver_policy
from interlat.evaluate.episodes import run_episodes
from interlat.model.decode import Sampling

COLUMNS = ["method", "episodes", "steps", "seconds", "episodes/s", "steps/s", "speedup (steps/s)"]


def bench_episodes(receiver_dir: Path, conversations: Path, games_dir: Path, *, variant: str, max_steps: int,
                   temperature: float, max_new_tokens: int, seed: int) -> list[dict]:
    """Rows for `batched` and `one at a time` (see the module docstring)."""
    import interlat

    receiver, tok = interlat.load_receiver(receiver_dir)
    rows = sorted(read_conversations(conversations), key=lambda r: r["id"])
    by_id = {r["id"]: r for r in rows}
    games = [game_of(r, games_dir, str(conversations)) for r in rows]
    cfg = Sampling(temperature, 1.0, 0, max_new_tokens)
    out = []
    for method, batch_size in (("batched (interlat)", None), ("one at a time (reference)", 1)):
        policy = receiver_policy(receiver, tok, by_id, None, variant, cfg, torch.Generator().manual_seed(seed))
        t0 = time.perf_counter()
        records = run_episodes(games, policy, max_steps=max_steps, seed=seed, batch_size=batch_size)
        seconds = time.perf_counter() - t0
        steps = sum(r.steps for r in records)
        out.append({"method": method, "episodes": len(records), "steps": steps, "seconds": round(seconds, 2),
                    "episodes/s": round(len(records) / seconds, 3), "steps/s": round(steps / seconds, 2)})
    base = out[1]["steps/s"]
    for r in out:
        r["speedup (steps/s)"] = f"{r['steps/s'] / base:.2f}x"
    return out
