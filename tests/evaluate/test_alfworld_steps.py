"""ALFWorld steps on the real engine with a real receiver: the KV cache kept across steps takes
the recomputing loop's actions, and the episode prompts are the training conversations' tokens.

Games: the official-layout games of tests/assets/alfworld; conversations built from them by the
pipeline's own record and conversion code; receiver: a tiny random-weight Qwen2 receiver over a
word-level tokenizer of these games' text, so its greedy turns vary (words, special tokens,
end-of-turn at ragged steps) and re-tokenising a turn can differ from the sampled tokens.
"""

import os
from pathlib import Path

import polars as pl
import pytest
import torch

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "alfworld"


@pytest.fixture(scope="module")
def episode_world(tmp_path_factory):
    """(games, conversation rows by task id) for the playable asset games."""
    from interlat.convert import conversations, truth_frame
    from interlat.data.alfworld.games import load_games
    from interlat.data.alfworld.records import make_records

    old = os.environ.get("ALFWORLD_DATA")
    os.environ["ALFWORLD_DATA"] = str(tmp_path_factory.mktemp("alfworld_data"))  # `import alfworld` writes there
    games = load_games(ASSETS, "valid_seen")
    records = make_records(games, ASSETS, expert="planner", seed=0, workers=1)
    index = pl.DataFrame([{"task_id": r["task_id"], "plan": r["plan"], "split": r["split"]} for r in records])
    rows = conversations(index, truth_frame(records, "alfworld", "records"), "alfworld")
    yield games, {r["id"]: r for r in rows}, records
    if old is None:
        os.environ.pop("ALFWORLD_DATA", None)
    else:
        os.environ["ALFWORLD_DATA"] = old


@pytest.fixture(scope="module")
def random_receiver(episode_world):
    """(receiver, tokenizer): random weights, vocabulary of the games' text."""
    from interlat.model.adapter import LatentAdapter
    from interlat.model.build import build_model
    from interlat.model.receiver import Receiver, add_special_tokens
    from interlat.text.prompts import ALFWORLD_PHRASES
    from interlat.text.tokenizer import build_tokenizer

    _, rows, records = episode_world
    corpus = [*ALFWORLD_PHRASES] + [t["value"] for r in rows.values() for t in r["conversations"]]
    corpus += [r["plan"] for r in records]
    tok = build_tokenizer(corpus)
    lm = build_model("qwen2", vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                     hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64,
                     max_positions=4096, seed=0)
    ids = add_special_tokens(tok, lm)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # strong layers: at init the residual (tied embeddings) would echo the last token
        for name, w in lm.named_parameters():
            if ".layers." in name and w.dim() == 2:
                w.normal_(0, 0.3, generator=g)
    return Receiver(lm, LatentAdapter(32, 16), ids, prepended_length=16).eval(), tok


def play(policy_of, games, rows, receiver, tok, variant, raw, max_steps=5):
    """Records and every output of the episodes played by `policy_of(...)` at T=0."""
    from interlat.evaluate.episodes import run_episodes
    from interlat.model.decode import Sampling

    outputs = []
    policy = policy_of(receiver, tok, rows, raw, variant, Sampling(temperature=0, max_new_tokens=12),
                       torch.Generator().manual_seed(0))

    def recording(episodes):
        out = list(policy(episodes))
        outputs.append(out)
        return out

    return run_episodes(games, recording, max_steps=max_steps, seed=0), outputs


@pytest.mark.parametrize("variant", ["interlat", "text", "no_comm", "no_cot"])
def test_cached_steps_take_the_recomputing_loops_actions(episode_world, random_receiver, variant, monkeypatch):
    import interlat.evaluate.alfworld as ev
    from interlat.model.stepcache import StepCache

    games, rows, _ = episode_world
    receiver, tok = random_receiver
    g = torch.Generator().manual_seed(3)
    raw = {t: torch.randn(5 + i, 16, generator=g) for i, t in enumerate(rows)} if variant == "interlat" else None
    prefills, rewinds = [], []
    real_prefill, real_rewind = ev._prefill, StepCache.rewind
    monkeypatch.setattr(ev, "_prefill", lambda *a: prefills.append(1) or real_prefill(*a))
    monkeypatch.setattr(StepCache, "rewind", lambda c, b, n: rewinds.append(len(c.ids[b]) - n) or real_rewind(c, b, n))
    cached, cached_out = play(ev.cached_policy, games, rows, receiver, tok, variant, raw)
    again, again_out = play(ev.receiver_policy, games, rows, receiver, tok, variant, raw)
    assert cached_out == again_out  # every generated turn, not only its parsed action
    assert [r.actions for r in cached] == [r.actions for r in again] and [r.steps for r in cached] == [5, 5]
    assert len({o for step in cached_out for o in step}) > 2  # the turns differ (not one repeated output)
    assert len(prefills) == 1  # later steps only extended the cache
    assert any(k > 0 for k in rewinds)  # some generated turn re-tokenised otherwise, and was rewound


