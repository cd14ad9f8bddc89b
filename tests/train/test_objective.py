"""The three-pass objective: alignment per path, negatives, and a falling loss (docs/method.md section 3)."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from interlat import shards
from interlat.conversations import read_conversations
from interlat.train.objective import ReceiverObjective, resize_negative
from interlat.train.samples import build_samples, collate
from interlat.train.trainer import TrainConfig, Trainer, build_receiver, mixing_ratios


def test_resize_negative_truncates_or_tiles_with_noise_on_the_copy_only():
    H = torch.arange(12.0).reshape(1, 4, 3).repeat(2, 1, 1)
    noise = torch.ones(2, 6, 3)
    out = resize_negative(H, torch.tensor([4, 2]), torch.tensor([3, 5]), noise)
    torch.testing.assert_close(out[0, :3], H[0, :3])  # truncated, no noise
    torch.testing.assert_close(out[1, :2], H[1, :2])  # original rows untouched
    torch.testing.assert_close(out[1, 2:5], H[1, [0, 1, 0]] + 1)  # tiled copy gets the noise
    assert (out[0, 3:] == 0).all()


def test_curriculum_reaches_pure_latents_by_the_end():
    cfg = TrainConfig(steps=100, curriculum="ramp_to_pure", ramp_start=0.5)
    assert {round(x, 4) for x in mixing_ratios(cfg, 0, list(range(64)), 0).tolist()} <= {i / 10 for i in range(1, 10)}
    assert (mixing_ratios(cfg, 99, list(range(64)), 0) == 1.0).all()
    uniform = TrainConfig(steps=100, curriculum="uniform")
    assert (mixing_ratios(uniform, 99, list(range(64)), 0) < 1.0).all()


def _trainer(tiny, tmp_path, **kw):
    tok = AutoTokenizer.from_pretrained(tiny["receiver"])
    lm = AutoModelForCausalLM.from_pretrained(tiny["receiver"])
    cfg = TrainConfig(batch_size=4, lr=3e-3, checkpoint_every=1000, **kw)
    messages = shards.load_messages(tiny["latents"])
    rows = read_conversations(tiny["convert"] / "train.jsonl")
    rec = build_receiver(lm, tok, 32, cfg)
    samples = build_samples(rows, messages, tok, cfg.mode, "train.jsonl", cfg.prepended_length)
    return Trainer(cfg, rec, tok, samples, tmp_path / "work")


def test_negatives_never_the_sample_itself_and_all_terms_finite(tiny, tmp_path):
    t = _trainer(tiny, tmp_path, steps=4)
    t.setup()
    for step in range(4):
        t.last_negatives = []
        batch, mine = t.make_batch(step)
        assert len(t.last_negatives) == len(mine)
        for own, neg in zip(mine, t.last_negatives, strict=True):
            assert t.samples[own].task_id != neg
        out = t.engine(batch)
        for key in ("loss", "ce", "l_plan", "l_rand", "w_plan", "w_rand", "hinge_active"):
            assert torch.isfinite(out[key]).all(), key
        assert 0.01 <= out["w_plan"] <= 0.05 and 0.01 <= out["w_rand"] <= 0.5


def test_loss_falls_over_a_few_steps(tiny, tmp_path):
    t = _trainer(tiny, tmp_path, steps=25)
    t.setup()
    t.train(tmp_path / "log.csv")
    first = sum(r["ce"] for r in t.rows[:3]) / 3
    last = sum(r["ce"] for r in t.rows[-3:]) / 3
    assert last < first * 0.8, (first, last)


def test_plan_text_pass_aligns_with_the_latent_pass(tiny):
    """Per-path alignment: the k-th supervised token has the same target in passes N and P."""
    from interlat.train.objective import aligned_logits

    tok = AutoTokenizer.from_pretrained(tiny["receiver"])
    lm = AutoModelForCausalLM.from_pretrained(tiny["receiver"])
    rec = build_receiver(lm, tok, 32, TrainConfig())
    rows = read_conversations(tiny["convert"] / "train.jsonl")[:3]
    samples = build_samples(rows, shards.load_messages(tiny["latents"]), tok, "interlat", "x", 800)
    batch = collate(samples, tok.pad_token_id)
    obj = ReceiverObjective(rec)
    plan = rec.embed(batch["plan_ids"])
    msg, n = obj.mixed_message(batch["H"], batch["H_len"], plan, batch["plan_len"], torch.full((3,), 1.0))
    e1, l1, m1, _ = rec.splice(batch, msg, n)
    e2, l2, m2, _ = rec.splice(batch, plan, batch["plan_len"])
    _, t1, k1 = aligned_logits(rec.logits(e1, m1), l1)
    _, t2, k2 = aligned_logits(rec.logits(e2, m2), l2)
    assert torch.equal(t1[k1], t2[k2]) and torch.equal(k1, k2)
