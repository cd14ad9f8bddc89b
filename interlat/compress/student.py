"""The compression student: a causal LM that emits K latent vectors instead of a plan (docs/method.md section 4).

The student reads `STUDENT_PREFIX` + the teacher's prompt up to the marker (left-padded
batch), then takes K autoregressive latent steps: the input embedding of step 1 is the
learned start vector `lat_bos` (~N(0, 0.02)), that of step k > 1 is the bridge
h2e(z_{k-1}) = Linear(LayerNorm(z_{k-1})) (no bias), and z_k is the last-layer hidden state
(the output of the final norm, `model.get_decoder()`) at step k's position. The prompt and
`lat_bos` go through the model in one pass; steps 2..K reuse the keys/values of all earlier
positions through `interlat.compress.kv.StepCache`, so gradients reach every step's input and
every cached state, with or without gradient checkpointing. Position ids continue each row's
own count (left padding); the attention mask covers each row's real prompt tokens and every
latent step, with the full [B, S + k] width at step k.

When the student's hidden size differs from the teacher adapter's input size, a Linear
projection maps z to that size (the emitted latents).
"""

import math

import torch
from torch import nn

from interlat.compress.kv import StepCache, keep_cache_under_checkpointing


class Student(nn.Module):
    """Student LM + bridge h2e + lat_bos (+ projection); `forward` = `generate_latents`."""

    def __init__(self, lm, out_dim: int | None = None):
        super().__init__()
        d = lm.config.hidden_size
        self.lm = lm
        self.hidden_size = d
        self.out_dim = out_dim or d
        self.h2e = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d, bias=False))
        self.lat_bos = nn.Parameter(torch.randn(d) * 0.02)
        self.proj = nn.Linear(d, self.out_dim) if self.out_dim != d else None
        # The bridge's output starts at the scale of the LM's own input embeddings.
        with torch.no_grad():
            table = lm.get_input_embeddings().weight
            rows = table[:: max(table.shape[0] // 4096, 1)].float()  # a sample: no full fp32 copy of a big table
            rms = rows.square().mean().sqrt().item()
            nn.init.normal_(self.h2e[1].weight, std=max(rms, 1e-3) / math.sqrt(d))

    @property
    def device(self) -> torch.device:
        return self.lat_bos.device

    @classmethod
    def from_pretrained(cls, path, device: str = "cpu", dtype=None) -> "Student":
        """A saved student folder, the Hugging Face way (`interlat.compress.load_student` without
        the tokenizer; `AutoTokenizer.from_pretrained(path)` loads that)."""
        from interlat.compress.checkpoint import load_student

        return load_student(path, device=device, dtype=dtype)[0]

    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint the LM's layers (non-reentrant, so cached states keep their gradients)."""
        kwargs = {"use_reentrant": False}
        if hasattr(self.lm, "activation_checkpointing_enable"):
            self.lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.lm.config.use_cache = False

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, K: int) -> torch.Tensor:
        return self.generate_latents(input_ids, attention_mask, K)

    def generate_latents(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, K: int) -> torch.Tensor:
        """Latents [B, K, out_dim] for left-padded prompts input_ids/attention_mask [B, S]."""
        if K < 1:
            raise ValueError(f"K must be >= 1, got {K}")
        body = self.lm.get_decoder()
        n_layers = self.lm.config.num_hidden_layers
        B, S = input_ids.shape
        embeds = self.lm.get_input_embeddings()(input_ids)
        bos = self.lat_bos.to(embeds.dtype).expand(B, 1, -1)
        mask = torch.cat([attention_mask.long(), attention_mask.new_ones(B, K).long()], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        step_input = torch.cat([embeds, bos], dim=1)
        past, zs = None, []
        with keep_cache_under_checkpointing(body):
            for k in range(K):
                end = S + 1 + k
                cache = StepCache(n_layers, past)
                out = body(
                    inputs_embeds=step_input,
                    attention_mask=mask[:, :end],
                    position_ids=positions[:, end - step_input.shape[1] : end],
                    cache=cache,
                    use_cache=True,
                )
                if cache.length() != end:
                    raise RuntimeError(
                        f"latent step {k + 1}: the KV cache holds {cache.length()} positions, expected {end} "
                        "(the model dropped it; see interlat.compress.kv)"
                    )
                past = cache.states()
                z = out.last_hidden_state[:, -1]
                zs.append(z)
                step_input = self.h2e(z.to(self.lat_bos.dtype))[:, None].to(embeds.dtype)
        Z = torch.stack(zs, dim=1)
        return self.proj(Z) if self.proj is not None else Z