@pytest.mark.parametrize("mode, variant", [("interlat", "interlat"), ("text", "cot_full"), ("none", "no_cot")])
def test_episode_prompts_are_the_training_conversations_tokens(episode_world, random_receiver, mode, variant, monkeypatch):
    """Replaying the expert through the evaluation loop, the receiver holds at every step exactly
    the training conversation's tokens up to that step's assistant turn (which training supervises
    from its first token), and the first turn's spliced embeddings are training's."""
    from types import SimpleNamespace

    import interlat.evaluate.alfworld as ev
    from interlat.evaluate.episodes import run_episodes
    from interlat.evaluate.messages import splice_prompts
    from interlat.model.decode import Sampling
    from interlat.model.stepcache import StepCache
    from interlat.text.chat import IGNORE
    from interlat.train.samples import build_samples, collate

    games, rows, _ = episode_world
    receiver, tok = random_receiver
    g = torch.Generator().manual_seed(5)
    messages = {t: SimpleNamespace(H=torch.randn(6, 16, generator=g), plan=r["plan"], plan_token_ids=[]) for t, r in rows.items()}
    samples = {s.task_id: s for s in build_samples(list(rows.values()), messages, tok, mode, "rows", receiver.prepended_length)}
    expert = {t: [turn["value"] for turn in r["conversations"][1::2]] for t, r in rows.items()}

    live, seen = [], []

    def replay(cache, h, **kw):  # the receiver "generates" the expert's next turn
        seen.append({ep.game.task_id: list(cache.ids[b]) for b, ep in enumerate(live)})
        return [tok(expert[ep.game.task_id][ep.steps], add_special_tokens=False)["input_ids"] for ep in live]

    monkeypatch.setattr(StepCache, "generate", replay)
    raw = {t: m.H for t, m in messages.items()} if mode == "interlat" else None
    inner = ev.cached_policy(receiver, tok, rows, raw, variant, Sampling(temperature=0), torch.Generator())
    records = run_episodes(games, lambda eps: live.__setitem__(slice(None), eps) or inner(eps), max_steps=20)
    assert [r.won for r in records] == [True, True]
    assert [r.steps for r in records] == [len(expert[r.task_id]) for r in records]
    for r in records:
        s = samples[r.task_id]
        prompts = [step[r.task_id] for step in seen if r.task_id in step]
        assert len(prompts) == r.steps
        for k, held in enumerate(prompts):
            assert held == s.ids[: len(held)], f"step {k}: the evaluation prompt is not the training prefix"
            assert s.labels[len(held) - 1] == IGNORE and s.labels[len(held)] != IGNORE, f"step {k}"
            turn = tok(expert[r.task_id][k], add_special_tokens=False)["input_ids"]
            assert s.ids[len(held) : len(held) + len(turn)] == turn  # the action training supervises here
        # the first turn with its message spliced, embedded alike in training and evaluation
        if mode != "none":
            batch = collate([s], tok.pad_token_id)
            if mode == "text":
                msg, msg_len = receiver.embed(batch["plan_ids"]), batch["plan_len"]
            else:
                msg, msg_len = receiver.adapt(batch["H"], batch["H_len"]), batch["H_len"]
            with torch.no_grad():
                train_embeds, *_ = receiver.splice(batch, msg, msg_len)
                eval_embeds, n = splice_prompts(receiver, tok, [prompts[0]], [rows[r.task_id]["plan"]],
                                                None if raw is None else [raw[r.task_id]], variant)
            n = int(n[0])
            torch.testing.assert_close(eval_embeds[0, :n], train_embeds[0, :n])


def test_expert_forced_accuracy_sees_the_experts_history_and_counts_exact_actions(episode_world, random_receiver,
                                                                                  monkeypatch):
    """At step k the receiver holds the training conversation up to the expert's k-th turn; a receiver
    answering the expert's turn at even steps and a wrong action at odd ones scores the even steps."""
    from types import SimpleNamespace

    import interlat.evaluate.alfworld as ev
    from interlat.evaluate.forced import expert_actions, forced_counts, forced_predictions
    from interlat.model.stepcache import StepCache
    from interlat.train.samples import build_samples

    games, rows, _ = episode_world
    receiver, tok = random_receiver
    g = torch.Generator().manual_seed(7)
    raw = {t: torch.randn(4, 16, generator=g) for t in rows}
    messages = {t: SimpleNamespace(H=h, plan=rows[t]["plan"], plan_token_ids=[]) for t, h in raw.items()}
    samples = {s.task_id: s for s in build_samples(list(rows.values()), messages, tok, "interlat", "rows", 16)}
    expert = {t: [turn["value"] for turn in r["conversations"][1::2]] for t, r in rows.items()}
    order = sorted(rows)

    def answer(cache, h, **kw):
        out = []
        for b in range(h.shape[0]):
            held = cache.ids[b]
            tid = next(t for t in order if samples[t].ids[: len(held)] == held)  # a training prefix, always
            k = tok.decode(held).count("Action: ")
            out.append(expert[tid][k] if k % 2 == 0 else "Thought: no.\nAction: look")
        return [tok(o, add_special_tokens=False)["input_ids"] for o in out]

    monkeypatch.setattr(StepCache, "generate", answer)
    predicted = forced_predictions(ev.cached_policy, receiver, tok, list(rows.values()), raw, "interlat", 12)
    counts = forced_counts(list(rows.values()), predicted)
    for t, r in rows.items():
        want = expert_actions(r)
        assert len(predicted[t]) == len(want) == len(expert[t]) and predicted[t][::2] == want[::2]
        assert counts[t] == ((len(want) + 1) // 2, len(want))


def test_expert_forced_predictions_equal_with_and_without_the_cache(episode_world, random_receiver):
    import interlat.evaluate.alfworld as ev
    from interlat.evaluate.forced import forced_predictions

    _, rows, _ = episode_world
    receiver, tok = random_receiver
    args = (receiver, tok, list(rows.values()), None, "text", 12)
    assert forced_predictions(ev.cached_policy, *args) == forced_predictions(ev.receiver_policy, *args)
