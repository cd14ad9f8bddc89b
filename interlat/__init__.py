"""interlat: latent-space communication between LLM agents (arXiv 2511.09149).

Public entry points: `interlat.load_receiver` (a trained receiver, ready for every
evaluation variant) and `interlat.load_student` (a trained compression student).
"""

__version__ = "0.1.0"


def load_receiver(path, device="cpu", dtype=None):
    """Load a trained receiver checkpoint (base LM + adapter + interlat.json) in one call, on
    `device` in `dtype` (default: bf16 on GPUs, fp32 on CPUs; `interlat.runtime`)."""
    from interlat.model.receiver import load_receiver as _load

    return _load(path, device=device, dtype=dtype)


def load_student(path, device="cpu", dtype=None):
    """Load a trained compression student (LM + bridge + lat_bos + JSON config) in one call, on
    `device` in `dtype` (default: bf16 on GPUs, fp32 on CPUs)."""
    from interlat.compress import load_student as _load

    return _load(path, device=device, dtype=dtype)


__all__ = ["load_receiver", "load_student", "__version__"]
