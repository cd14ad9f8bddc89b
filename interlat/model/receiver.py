"""The receiver: a causal LM plus the latent adapter, with message insertion (docs/method.md section 3).

`Receiver.forward_message` embeds a batch of prompts, adapts (or embeds) the message and
splices it at the marker; every path of training and evaluation goes through it. A
checkpoint is the base model in HF format (safetensors), `adapter.safetensors` and
`interlat.json`; `load_receiver(path)` returns a ready model in one call.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from interlat.errors import InterlatError
from interlat.model.adapter import LatentAdapter
from interlat.model.folders import check_receiver_dir, load_lm
from interlat.model.insertion import insert_message
from interlat.text.prompts import BOP, EOP, MARKER, SPECIAL_TOKENS
from interlat.text.tokenizer import load_tokenizer

CONFIG_NAME = "interlat.json"
ADAPTER_NAME = "adapter.safetensors"


def add_special_tokens(tokenizer, lm) -> dict[str, int]:
    """Ensure `<bop>`, `<eop>`, `<FIRST_HUMAN_END>` exist and give each a fresh embedding row.

    Tokens the tokenizer lacks are added; the matrix grows when an id falls past its rows. The
    three rows are then always set to the mean of the real tokens' input embeddings (and of
    their output rows when the LM head is untied), also when the ids fall on spare rows a
    checkpoint already has (Qwen2.5: 151,936 rows for 151,665 tokens), whose untrained values
    must never become a special token's (docs/method.md section 3). Receivers are built once
    from a base LM (`interlat train`), so a trained receiver's rows are never reset.
    """
    n_real = len(tokenizer)
    missing = [t for t in SPECIAL_TOKENS if t not in tokenizer.get_vocab()]
    if missing:
        # keep the tokenizer's own special tokens (Qwen2.5's <|im_end|>) listed as special
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id in ids.values():
        raise InterlatError(f"{tokenizer.name_or_path}: field \"pad_token\": equals a special token")
    real = [i for i in range(min(n_real, lm.get_input_embeddings().weight.shape[0])) if i not in ids.values()]
    if max(ids.values()) >= lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    rows = torch.tensor(sorted(ids.values()))
    real = torch.tensor(real)
    with torch.no_grad():
        for matrix in {id(m.weight): m.weight for m in (lm.get_input_embeddings(), lm.get_output_embeddings())}.values():
            matrix[rows] = matrix[real].mean(0)
    return ids


class Receiver(nn.Module):
    """Base causal LM + adapter; see module docstring."""

    def __init__(self, lm, adapter: LatentAdapter, token_ids: dict[str, int], prepended_length: int):
        super().__init__()
        self.lm = lm
        self.adapter = adapter
        self.token_ids = dict(token_ids)
        self.prepended_length = prepended_length

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", dtype=None) -> "Receiver":
        """A saved receiver folder, the Hugging Face way (`load_receiver` without the tokenizer;
        `AutoTokenizer.from_pretrained(path)` loads that)."""
        return load_receiver(path, device=device, dtype=dtype)[0]

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(ids)

    def delimiters(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.tensor([self.token_ids[BOP], self.token_ids[EOP]], device=self.device)
        e = self.embed(ids)
        return e[0], e[1]

    def adapt(self, H: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Adapter output for padded messages H [B, L, d_s] (first `prepended_length` rows)."""
        return self.adapter(H[:, : self.prepended_length], lengths.clamp(max=self.prepended_length))

    def splice(self, batch: dict, message: torch.Tensor, message_len: torch.Tensor, delimiters: bool = True):
        """Embed the batch's prompts and insert `message` at each marker; returns LM inputs."""
        embeds = self.embed(batch["input_ids"])
        bop, eop = self.delimiters() if delimiters else (None, None)
        return insert_message(
            embeds, batch["labels"], batch["lengths"], batch["marker_pos"], message, message_len, bop, eop
        )

    def logits(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids).logits

    def hidden(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The final-norm hidden states [B, S, d] under `logits` (its LM head is `head`)."""
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return self.lm.get_decoder()(inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids).last_hidden_state

    @property
    def head(self):
        """The LM head: `logits` = head(hidden)."""
        return self.lm.get_output_embeddings()

    def save(self, path: str | Path, tokenizer, extra: dict | None = None) -> None:
        path = Path(path)
        self.lm.save_pretrained(path, safe_serialization=True)
        tokenizer.save_pretrained(path)
        state = {k: v.detach().contiguous().cpu() for k, v in self.adapter.state_dict().items()}
        save_file(state, path / ADAPTER_NAME)
        cfg = {
            "token_ids": self.token_ids,
            "prepended_length": self.prepended_length,
            "sender_hidden_size": self.adapter.sender_dim,
            "receiver_hidden_size": self.adapter.receiver_dim,
            "adapter_heads": self.adapter.attn.num_heads,
            **(extra or {}),
        }
        (path / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def load_receiver(path: str | Path, device: str = "cpu", dtype=None) -> tuple[Receiver, object]:
    """(receiver in eval mode, tokenizer) from a checkpoint folder, on `device` in `dtype`
    (default `interlat.runtime.compute_dtype(device)`: bf16 on GPUs, fp32 on CPUs)."""
    from interlat import runtime

    path = Path(path)
    cfg = check_receiver_dir(path)  # one line naming a missing, truncated or malformed file (and key)
    tokenizer = load_tokenizer(path)
    lm = load_lm(path, dtype or runtime.compute_dtype(device), "receiver checkpoint")
    adapter = LatentAdapter(cfg["receiver_hidden_size"], cfg["sender_hidden_size"], cfg["adapter_heads"])
    try:
        adapter.load_state_dict(load_file(path / ADAPTER_NAME))
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InterlatError(f"{path / ADAPTER_NAME}: tensors do not fit the adapter of {CONFIG_NAME} ({first})") from None
    model = Receiver(lm, adapter, cfg["token_ids"], cfg["prepended_length"]).to(device, lm.dtype).eval()
    model.config_json = cfg
    return model, tokenizer


def marker_positions(input_ids: torch.Tensor, marker_id: int, where: str) -> torch.Tensor:
    """Index of the single marker token in each row (error naming the row when absent)."""
    hits = input_ids == marker_id
    counts = hits.sum(1)
    bad = (counts != 1).nonzero().flatten().tolist()
    if bad:
        raise InterlatError(f"{where}: row {bad[0]}: field \"{MARKER}\": {int(counts[bad[0]])} markers, expected 1")
    return hits.long().argmax(1)
