"""A batched sampling decode loop with a KV cache that also returns the last-layer states.

Used by collection (the sender's message, docs/method.md section 1) and by evaluation (receiver
answers). It calls the decoder body directly (`model.get_decoder()`), whose output is the
final norm's output, and the LM head on top: exactly `hidden_states[-1]` of a full forward,
without ever materialising the other layers. Inputs are left-padded; each row's state is read
at its own last real position, position ids come from the attention mask, and each row stops
at its own end-of-sequence token.

The loop keeps per-step Python work constant in the batch size: tokens and states go into
preallocated [B, steps] buffers (a finished row's later entries are never read, since each
row's valid entries are a prefix), the attention mask is preallocated and sliced, and the
only host synchronisation per step is the all-finished check.
"""

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters; temperature 0 means greedy."""

    temperature: float = 0.8
    top_p: float = 0.9
    top_k: int = 50
    max_new_tokens: int = 64


def sample_next(logits: torch.Tensor, cfg: Sampling, generator: torch.Generator) -> torch.Tensor:
    """Draw one token per row from logits [B, V] with temperature, then top-k, then top-p.

    Top-p acts on the renormalised top-k (as in Hugging Face's warper order); with top-k on,
    only the k best logits are sorted, not the whole vocabulary.
    """
    logits = logits.float()
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    logits = logits / cfg.temperature
    if 0 < cfg.top_k < logits.shape[-1]:
        values, order = torch.topk(logits, cfg.top_k, dim=-1)  # sorted, descending
    elif cfg.top_p < 1.0:
        values, order = torch.sort(logits, descending=True, dim=-1)
    else:
        values, order = logits, None
    if cfg.top_p < 1.0:
        probs = values.softmax(-1)
        drop = probs.cumsum(-1) - probs > cfg.top_p  # the first token is always kept
        values = values.masked_fill(drop, float("-inf"))
    drawn = draw(values.softmax(-1), generator)
    if order is not None:
        drawn = order.gather(-1, drawn)
    return drawn.squeeze(-1)


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of `probs` [B, V], drawn on the probabilities' own device.

    A generator on that device samples with `torch.multinomial` (the CPU path, unchanged). A
    CPU generator with GPU probabilities (the seeded evaluation and collection generators)
    draws only B uniforms on the host and inverts each row's CDF on the GPU, so no step copies
    vocabulary-sized tensors to the host."""
    if probs.device == generator.device:
        return torch.multinomial(probs, 1, generator=generator)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=torch.float64).to(probs.device)
    return inverse_cdf(probs, u)


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The index where each row's cumulative probability first exceeds u [B, 1] (in [0, 1)) of
    its total; zero-probability entries are never returned."""
    cdf = probs.double().cumsum(-1)
    idx = torch.searchsorted(cdf, u * cdf[:, -1:], right=True)
    idx = idx.clamp(max=probs.shape[-1] - 1)
    # u * total can land on a flat stretch's right edge only where the next entry is >0, and on the
    # last entry only through rounding: step back over trailing zero-probability entries then
    last = (probs > 0).long().cumsum(-1).argmax(-1, keepdim=True)
    return torch.minimum(idx, last)


@dataclass
class Generated:
    """Per row: the generated token ids (without the stop token) and their source states."""

    tokens: list[list[int]]
    states: list[torch.Tensor] | None  # [N_b, d] each, row t = state that produced token t
    finished: list[bool]


@torch.no_grad()
def decode(
    model,
    inputs_embeds: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    eos_ids: set[int],
    cfg: Sampling,
    generator: torch.Generator,
    keep_states: bool = False,
    force_length: int | None = None,
) -> Generated:
    """Sample up to `cfg.max_new_tokens` tokens for each left-padded row.

    `inputs_embeds` [B, S, d] and `attention_mask` [B, S] (1 = real) hold the prompts; a row
    stops at its first token in `eos_ids`, which is not returned. With `keep_states`, row t
    of a row's states is the final-norm output at the position that sampled its token t.
    `force_length` ignores end-of-sequence and generates exactly that many tokens per row
    (for latency benchmarks at a fixed N).
    """
    body = model.get_decoder()
    head = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    B, S = attention_mask.shape
    device = inputs_embeds.device
    steps = force_length if force_length is not None else cfg.max_new_tokens
    mask = torch.zeros(B, S + steps, dtype=torch.long, device=device)
    mask[:, :S] = attention_mask
    position_ids = (mask[:, :S].cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config)
    out = body(
        inputs_embeds=inputs_embeds,
        attention_mask=mask[:, :S],
        position_ids=position_ids,
        cache=cache,
        use_cache=True,
    )
    h = out.last_hidden_state[:, -1]
    next_pos = position_ids[:, -1:] + 1
    tokens = torch.zeros(B, steps, dtype=torch.long, device=device)
    states = h.new_empty(B, steps, h.shape[-1]) if keep_states else None
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
    for t in range(steps):
        tok = sample_next(head(h), cfg, generator)
        tokens[:, t] = tok
        if keep_states:
            states[:, t] = h
        if force_length is None:
            done |= torch.isin(tok, eos)
        lengths += ~done
        if t == steps - 1 or (force_length is None and bool(done.all())):
            break
        mask[:, S + t] = ~done
        out = body(
            inputs_embeds=embed(tok[:, None]),
            attention_mask=mask[:, : S + t + 1],
            position_ids=next_pos,
            cache=cache,
            use_cache=True,
        )
        h = out.last_hidden_state[:, -1]
        next_pos = next_pos + 1
    n = lengths.tolist()
    return Generated(
        tokens=[row[:k] for row, k in zip(tokens.tolist(), n, strict=True)],
        states=[states[b, :k] for b, k in enumerate(n)] if keep_states else None,
        finished=done.tolist(),
    )
