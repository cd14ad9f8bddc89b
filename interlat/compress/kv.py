"""A KV cache for the student's latent steps that stays correct under gradient checkpointing.

docs/method.md section 4 (and section 6: "gradient checkpointing silently dropping the KV cache of
latent steps"). Hugging Face layers drop the cache when gradient checkpointing is on in
training mode, because `DynamicCache.update` appends in place and the backward pass replays
each layer, which would append a second time. Here every forward step gets its own
`StepCache`: the past keys/values are fixed tensors (part of the autograd graph), and
`update` returns ``cat(past, new)`` without touching the past, so a replay recomputes the
same tensors. `keep_cache_under_checkpointing` tells the model's layers that this cache may
be kept; callers check the cache length after each step (`StepCache.length`), so a dropped
cache is an error, never a silent change of the computation.
"""

import contextlib

import torch
from transformers.cache_utils import Cache, DynamicLayer
from transformers.modeling_layers import GradientCheckpointingLayer


class _StepLayer(DynamicLayer):
    """One layer's cache for one step: fixed past states plus this step's new ones."""

    def __init__(self, past_keys: torch.Tensor | None = None, past_values: torch.Tensor | None = None):
        super().__init__()
        self.past = (past_keys, past_values)
        if past_keys is not None:
            self.keys, self.values = past_keys, past_values
            self.is_initialized = True
            self.device = past_keys.device

    def update(self, key_states, value_states, *args, **kwargs):
        past_keys, past_values = self.past
        if past_keys is None:
            self.keys, self.values = key_states, value_states
        else:
            self.keys = torch.cat([past_keys, key_states], dim=-2)
            self.values = torch.cat([past_values, value_states], dim=-2)
        self.is_initialized = True
        self.device = key_states.device
        return self.keys, self.values


class StepCache(Cache):
    """The cache of one forward step; `states()` seeds the next step's cache."""

    def __init__(self, n_layers: int, past: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
        layers = [_StepLayer(*(past[i] if past else (None, None))) for i in range(n_layers)]
        super().__init__(layers=layers)

    def states(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(layer.keys, layer.values) for layer in self.layers]

    def length(self) -> int:
        """Positions held by every layer (-1 if the layers disagree or one was never updated)."""
        lengths = {layer.keys.shape[-2] if layer.keys is not None else -1 for layer in self.layers}
        return lengths.pop() if len(lengths) == 1 else -1


@contextlib.contextmanager
def keep_cache_under_checkpointing(model: torch.nn.Module):
    """Let `model`'s checkpointed layers keep a `StepCache` (replays are idempotent)."""
    layers = [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]
    for m in layers:
        m._can_checkpoint_with_cache = True
    try:
        yield
    finally:
        for m in layers:
            m.__dict__.pop("_can_checkpoint_with_cache", None)
