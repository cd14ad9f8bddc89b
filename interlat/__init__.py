"""interlat: latent-space communication between LLM agents (arXiv 2511.09149).

Public entry points: `interlat.load_receiver` (a trained receiver, ready for every
evaluation variant) and `interlat.load_student` (a trained compression student).
"""

__version__ = "0.1.0"


def load_receiver(path, device="cpu"):
    """Load a trained receiver checkpoint (base LM + adapter + interlat.json) in one call."""
    from interlat.model.receiver import load_receiver as _load

    return _load(path, device=device)


def load_student(path, device="cpu"):
    """Load a trained compression student (LM + bridge + lat_bos + JSON config) in one call."""
    from interlat.compress import load_student as _load

    return _load(path, device=device)


__all__ = ["load_receiver", "load_student", "__version__"]
