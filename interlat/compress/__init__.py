"""Compression: a student that emits K latent vectors in place of the sender's plan (docs/method.md section 4).

Modules: `student` (the `Student` module and its K latent steps), `kv` (the step cache that
keeps working under gradient checkpointing), `data` (student prompts, batches, eval split),
`objective` (teacher paths A/D/B and the objective), `trainer` (training with early stopping and
resumable state), `checkpoint` (`save_student` / `load_student`).

Example::

    from interlat import load_student
    from interlat.compress.data import emit, teacher_prompt_ids

    student, tok = load_student("results/default/compress/math/K8")
    latents = emit(student, tok, [teacher_prompt_ids(tok, "Solve 3x+2=11.")], K=student.K)
"""

from interlat.compress.checkpoint import load_student, save_student
from interlat.compress.student import Student

__all__ = ["Student", "load_student", "save_student"]
