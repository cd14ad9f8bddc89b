"""The trainable adapter that maps a sender's latent message into the receiver (docs/method.md section 3).

Input H [B, L, d_s] (the sender's last-layer states), output [B, L, d] in the receiver's
embedding space:

1. optional Linear d_s -> d (cross-family senders), applied first;
2. x = LayerNorm(H); a = MultiheadAttention(x, x, x) (unmasked within the message apart
   from padding rows); u = LayerNorm(x + a);
3. AdaptiveProjection: r = s*u; v = W2 LN(GELU(W1 r)); out = o*(r + v);
4. clamp to [-10, 10].
"""

import math

import torch
from torch import nn

CLAMP = 10.0


class AdaptiveProjection(nn.Module):
    """r = s*u; out = o*(r + W2 LN(GELU(W1 r))) with learnable scalars s (0.2) and o (0.1)."""

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        # shape [1], not 0-dim: DeepSpeed ZeRO flattens parameters with views that 0-dim tensors refuse
        self.scale_in = nn.Parameter(torch.tensor([0.2]))
        self.scale_out = nn.Parameter(torch.tensor([0.1]))
        self.fc1 = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=eps)
        self.fc2 = nn.Linear(d, d)
        nn.init.normal_(self.fc1.weight, std=0.02)
        nn.init.zeros_(self.fc1.bias)
        nn.init.xavier_uniform_(self.fc2.weight, gain=1e-2)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r = self.scale_in * u
        v = self.fc2(self.norm(nn.functional.gelu(self.fc1(r))))
        return self.scale_out * (r + v)


class LatentAdapter(nn.Module):
    """Sender states [B, L, d_s] -> receiver embeddings [B, L, d] (see module docstring)."""

    def __init__(
        self,
        receiver_dim: int,
        sender_dim: int | None = None,
        num_heads: int = 8,
        dropout: float = 0.1,
        eps: float = 1e-6,
    ):
        super().__init__()
        sender_dim = sender_dim or receiver_dim
        self.sender_dim = sender_dim
        self.receiver_dim = receiver_dim
        self.proj = nn.Linear(sender_dim, receiver_dim) if sender_dim != receiver_dim else None
        self.pre_norm = nn.LayerNorm(receiver_dim, eps=eps)
        self.attn = nn.MultiheadAttention(receiver_dim, num_heads, dropout=dropout, batch_first=True)
        self.post_norm = nn.LayerNorm(receiver_dim, eps=eps)
        self.projection = AdaptiveProjection(receiver_dim, eps=eps)
        nn.init.xavier_uniform_(self.attn.in_proj_weight, gain=1 / math.sqrt(3))
        nn.init.zeros_(self.attn.in_proj_bias)
        nn.init.xavier_uniform_(self.attn.out_proj.weight, gain=1.0)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, H: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Adapt H [B, L, d_s]; rows at or past `lengths` [B] are padding and are not attended."""
        H = H.to(self.pre_norm.weight.dtype)
        if self.proj is not None:
            H = self.proj(H)
        x = self.pre_norm(H)
        pad = None
        if lengths is not None:
            pad = torch.arange(x.shape[1], device=x.device)[None, :] >= lengths[:, None]
            # An empty message attends to nothing; unmask it to avoid NaN (its rows are unused).
            pad = pad & (lengths[:, None] > 0)
        a, _ = self.attn(x, x, x, key_padding_mask=pad, need_weights=False)
        u = self.post_norm(x + a)
        return self.projection(u).clamp(-CLAMP, CLAMP)
