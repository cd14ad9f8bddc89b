"""A batched sampling decode loop with a KV cache that also returns the last-layer states.

Used by collection (the sender's message, METHOD.md section 1) and by evaluation (receiver
answers). It calls the decoder body directly (`model.get_decoder()`), whose output is the
final norm's output, and the LM head on top: exactly `hidden_states[-1]` of a full forward,
without ever materialising the other layers. Inputs are left-padded; each row's state is read
at its own last real position, position ids come from the attention mask, and each row stops
at its own end-of-sequence token.
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
    """Draw one token per row from logits [B, V] with temperature, top-k and top-p."""
    logits = logits.float()
    if cfg.temperature <= 0:
        return logits.argmax(-1)
    logits = logits / cfg.temperature
    if 0 < cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if cfg.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs > cfg.top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


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

    `force_length` ignores end-of-sequence (for latency benchmarks at a fixed N).
    """
    body = model.get_decoder()
    head = model.get_output_embeddings()
    embed = model.get_input_embeddings()
    B = inputs_embeds.shape[0]
    device = inputs_embeds.device
    mask = attention_mask.long()
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = DynamicCache()
    out = body(
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
    )
    h = out.last_hidden_state[:, -1]
    next_pos = position_ids[:, -1] + 1
    tokens: list[list[int]] = [[] for _ in range(B)]
    states: list[list[torch.Tensor]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    steps = force_length if force_length is not None else cfg.max_new_tokens
    for _ in range(steps):
        tok = sample_next(head(h), cfg, generator)
        if force_length is None:
            stop = torch.tensor([t in eos_ids for t in tok.tolist()], device=device)
        else:
            stop = torch.zeros(B, dtype=torch.bool, device=device)
        for b in (~done & ~stop).nonzero().flatten().tolist():
            tokens[b].append(int(tok[b]))
            if keep_states:
                states[b].append(h[b])
        done |= stop
        if bool(done.all()):
            break
        mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
        out = body(
            inputs_embeds=embed(tok[:, None]),
            attention_mask=mask,
            position_ids=next_pos[:, None],
            past_key_values=out.past_key_values,
            use_cache=True,
        )
        h = out.last_hidden_state[:, -1]
        next_pos = next_pos + 1
    d = inputs_embeds.shape[-1] if not keep_states else h.shape[-1]
    return Generated(
        tokens=tokens,
        states=[torch.stack(s) if s else h.new_zeros(0, d) for s in states] if keep_states else None,
        finished=done.tolist(),
    )
