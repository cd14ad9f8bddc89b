"""StepCache: a batched KV cache grown across calls equals encoding each row alone, from scratch."""

import torch

from interlat.model.decode import Sampling, decode
from interlat.model.stepcache import StepCache
from tests.helpers import tiny_lm

VOCAB = 50


def alone(model, ids: list[int]) -> torch.Tensor:
    """Last-position state of one row encoded in one piece, no cache, no padding."""
    x = torch.tensor([ids])
    with torch.no_grad():
        return model.get_decoder()(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state[0, -1]


def rows(g, lengths):
    return [torch.randint(2, VOCAB, (n,), generator=g).tolist() for n in lengths]


def test_ragged_rows_grow_rewind_and_drop_like_fresh_encodings():
    model = tiny_lm(vocab_size=VOCAB).eval()
    g = torch.Generator().manual_seed(0)
    cache = StepCache(model)
    prompts = rows(g, [5, 9, 2])
    h = cache.extend_tokens(prompts)
    for b, ids in enumerate(prompts):
        torch.testing.assert_close(h[b], alone(model, ids), atol=1e-5, rtol=1e-4)
    assert cache.ids == prompts

    # greedy generation on the cache = the plain decode loop on each row alone
    cfg = Sampling(temperature=0, max_new_tokens=4)
    out = cache.generate(h, eos_ids={1}, cfg=cfg, generator=g)
    for b, ids in enumerate(prompts):
        embeds = model.get_input_embeddings()(torch.tensor([ids]))
        ref = decode(model, embeds, torch.ones(1, len(ids), dtype=torch.long), eos_ids={1}, cfg=cfg, generator=g)
        assert out[b] == ref.tokens[0]
        assert cache.ids[b] == ids + out[b][:3]  # the last sampled token is not fed

    # next call: row 1 keeps only part of what it holds (a rewind), every row gains ragged new tokens
    cache.rewind(1, len(prompts[1]) - 3)
    new = rows(g, [1, 6, 3])
    h = cache.extend_tokens(new)
    for b in range(3):
        torch.testing.assert_close(h[b], alone(model, cache.ids[b]), atol=1e-5, rtol=1e-4)
    held = [list(r) for r in cache.ids]

    # row 1 finishes: the others are reordered, and columns only row 1 used are dropped
    width = cache.width
    cache.keep([2, 0])
    assert cache.ids == [held[2], held[0]] and cache.width < width
    assert all(len(c) == len(i) for c, i in zip(cache.cols, cache.ids, strict=True))
    h = cache.extend_tokens(rows(g, [2, 4]))
    for b in range(2):
        torch.testing.assert_close(h[b], alone(model, cache.ids[b]), atol=1e-5, rtol=1e-4)
    assert cache.mask.sum(1).tolist() == [len(i) for i in cache.ids]


def test_a_spliced_block_counts_as_its_one_marker_token():
    """Vectors that stand for one token (a spliced message): rewinding after it keeps the block."""
    model = tiny_lm(vocab_size=VOCAB).eval()
    embed = model.get_input_embeddings()
    g = torch.Generator().manual_seed(1)
    head, tail = rows(g, [3, 4])
    block = torch.randn(5, 32, generator=g)
    with torch.no_grad():
        vectors = torch.cat([embed(torch.tensor(head)), block, embed(torch.tensor(tail))])
        ref = model.get_decoder()(inputs_embeds=vectors[None]).last_hidden_state[0]
    cache = StepCache(model)
    ids = [*head, 7, *tail]  # token 7 stands for the 5 block vectors
    ends = [0, 1, 2, 7, 8, 9, 10, 11]
    h = cache.extend([vectors], [ids], [ends])
    torch.testing.assert_close(h[0], ref[-1], atol=1e-5, rtol=1e-4)
    cache.rewind(0, 5)  # head, the block, the first tail token
    h = cache.extend_tokens([tail[1:]])
    torch.testing.assert_close(h[0], ref[-1], atol=1e-5, rtol=1e-4)
    assert cache.ids[0] == ids and cache.cols[0][3] == 7
