"""P4: Table 3's latency measurement on random-weight models at a chosen shape (no pipeline run needed).

The timing itself is the latency stage's (`interlat.evaluate.latency.measure`); this module only
builds a sender, a receiver and students of random weights at a named shape.
"""

import torch

from interlat.evaluate.latency import TaskPrompts

SHAPES = {
    "default": {
        "hidden_size": 128,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 2,
        "intermediate_size": 256,
        "vocab_size": 72,
    },
    "qwen2.5-0.5b": {
        "hidden_size": 896,
        "num_layers": 24,
        "num_heads": 14,
        "num_kv_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 151936,
    },
}
#: Tokens of the student's prefix and of the chat-template tail after the marker, in random workloads.
RANDOM_PREFIX_TOKENS = 10
RANDOM_TAIL_TOKENS = 5


def random_setup(
    shape: str,
    layers: int,
    n_tasks: int,
    prompt_tokens: int,
    n_tokens: int,
    ks: list[int],
    seed: int,
    device,
):
    """Random-weight sender, receiver and students of one shape, and random prompts."""
    from interlat.compress.student import Student
    from interlat.model.adapter import LatentAdapter
    from interlat.model.build import build_model
    from interlat.model.receiver import Receiver
    from interlat.text.prompts import BOP, EOP, MARKER

    spec = {**SHAPES[shape], **({"num_layers": layers} if layers else {})}
    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32

    def lm(s):
        model = build_model(
            "qwen2", pad_token_id=0, eos_token_id=1, max_positions=4096, seed=s, **spec
        )
        return model.to(device=device, dtype=dtype).eval()

    # One set of LM weights serves as sender, receiver base and student LM: with random weights
    # the times depend only on the shape, and a 0.5B shape then needs 2 GB instead of 6.
    sender = lm(seed)
    d = spec["hidden_size"]
    ids = {BOP: 1, EOP: 2, MARKER: 3}
    receiver = Receiver(sender, LatentAdapter(d, d), ids, prepended_length=max(n_tokens, 1))
    receiver = receiver.to(device=device, dtype=dtype).eval()
    students = {k: Student(sender, d).to(device=device, dtype=dtype).eval() for k in ks}
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for _ in range(n_tasks):
        body = torch.randint(4, spec["vocab_size"], (prompt_tokens,), generator=g).tolist()
        receiver_ids = body + [ids[MARKER]] + body[:RANDOM_TAIL_TOKENS]
        student_ids = body[:RANDOM_PREFIX_TOKENS] + body
        tasks.append(TaskPrompts(body, receiver_ids, prompt_tokens, student_ids, n_tokens))
    return sender, receiver, students, tasks, spec


def run_random_latency(*, shape: str, layers: int, prompt_tokens: int, n_tokens: int, ks: list[int],
                       variants: list[str], tasks: int, repeats: int, warmup: int, seed: int, out) -> str:
    """P4: the latency stage's timing on random-weight models of one shape; writes `out`."""
    from interlat.evaluate.latency import check_variants, write_latency

    check_variants(variants)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    snd, rec, stu, work, spec = random_setup(shape, layers, tasks, prompt_tokens, n_tokens, list(ks), seed, device)
    setup = (f"random {shape} shape ({spec['num_layers']} layers, hidden {spec['hidden_size']}, "
             f"vocab {spec['vocab_size']}), prompt {prompt_tokens} tokens, N={n_tokens}")
    return write_latency(work, sender=snd, receiver=rec, students=stu, variants=variants, repeats=repeats,
                         warmup=warmup, seed=seed, setup=setup, out=out)
