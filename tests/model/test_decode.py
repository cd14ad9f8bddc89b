"""The decode loop (docs/method.md section 1): its states are exactly a full forward's last layer.

H row t must be the final-norm output at the position from which token t was sampled, read
at each row's own real positions under left padding, with one row per generated token and
each row stopping at its own end-of-sequence token.
"""

import pytest
import torch

from interlat.model.decode import Sampling, decode, sample_next
from interlat.text.batching import left_padded_prompts
from interlat.text.chat import render_ids
from interlat.text.prompts import planner_messages
from interlat.text.tokenizer import build_tokenizer
from tests.helpers import tiny_lm

# Tolerance. Everything runs in fp32. The padded incremental decode (KV cache, one query per
# step, a padding mask, shifted position ids) and the unpadded full forward (one causal pass)
# reduce in different orders inside the attention and matmul kernels, so the states agree to
# rounding, not bit for bit: measured here, at most ~5e-7 absolute / ~2e-7 relative to the
# largest entry (fp32 epsilon 1.2e-7, amplified a little by 2 layers and the norms). 1e-5
# leaves ~20x headroom for other CPU kernels and is still five orders of magnitude below a
# real misalignment (a state read one position off, or at a pad position, differs by O(1)).
RTOL = ATOL = 1e-5

CORPUS = [
    "Solve for x: 3x+4=19. Subtract 4 from both sides to get 3x=15. Then divide by 3.",
    "Add 7 to both sides to get 5x=40. Then divide both sides by 5.",
    "Provide a plan only, not the final answer, for the following problem.",
]
PROBLEMS = [
    "Solve for $x$: $3x+4=19$.",
    "Solve for $x$: $5x-7=33$ then add both sides.",
    "Solve $x$.",
    "Solve for $x$: $2x+9=27$. Subtract 9 from both sides to get 2x=18.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(CORPUS)


def tiny(arch: str, tokenizer, seed: int = 0):
    """A 2-layer, 32-wide random-init model in fp32, eval mode."""
    model = tiny_lm(arch, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id, seed=seed)
    return model.float().eval()


def prompts(tokenizer, n: int) -> list[list[int]]:
    """`n` chat-rendered planner prompts of different lengths."""
    rows = [render_ids(tokenizer, planner_messages("math", p), True) for p in PROBLEMS[:n]]
    assert n == 1 or len({len(r) for r in rows}) == n
    return rows


def run(model, tokenizer, rows, cfg, *, seed=0, eos=None, force_length=None):
    ids, mask = left_padded_prompts(tokenizer, rows, "cpu")
    return decode(
        model,
        model.get_input_embeddings()(ids),
        mask,
        eos_ids={tokenizer.eos_token_id} if eos is None else eos,
        cfg=cfg,
        generator=torch.Generator().manual_seed(seed),
        keep_states=True,
        force_length=force_length,
    )


def reference_states(model, prompt: list[int], plan: list[int]) -> torch.Tensor:
    """hidden_states[-1] of one unpadded full forward, at the positions that sampled `plan`."""
    with torch.no_grad():
        out = model(torch.tensor([prompt + plan]), output_hidden_states=True)
    last = out.hidden_states[-1][0]
    return last[len(prompt) - 1 : len(prompt) - 1 + len(plan)]


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
@pytest.mark.parametrize("batch", [1, 4])
def test_states_equal_full_forward_last_layer(arch, batch, tokenizer):
    model = tiny(arch, tokenizer)
    rows = prompts(tokenizer, batch)
    out = run(model, tokenizer, rows, Sampling(1.0, 1.0, 0, 12))
    assert len(out.tokens) == len(out.states) == batch
    for prompt, toks, H in zip(rows, out.tokens, out.states, strict=True):
        assert len(toks) >= 1
        assert H.shape == (len(toks), model.config.hidden_size)
        torch.testing.assert_close(H, reference_states(model, prompt, toks), rtol=RTOL, atol=ATOL)


def test_each_row_stops_at_its_own_eos(tokenizer):
    """Make EOS likely: a row stops there, keeps no state for it, and the others go on."""
    model = tiny("qwen2", tokenizer, seed=1)
    rows = prompts(tokenizer, 4)
    # a frequent token stands in for EOS, so that rows stop at different steps
    probe = run(model, tokenizer, rows, Sampling(1.5, 1.0, 0, 24), seed=3, force_length=24)
    counts = torch.bincount(torch.tensor(sum(probe.tokens, [])), minlength=len(tokenizer))
    eos = {int(counts.argmax())}
    out = run(model, tokenizer, rows, Sampling(1.5, 1.0, 0, 24), seed=3, eos=eos)
    lengths = [len(t) for t in out.tokens]
    assert any(out.finished) and len(set(lengths)) > 1, lengths
    for prompt, toks, H, fin, full in zip(
        rows, out.tokens, out.states, out.finished, probe.tokens, strict=True
    ):
        assert not eos & set(toks)  # the stop token is not part of the plan
        assert H.shape[0] == len(toks)
        # same seed, same draws: the stopped row is the forced row cut before its first EOS
        assert toks == full[: len(toks)]
        if fin:
            assert full[len(toks)] in eos
        else:
            assert len(toks) == 24
        if toks:
            torch.testing.assert_close(
                H, reference_states(model, prompt, toks), rtol=RTOL, atol=ATOL
            )


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_greedy_batch_rows_equal_single_rows(arch, tokenizer):
    model = tiny(arch, tokenizer, seed=2)
    rows = prompts(tokenizer, 4)
    greedy = Sampling(0.0, 1.0, 0, 10)
    batched = run(model, tokenizer, rows, greedy)
    for i, prompt in enumerate(rows):
        alone = run(model, tokenizer, [prompt], greedy)
        assert batched.tokens[i] == alone.tokens[0]
        torch.testing.assert_close(batched.states[i], alone.states[0], rtol=RTOL, atol=ATOL)


def test_force_length_ignores_eos(tokenizer):
    model = tiny("llama", tokenizer)
    rows = prompts(tokenizer, 2)
    everything = set(range(len(tokenizer)))  # every token is an EOS
    out = run(model, tokenizer, rows, Sampling(1.0, 1.0, 0, 3), eos=everything, force_length=7)
    assert [len(t) for t in out.tokens] == [7, 7]
    assert [H.shape[0] for H in out.states] == [7, 7]
    assert out.finished == [False, False]
    stopped = run(model, tokenizer, rows, Sampling(1.0, 1.0, 0, 3), eos=everything)
    assert stopped.tokens == [[], []] and stopped.finished == [True, True]
    assert [H.shape for H in stopped.states] == [(0, 32), (0, 32)]


def test_top_k_top_p_keep_only_the_nucleus():
    """Top-k then top-p: draws come only from the smallest head of the top-k holding top_p."""
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0, 0.0, -1.0]]).repeat(200, 1)
    gen = torch.Generator().manual_seed(0)
    # softmax of the top 4: [0.64, 0.24, 0.09, 0.03]; top_p 0.8 keeps the first two
    drawn = sample_next(logits, Sampling(1.0, 0.8, 4, 1), gen)
    assert set(drawn.tolist()) == {0, 1}
    drawn = sample_next(logits, Sampling(1.0, 1.0, 3, 1), gen)
    assert set(drawn.tolist()) == {0, 1, 2}
    drawn = sample_next(logits, Sampling(1.0, 0.5, 0, 1), gen)
    assert set(drawn.tolist()) == {0}
    assert sample_next(logits[:2], Sampling(0.0, 1.0, 0, 1), gen).tolist() == [0, 0]
