"""The variant registry and the message perturbations (docs/method.md sections 4-5).

`parse(name)` is the one place a variant name is read: it gives a `Variant` with the
message kind (`KINDS`), the receiver evaluated (`RECEIVERS`: its training mode and base)
and the K or p of `compressed_<K>`, `first_<K>` and `truncated_<p>`. The workflow, the
CLI, the evaluation, latency and the tables all classify variants through it.

`perturb(name, H, seed=...)` turns the raw message H [T, D] of one task into the
message the receiver gets. With mu = row mean, X = H - mu and S = X / sqrt(T - 1):

| name | result |
|---|---|
| `interlat` | H |
| `cross_task` | `other`, the message of a different task |
| `covnoise_0.5`, `covnoise_1.0` | H + a * (Z S), Z ~ N(0, I) of shape [T, T], a = 0.5 / 1.0 |
| `whitenoise` | H + sigma * eps, eps ~ N(0, I) [T, D], sigma^2 = mean of diag(S^T S) |
| `covgauss_0mu` | Z S: rows i.i.d. N(0, S^T S), the covariance kept and the mean dropped |
| `covgauss_mu` | mu + Z S |
| `randomrot` | mu + sqrt(T - 1) * B Q B^T S (see below) |
| `truncated_<p>` | the first round(p / 100 * T) rows (p in percent, 0..100, halves round up) |
| `first_<K>` | the first K rows (all T if K > T): the untrained K-latent baseline |

The variants that need no model (`text`, `no_comm`, `cross_family`, `compressed_K`,
...) are handled by the evaluation, not here.

randomrot: B [T, T-1] is an orthonormal basis of the centered subspace 1^perp (the
last T-1 columns of the Householder reflection that maps 1/sqrt(T) to e_1) and Q a
Haar-random orthogonal (T-1) x (T-1) matrix (QR of a Gaussian matrix, signs fixed by
diag(R)). Since 1^T S = 0, S = B C with C = B^T S, and the result's centered part
S' = B Q C satisfies 1^T S' = 0 (row mean exactly mu) and S'^T S' = C^T C = S^T S
(sample covariance exactly kept). In the table's notation, with the thin SVD
S = U Sigma V^T, S' = (B Q B^T U) Sigma V^T: the left singular vectors are rotated by
a Haar rotation of the whole centered subspace, so U Q stays orthogonal to 1 (a
rotation of the thin-SVD U alone would mix in its null column, which is not
orthogonal to 1 when D >= T, and move the mean). The result is a uniform draw among
all [T, D] messages with H's row mean and sample covariance.

Short messages: T = 0 is returned unchanged (as an empty copy) by every variant but
`cross_task`. T = 1 has S = 0 (not NaN), so `covnoise_*`, `whitenoise`,
`covgauss_mu` and `randomrot` return H unchanged and `covgauss_0mu` returns zeros.
T = 2 has no special case: S has rank <= 1, so `randomrot` either keeps H or swaps
its two rows (Q = +-1).

Randomness comes from a CPU `torch.Generator` seeded with `seed`, so a (name, H,
seed) triple draws the same noise on every device; the draws are moved to H's device
and the arithmetic is float64 there. The result has H's dtype and device.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from interlat.errors import InterlatError

if TYPE_CHECKING:  # torch is imported where used: the workflow reads the registry without it
    import torch

# --------------------------------------------------------------------------- the registry
#: How a variant's message reaches the receiver.
LATENT = "latent"  # the sender's message H, possibly perturbed (`perturb`), through the adapter
TEXT = "text"  # the plan text between <bop> and <eop>
EMPTY = "empty"  # <bop><eop> alone
PLAIN = "plain"  # no plan sentence at all (the receiver trained without plans)
COMPRESSED = "compressed"  # a compression student's K latents (docs/method.md section 4)
BASELINE = "baseline"  # an untrained compression baseline: a prefix of H (truncated_<p>, first_<K>)
KINDS = (LATENT, TEXT, EMPTY, PLAIN, COMPRESSED, BASELINE)

#: receiver -> (training mode, base model); base None: config `train.receiver_base`, the
#: sender's family (the paper's sender and receiver share one base LM)
RECEIVERS = {
    "interlat": ("interlat", None),
    "cot_full": ("text", None),
    "no_cot": ("none", None),
    "cross_family": ("interlat", "llama"),
}


@dataclass(frozen=True)
class Variant:
    """One evaluation variant: its message kind, its receiver (and that receiver's training
    mode), and the K or p of the parametric families (None elsewhere)."""

    name: str
    kind: str
    receiver: str
    train_mode: str
    k: int | None = None
    p: Fraction | None = None

    @property
    def is_latent(self) -> bool:
        """Whether the receiver gets latents (through its adapter), not text or nothing."""
        return self.kind in (LATENT, COMPRESSED, BASELINE)

    @property
    def perturbation(self) -> str | None:
        """The `perturb` name that makes this variant's message from H (None: not made from H)."""
        if self.kind not in (LATENT, BASELINE):
            return None
        return "interlat" if self.receiver == "cross_family" else self.name

    @property
    def family(self) -> str:
        """The parametric family (`compressed_<K>`, `first_<K>`, `truncated_<p>`) or the name."""
        return next((f for f, (pat, _) in FAMILIES.items() if pat.fullmatch(self.name)), self.name)

    def message_rows(self, T: int) -> int:
        """Rows of the message made from a T-row H (LATENT: all; BASELINE: the prefix)."""
        if self.kind == LATENT:
            return T
        if self.kind == BASELINE:
            return min(self.k, T) if self.k is not None else truncated_length(self.p, T)
        raise ValueError(f"{self.name!r}: not a message made from H")


