"""The evaluate stage: classify the variant, load the receiver (and student) and messages, dispatch."""

import re
from pathlib import Path

from interlat.errors import InterlatError


def is_latent(variant: str) -> bool:
    """Whether a variant's message is made of latents (read from shards), after checking it is known."""
    from interlat import variants
    from interlat.evaluate.messages import EMPTY_VARIANTS, PLAIN_VARIANTS, TEXT_VARIANTS

    latent = variant not in TEXT_VARIANTS | EMPTY_VARIANTS | PLAIN_VARIANTS
    compressed = re.fullmatch(r"compressed_[1-9]\d*", variant) is not None
    if latent and variant != "cross_family" and not compressed and not variants.is_message_variant(variant):
        raise InterlatError(f"--variant: {variant!r}: unknown variant")
    return latent


def run_evaluation(*, benchmark: str, receiver: Path, conversations: Path, latents, student: Path | None,
                   variant: str, seeds: list[int], cfg, batch_size: int, games_dir: Path | None, max_steps: int,
                   work_dir: Path, out: Path) -> str:
    """Evaluate `receiver` under one message variant: MATH answers or ALFWorld episodes -> `out` (Parquet)."""
    import polars as pl

    import interlat
    from interlat import shards
    from interlat.compress.checkpoint import student_for_variant
    from interlat.conversations import check_messages, read_conversations
    from interlat.evaluate.math import evaluate_math

    latent = is_latent(variant)
    from interlat.runtime import local_device

    model, tok = interlat.load_receiver(receiver, device=local_device())  # GPU in bf16 where there is one
    student_model = student_for_variant(student, variant, model, tok, device=model.device)
    messages = {}
    if latent:
        messages = shards.load_messages_of(latents, hidden_size=model.adapter.sender_dim,
                                           reader="the receiver's adapter (no projection)")
    rows = read_conversations(conversations, required=("subject", "split", "game") if benchmark == "alfworld" else ())
    if latent:
        check_messages(rows, messages, conversations, latents)
    inputs = {"receiver": receiver, "conversations": conversations, "latents": list(latents or []),
              "student": student if student_model is not None else None}  # stamp the resumable chunks
    # the training replicate (tables: mean ± std over replicates); absent in checkpoints saved by hand
    constants = {"train_seed": int(model.config_json.get("train", {}).get("seed", 0))}
    if benchmark == "alfworld":
        from interlat.evaluate.alfworld import evaluate_alfworld

        if games_dir is None:
            raise InterlatError("--games: required with --benchmark alfworld")
        df = evaluate_alfworld(model, tok, rows, messages, games_dir=games_dir, variant=variant, seeds=seeds, cfg=cfg,
                               max_steps=max_steps, batch_size=batch_size, work_dir=work_dir, out_path=out,
                               where=str(conversations), inputs=inputs, constants=constants, student=student_model)
        won = df.filter(pl.col("won"))
        return (f"{variant}: success {df['won'].mean() * 100:.2f}% over {df.height} episodes, mean steps "
                f"{won['steps'].mean() or float('nan'):.2f} / {df['steps'].mean():.2f} -> {out}")
    df = evaluate_math(model, tok, rows, messages, variant=variant, seeds=seeds,
                       cfg=cfg, batch_size=batch_size, work_dir=work_dir, out_path=out, student=student_model,
                       inputs=inputs, constants=constants)
    return f"{variant}: accuracy {df['correct'].mean() * 100:.2f}% over {df.height} answers -> {out}"
