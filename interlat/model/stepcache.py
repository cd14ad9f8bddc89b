"""A batched KV cache kept across generation calls: each row grows by its new tokens only.

ALFWorld episodes (docs/method.md section 5.4, "KV cache across steps") call the receiver once
per step on the episode so far; re-encoding that history every step costs a prefill of the
whole episode per step. `StepCache` keeps one `DynamicCache` for a batch of rows and extends
it instead:

- Columns are shared by the batch, rows are ragged: a 2-D attention mask [B, C] marks each
  row's real columns (0 = a hole the row never attends to).
- `extend` appends one block holding every row's new tokens, right-aligned in the block (left
  padding inside it), so each row's last real token sits in the last column, where its next
  token is read; the holes before a row's tokens are masked.
- Positions come from the mask: a column's position is the number of real columns before it in
  its row, so a row's tokens get exactly the positions they would have if the row were encoded
  in one piece (what the recomputing loop does).
- `rewind(b, n)` masks row b's tokens after its first n: when the rendered conversation no
  longer starts with what the cache holds (a re-tokenised generated turn), the row falls back
  to the longest common prefix.
- `keep(rows)` drops finished rows, then the columns that are holes in every remaining row.
- `generate` is the sampling loop of `interlat.model.decode` on top of the cache; the tokens it
  feeds become part of each row.

Each row tracks the token ids it holds (`ids`) and the column of each (`cols`: the last
column of that token, so a spliced message counts as its one marker token).
"""

import torch
from transformers import DynamicCache

from interlat.model.decode import Sampling, sample_next


class StepCache:
    """A growing batched KV cache over a decoder LM (see the module docstring)."""

    def __init__(self, model):
        self.model = model
        self.cache = DynamicCache(config=model.config)
        self.mask: torch.Tensor | None = None  # [B, C] long, 1 = real column of the row
        self.ids: list[list[int]] = []
        self.cols: list[list[int]] = []

    @property
    def width(self) -> int:
        return 0 if self.mask is None else self.mask.shape[1]

    def _forward(self, embeds: torch.Tensor, block_mask: torch.Tensor) -> torch.Tensor:
        """Append a [B, W, d] block (its mask [B, W]) and return the last column's states [B, d]."""
        before = self.mask.sum(1, keepdim=True) if self.mask is not None else 0
        position_ids = (before + block_mask.cumsum(1) - 1).clamp(min=0)
        self.mask = block_mask if self.mask is None else torch.cat([self.mask, block_mask], 1)
        out = self.model.get_decoder()(
            inputs_embeds=embeds, attention_mask=self.mask, position_ids=position_ids, cache=self.cache, use_cache=True
        )
        return out.last_hidden_state[:, -1]

    @torch.no_grad()
    def extend(self, embeds: list[torch.Tensor], ids: list[list[int]], ends: list[list[int]] | None = None) -> torch.Tensor:
        """Append row b's vectors `embeds[b]` [n_b, d] (n_b >= 1) holding tokens `ids[b]`.

        `ends[b][i]`: index in `embeds[b]` of the last vector of token i (default: token i is
        vector i; a spliced message makes its marker token span many vectors). Returns the
        states of each row's last new vector [B, d], from which its next token is sampled.
        """
        B = len(embeds)
        if self.mask is None:
            self.ids, self.cols = [[] for _ in range(B)], [[] for _ in range(B)]
        W = max(e.shape[0] for e in embeds)
        first = embeds[0]
        block = first.new_zeros(B, W, first.shape[-1])
        block_mask = torch.zeros(B, W, dtype=torch.long, device=first.device)
        base = self.width
        for b, e in enumerate(embeds):
            pad = W - e.shape[0]
            block[b, pad:] = e
            block_mask[b, pad:] = 1
            offsets = ends[b] if ends is not None else range(len(ids[b]))
            self.ids[b] += ids[b]
            self.cols[b] += [base + pad + k for k in offsets]
        return self._forward(block, block_mask)

    def extend_tokens(self, ids: list[list[int]]) -> torch.Tensor:
        """`extend` with token ids embedded by the model's input embeddings."""
        embed = self.model.get_input_embeddings()
        device = embed.weight.device
        return self.extend([embed(torch.tensor(r, device=device)) for r in ids], ids)

    def common_prefix(self, b: int, target: list[int]) -> int:
        """How many leading tokens of `target` row b already holds (at most len(target) - 1,
        so at least one token is fed and its state read)."""
        held = self.ids[b]
        n = 0
        limit = min(len(held), len(target) - 1)
        while n < limit and held[n] == target[n]:
            n += 1
        return n

    def rewind(self, b: int, n: int) -> None:
        """Keep only row b's first `n` tokens: every later column of the row becomes a hole."""
        if n >= len(self.ids[b]):
            return
        start = self.cols[b][n - 1] + 1 if n else 0
        self.mask[b, start:] = 0
        self.ids[b], self.cols[b] = self.ids[b][:n], self.cols[b][:n]

    def keep(self, rows: list[int]) -> None:
        """Keep these rows (in this order) and drop the columns none of them uses."""
        if rows != list(range(len(self.ids))):
            index = torch.tensor(rows, device=self.mask.device)
            self.cache.batch_select_indices(index)
            self.mask = self.mask[index]
            self.ids = [self.ids[r] for r in rows]
            self.cols = [self.cols[r] for r in rows]
        used = self.mask.any(0)
        if bool(used.all()):
            return
        index = used.nonzero().flatten()
        for layer in self.cache.layers:
            layer.keys = layer.keys[:, :, index]
            layer.values = layer.values[:, :, index]
        self.mask = self.mask[:, index]
        remap = (used.cumsum(0) - 1).tolist()
        self.cols = [[remap[c] for c in row] for row in self.cols]

    @torch.no_grad()
    def generate(self, h: torch.Tensor, *, eos_ids: set[int], cfg: Sampling, generator: torch.Generator) -> list[list[int]]:
        """Sample up to `cfg.max_new_tokens` tokens per row from states `h` [B, d] (after `extend`).

        A row stops at its first token in `eos_ids` (not returned). Every token fed back to the
        model joins its row (a stop token is fed masked, and the last sampled token is not fed).
        """
        head = self.model.get_output_embeddings()
        embed = self.model.get_input_embeddings()
        B, device = h.shape[0], h.device
        steps = cfg.max_new_tokens
        tokens = torch.zeros(B, steps, dtype=torch.long, device=device)
        lengths = torch.zeros(B, dtype=torch.long, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=device)
        base, fed = self.width, 0
        for t in range(steps):
            tok = sample_next(head(h), cfg, generator)
            tokens[:, t] = tok
            done |= torch.isin(tok, eos)
            lengths += ~done
            if t == steps - 1 or bool(done.all()):
                break
            h = self._forward(embed(tok[:, None]), (~done).long()[:, None])
            fed += 1
        n = lengths.tolist()
        out = [row[:k] for row, k in zip(tokens.tolist(), n, strict=True)]
        for b, row in enumerate(out):
            k = min(len(row), fed)
            self.ids[b] += row[:k]
            self.cols[b] += [base + t for t in range(k)]
        return out