#: fixed names -> (kind, receiver), in the order of docs/method.md section 5.1
FIXED = {
    "interlat": (LATENT, "interlat"),
    "text": (TEXT, "interlat"),
    "no_comm": (EMPTY, "interlat"),
    "cot_full": (TEXT, "cot_full"),
    "no_cot": (PLAIN, "no_cot"),
    "cross_task": (LATENT, "interlat"),
    "covnoise_0.5": (LATENT, "interlat"),
    "covnoise_1.0": (LATENT, "interlat"),
    "whitenoise": (LATENT, "interlat"),
    "covgauss_0mu": (LATENT, "interlat"),
    "covgauss_mu": (LATENT, "interlat"),
    "randomrot": (LATENT, "interlat"),
    "cross_family": (LATENT, "cross_family"),
}
#: parametric families: display name -> (full-match regex, kind)
FAMILIES = {
    "compressed_<K>": (re.compile(r"compressed_([1-9]\d*)"), COMPRESSED),
    "truncated_<p>": (re.compile(r"truncated_(\d+(?:\.\d+)?)"), BASELINE),
    "first_<K>": (re.compile(r"first_([1-9]\d*)"), BASELINE),
}
VALID = ", ".join([*FIXED, *FAMILIES]) + " (K >= 1, p in 0..100)"


def parse(name: str) -> Variant:
    """The registry entry of a variant name; InterlatError (one line, naming it) if unknown."""
    if name in FIXED:
        kind, receiver = FIXED[name]
        return Variant(name, kind, receiver, RECEIVERS[receiver][0])
    for family, (pattern, kind) in FAMILIES.items():
        match = pattern.fullmatch(str(name))
        if match is None:
            continue
        value = match.group(1)
        if family == "truncated_<p>":
            if Fraction(value) > 100:
                break
            return Variant(name, kind, "interlat", "interlat", p=Fraction(value))
        return Variant(name, kind, "interlat", "interlat", k=int(value))
    raise InterlatError(f"unknown variant {name!r}; valid: {VALID}")


def is_variant(name: str) -> bool:
    """Whether `parse(name)` succeeds."""
    try:
        parse(name)
    except InterlatError:
        return False
    return True


def receivers_of(names) -> list[str]:
    """Receivers the variants `names` need, sorted (always the interlat receiver)."""
    return sorted({"interlat"} | {parse(n).receiver for n in names})


def variants_for(config: dict, benchmark: str) -> list[str]:
    """The variants a run evaluates on `benchmark`: `evaluate.<benchmark>.variants` where the
    config sets it (e.g. fewer ALFWorld episodes than MATH tasks), else `evaluate.variants`."""
    own = (config["evaluate"].get(benchmark) or {}).get("variants")
    return list(own) if own else list(config["evaluate"]["variants"])


# --------------------------------------------------------------------------- perturbations
#: Fixed variant names `perturb` handles; the parametric families are in `MESSAGE_VARIANT_PATTERNS`.
MESSAGE_VARIANTS = tuple(
    n for n, (kind, receiver) in FIXED.items() if kind == LATENT and receiver == "interlat"
)
#: Parametric families `perturb` handles: display name -> full-match regex.
MESSAGE_VARIANT_PATTERNS = {f: pat for f, (pat, kind) in FAMILIES.items() if kind == BASELINE}
_COVNOISE_SCALE = {"covnoise_0.5": 0.5, "covnoise_1.0": 1.0}


def is_message_variant(name: str) -> bool:
    """Whether `perturb` handles `name` (a fixed name, truncated_<p> with 0<=p<=100, or first_<K>)."""
    return is_variant(name) and parse(name).perturbation == name


