"""Software versions of a run, in the manner of nf-core's `versions.yml`.

`interlat versions --out results/<run>/versions.yml` (the workflow's `versions` rule) records
what computed the results: interlat, Python, the platform, torch and its CUDA/cuDNN builds,
Snakemake, the SHA-256 of requirements.lock when the repository's lock is at hand, and the
version of every installed distribution. The report shows the file next to the run config.
"""

import hashlib
import importlib.metadata
import platform
import sys
from pathlib import Path

import click

#: the versions that decide results, listed first (the rest are under `packages`)
KEY_PACKAGES = ("torch", "transformers", "tokenizers", "math-verify", "sympy", "latex2sympy2_extended",
                "numpy", "polars", "pyarrow", "deepspeed", "alfworld", "textworld", "snakemake")
LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def versions(lock: Path | None = LOCK) -> dict:
    """{"interlat": {...key versions...}, "packages": {name: version, ...}} for this environment."""
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[_normal(name)] = dist.version
    key = {"interlat": _version("interlat"), "python": platform.python_version(),
           "platform": platform.platform(), "executable": sys.executable}
    for name in KEY_PACKAGES:
        key[_normal(name)] = packages.get(_normal(name))
    if "torch" in sys.modules or key["torch"]:
        try:
            import torch

            key["torch"] = str(torch.__version__)  # the build's local tag too (+cpu, +cu130); PyPI's metadata drops it
            key["torch_cuda"] = torch.version.cuda
            key["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        except ImportError:  # pragma: no cover - torch is a core dependency
            pass
    if lock is not None and Path(lock).is_file():
        key["requirements_lock_sha256"] = hashlib.sha256(Path(lock).read_bytes()).hexdigest()
    return {"interlat": key, "packages": dict(sorted(packages.items()))}


@click.command("versions")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML here (atomically) instead of stdout, e.g. results/default/versions.yml.")
def versions_command(out: Path | None) -> None:
    """Software versions of this environment as YAML (nf-core versions.yml style).

    \b
    Example: interlat versions --out results/default/versions.yml
    """
    import yaml

    text = yaml.safe_dump(versions(), sort_keys=False, default_flow_style=False)
    if out is None:
        click.echo(text, nl=False)
        return
    from interlat.atomic import write_text

    write_text(out, text)
    click.echo(f"{out}: {len(text.splitlines())} lines", err=True)
