"""A student checkpoint: the LM in Hugging Face format, the bridge and start vector, a JSON config.

Layout of the folder (loadable by one call, `load_student(path)`):

- `config.json`, `model.safetensors` (or a sharded index), `generation_config.json`: the
  student LM (`save_pretrained`, safetensors);
- tokenizer files: the teacher's tokenizer, which the student shares (docs/method.md section 4);
- `student.safetensors`: `h2e.*`, `lat_bos` and, across hidden sizes, `proj.*`;
- `student.json`: K, the sizes, the prefix text and the training settings.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from interlat.compress.student import Student
from interlat.errors import InterlatError
from interlat.model.folders import check_student_dir, load_lm
from interlat.text.prompts import STUDENT_PREFIX
from interlat.text.tokenizer import load_tokenizer

CONFIG_NAME = "student.json"
WEIGHTS_NAME = "student.safetensors"


def bridge_state(student: Student) -> dict[str, torch.Tensor]:
    """The student's own tensors (everything but the LM)."""
    return {k: v.detach().contiguous().cpu() for k, v in student.state_dict().items() if not k.startswith("lm.")}


def save_student(student: Student, tokenizer, path: str | Path, K: int, extra: dict | None = None) -> None:
    """Write the checkpoint folder `path` (see the module docstring)."""
    path = Path(path)
    student.lm.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    save_file(bridge_state(student), path / WEIGHTS_NAME)
    cfg = {"K": K, "hidden_size": student.hidden_size, "out_dim": student.out_dim, "prefix": STUDENT_PREFIX, **(extra or {})}
    (path / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def load_student(path: str | Path, device: str = "cpu", dtype=None) -> tuple[Student, object]:
    """(student in eval mode, tokenizer) from a checkpoint folder, on `device` in `dtype` (default
    `interlat.runtime.compute_dtype(device)`); `student.K` is its trained K."""
    from interlat import runtime

    path = Path(path)
    cfg = check_student_dir(path)  # one line naming a missing, truncated or malformed file (and key)
    if cfg.get("prefix", STUDENT_PREFIX) != STUDENT_PREFIX:
        raise InterlatError(f"{path / CONFIG_NAME}: field \"prefix\": {cfg['prefix']!r}, expected {STUDENT_PREFIX!r}")
    tokenizer = load_tokenizer(path)
    lm = load_lm(path, torch.float32, "student checkpoint")
    student = Student(lm, cfg["out_dim"])
    state = load_file(path / WEIGHTS_NAME)
    own = bridge_state(student)
    if set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
        raise InterlatError(f"{path / WEIGHTS_NAME}: tensors {sorted(state)} do not fit a student of {cfg}")
    student.load_state_dict(state, strict=False)
    student = student.to(device, dtype or runtime.compute_dtype(device)).eval()
    student.K = cfg["K"]
    student.config_json = cfg
    return student, tokenizer


def student_for_variant(path, variant: str, receiver, tokenizer, device: str = "cpu") -> Student | None:
    """The student a `compressed_<K>` evaluation needs (None for other variants), checked against
    the variant's K, the receiver's adapter input size and the receiver's tokenizer."""
    from interlat.variants import COMPRESSED, parse

    K = parse(variant).k if parse(variant).kind == COMPRESSED else None
    if K is None:
        return None
    if path is None:
        raise InterlatError(f"--student: required with --variant {variant}")
    student, own = load_student(path, device=device)
    if student.K != K:
        raise InterlatError(f"{Path(path) / CONFIG_NAME}: field \"K\": {student.K}, expected {K} (--variant {variant})")
    if student.out_dim != receiver.adapter.sender_dim:
        raise InterlatError(
            f"{Path(path) / CONFIG_NAME}: field \"out_dim\": {student.out_dim}, the receiver's adapter expects {receiver.adapter.sender_dim}"
        )
    if own.get_vocab() != tokenizer.get_vocab():
        raise InterlatError(f"{path}: field \"tokenizer\": differs from the receiver's (the student must share it)")
    return student