def _valid_names() -> str:
    return ", ".join([*MESSAGE_VARIANTS, *MESSAGE_VARIANT_PATTERNS]) + " (p in 0..100, K >= 1)"


def truncated_length(percent: Fraction | float | int, T: int) -> int:
    """round(percent / 100 * T) with halves rounded up, computed exactly."""
    return math.floor(Fraction(percent) * T / 100 + Fraction(1, 2))


def _centered(H64: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu [1, D], S [T, D]) with S = (H - mu) / sqrt(T - 1), S = 0 for T = 1."""
    import torch

    mu = H64.mean(dim=0, keepdim=True)
    T = H64.shape[0]
    S = (H64 - mu) / math.sqrt(T - 1) if T > 1 else torch.zeros_like(H64)
    return mu, S


def _centered_basis(T: int, device: torch.device) -> torch.Tensor:
    """Orthonormal basis [T, T-1] of the vectors orthogonal to the all-ones vector."""
    import torch

    v = torch.full((T, 1), 1.0 / math.sqrt(T), dtype=torch.float64, device=device)
    v[0, 0] -= 1.0
    householder = torch.eye(T, dtype=torch.float64, device=device) - 2.0 * (v @ v.T) / (v.T @ v)
    return householder[:, 1:]


def _normal(
    shape: tuple[int, ...], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Standard normal float64 draws from the CPU generator, moved to `device`."""
    import torch

    return torch.randn(shape, dtype=torch.float64, generator=generator).to(device)


def haar_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal n x n float64 matrix (QR of a Gaussian, signs from diag(R))."""
    import torch

    Z = torch.randn(n, n, dtype=torch.float64, generator=generator)
    Q, R = torch.linalg.qr(Z)
    signs = torch.sign(torch.diagonal(R))
    signs[signs == 0] = 1.0
    return Q * signs


def _randomrot(H64: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    T = H64.shape[0]
    mu, S = _centered(H64)
    if T < 2:
        return H64
    B = _centered_basis(T, H64.device)
    Q = haar_orthogonal(T - 1, generator).to(H64.device)
    return mu + math.sqrt(T - 1) * (B @ (Q @ (B.T @ S)))


def _covariance_variant(name: str, H64: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    T, D = H64.shape
    mu, S = _centered(H64)
    if name == "whitenoise":
        sigma = S.square().sum(dim=0).mean().sqrt()
        return H64 + sigma * _normal((T, D), generator, H64.device)
    ZS = _normal((T, T), generator, H64.device) @ S
    if name in _COVNOISE_SCALE:
        return H64 + _COVNOISE_SCALE[name] * ZS
    if name == "covgauss_0mu":
        return ZS
    return mu + ZS  # covgauss_mu


def _cross_task(H: torch.Tensor, other: torch.Tensor | None) -> torch.Tensor:
    import torch

    if other is None:
        raise ValueError("variant 'cross_task' needs `other`, the message of a different task")
    if other is H:
        raise ValueError("variant 'cross_task': `other` is the task's own message")
    if other.dim() != 2 or other.shape[1] != H.shape[1]:
        raise ValueError(
            f"variant 'cross_task': `other` must be [T', {H.shape[1]}], got {tuple(other.shape)}"
        )
    if other.shape == H.shape and torch.equal(other.to(H.device, H.dtype), H):
        raise ValueError("variant 'cross_task': `other` equals the task's own message")
    return other.to(device=H.device, dtype=H.dtype)


def perturb(
    name: str, H: torch.Tensor, *, seed: int, other: torch.Tensor | None = None
) -> torch.Tensor:
    """The message variant `name` of the raw message H [T, D] (module docstring, docs/method.md section 5).

    `seed` seeds every random draw (a CPU generator; seed per task and per run);
    `other` is the other task's message, used only (and required) by `cross_task`.
    Raises ValueError for an unknown name, a non-[T, D] H, or a bad `other`.
    """
    import torch

    if not is_message_variant(name):
        raise ValueError(f"unknown message variant {name!r}; valid: {_valid_names()}")
    if H.dim() != 2 or not H.is_floating_point():
        raise ValueError(
            f"message must be a floating [T, D] tensor, got {H.dtype} {tuple(H.shape)}"
        )
    if name == "interlat":
        return H
    if name == "cross_task":
        return _cross_task(H, other)
    variant = parse(name)
    if variant.kind == BASELINE:
        return H[: variant.message_rows(H.shape[0])]
    if H.shape[0] == 0:
        return H.clone()
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    H64 = H.detach().to(torch.float64)
    if name == "randomrot":
        out = _randomrot(H64, generator)
    else:
        out = _covariance_variant(name, H64, generator)
    return out.to(device=H.device, dtype=H.dtype)
