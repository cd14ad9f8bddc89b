"""Hugging Face Hub downloads into one shared cache, and the network policy of each command.

Paper-scale models and datasets are downloaded ONCE, by the `download` rule (a Snakemake
`localrules` job: it runs on the login node, where the internet is), into a cache keyed by
repository id and pinned commit::

    resources/hub/models/<org>/<name>/<revision>/        e.g. resources/hub/models/Qwen/Qwen2.5-7B/d149...96/
    resources/hub/datasets/<org>/<name>/<revision>/

Every run (`results/<run>/models/<model>`) links to that folder (`link_snapshot`), so a new run
name never downloads 15 GB again. A download is written to `<out>.partial` (which
`huggingface_hub` resumes after an interruption; Snakemake deletes only the declared output)
and renamed onto `<out>` when complete.

`source` is `hub` (the Hugging Face Hub; `HF_TOKEN` for gated models such as
meta-llama/Llama-3.1-8B) or a local Hugging Face cache folder (the layout of `$HF_HOME/hub`:
`models--<org>--<name>/snapshots/<revision>/`), e.g. a site's shared model store on a cluster
without internet; the same library call reads both (`local_files_only` for the folder).

Network: only `interlat download` and `interlat data` (hendrycks MATH, the ALFWorld release)
may reach the network; every other command runs with `HF_HUB_OFFLINE=1` and
`HF_DATASETS_OFFLINE=1`, whatever the environment or the image says (`network_env`).
"""

import fnmatch
import json
import os
import re
import shutil
from pathlib import Path

import click

from interlat.errors import InterlatError
from interlat.options import opt, out_option

#: commands that may reach the network (download rules); all others are offline (compute rules)
ONLINE_COMMANDS = frozenset({"download", "data"})
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
#: files of a model repository the pipeline needs (chat templates live in *.jinja in newer repos)
MODEL_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.jinja")
#: the value config/paper/*.yaml carries where a commit has not been pinned yet
PLACEHOLDER = "PIN_A_COMMIT_SHA"
MARKER = ".interlat-download.json"
_SHA = re.compile(r"[0-9a-f]{40}")


def network_env(command: str | None, environ=os.environ) -> bool:
    """Set the Hub's offline variables for `command` (online for download rules, offline for
    compute rules) in `environ`; returns whether the command is online."""
    online = command in ONLINE_COMMANDS
    for name in OFFLINE_VARIABLES:
        environ[name] = "0" if online else "1"
    return online


def revision_problem(repo_id: str, revision: str) -> str | None:
    """Why `revision` is not a pinned commit of `repo_id` (None when it is)."""
    if revision == PLACEHOLDER:
        return (f"{PLACEHOLDER!r} is a placeholder: set it to the 40-hex commit of {repo_id} you want "
                f"(the repository's 'Files and versions' > history on huggingface.co, or "
                f"`python -c \"import huggingface_hub as h; print(h.model_info('{repo_id}').sha)\"`)")
    if not _SHA.fullmatch(revision or ""):
        return f"{revision!r}: expected the 40-hex commit of {repo_id} (a branch or tag moves; pin a commit)"
    return None


def snapshot_dir(root: str | Path, repo_type: str, repo_id: str, revision: str) -> Path:
    """The shared cache folder of one pinned repository: <root>/<repo_type>s/<repo_id>/<revision>."""
    return Path(root) / f"{repo_type}s" / repo_id / revision


def is_complete(folder: Path, repo_id: str, revision: str) -> bool:
    """Whether `folder` is a finished download of (repo_id, revision)."""
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("repo_id") == repo_id and marker.get("revision") == revision


def _fetch(repo_id: str, revision: str, repo_type: str, source: str, into: Path) -> None:
    """Materialise the repository's files into `into` (the hub, or a local HF cache folder)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = list(MODEL_PATTERNS) if repo_type == "model" else None
    try:
        if source == "hub":
            snapshot_download(repo_id, repo_type=repo_type, revision=revision, local_dir=into,
                              allow_patterns=patterns)
            return
        found = Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision, cache_dir=source,
                                       local_files_only=True))
    except LocalEntryNotFoundError:
        cache = f"{repo_type}s--{repo_id.replace('/', '--')}"
        raise InterlatError(f"{source}: {cache}/snapshots/{revision}: not in this Hugging Face cache folder") from None
    except HfHubHTTPError as e:  # gated (401/403), unknown repository or revision (404)
        first = str(e).splitlines()[0]
        hint = " (gated model: accept its licence on huggingface.co and set HF_TOKEN; docs/cluster.md)" \
            if getattr(e.response, "status_code", None) in (401, 403) else ""
        raise InterlatError(f"{repo_id}@{revision}: {first}{hint}") from None
    into.mkdir(parents=True, exist_ok=True)
    for f in sorted(found.rglob("*")):
        rel = f.relative_to(found)
        if f.is_file() and (patterns is None or any(fnmatch.fnmatch(rel.name, p) for p in patterns)):
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, into / rel)  # follows the cache's symlinks into blobs/


def download(*, repo_id: str, revision: str, repo_type: str = "model", source: str = "hub", out: Path) -> str:
    """Download (repo_id, revision) into `out` once; a finished `out` is reused as it is."""
    out = Path(out)
    problem = revision_problem(repo_id, revision)
    if problem:
        raise InterlatError(f"--revision: {problem}")
    if is_complete(out, repo_id, revision):
        return f"{repo_id}@{revision}: already in {out}"
    if out.exists():
        raise InterlatError(f"{out}: exists but is not a finished download of {repo_id}@{revision}; remove it")
    if source != "hub" and not Path(source).is_dir():
        raise InterlatError(f"--source: {source}: no such folder (expected 'hub' or a Hugging Face cache folder)")
    partial = out.with_name(out.name + ".partial")
    _fetch(repo_id, revision, repo_type, source, partial)
    if repo_type == "model" and not (partial / "config.json").is_file():
        raise InterlatError(f"{repo_id}@{revision}: file \"config.json\": missing from the download")
    files = sorted(str(p.relative_to(partial)) for p in partial.rglob("*") if p.is_file() and ".cache" not in p.parts)
    shutil.rmtree(partial / ".cache", ignore_errors=True)  # huggingface_hub's resume metadata
    (partial / MARKER).write_text(json.dumps({"repo_id": repo_id, "revision": revision, "repo_type": repo_type,
                                              "source": source, "files": files}, indent=1))
    os.replace(partial, out)
    return f"{repo_id}@{revision}: {len(files)} files -> {out}"


def link_snapshot(snapshot: Path, out: Path) -> int:
    """Make `out` a folder of relative symlinks to the files of a downloaded `snapshot` (written
    atomically); returns the number of files linked. The weights stay in the shared cache."""
    from interlat.atomic import atomic_dir

    snapshot = Path(snapshot)
    if not (snapshot / MARKER).is_file():
        raise InterlatError(f"{snapshot}: file \"{MARKER}\": missing (not a finished `interlat download`)")
    files = [p for p in sorted(snapshot.rglob("*")) if p.is_file() and p.name != MARKER]
    with atomic_dir(out) as tmp:
        for f in files:
            link = tmp / f.relative_to(snapshot)
            link.parent.mkdir(parents=True, exist_ok=True)
            # relative to the final folder, so the link survives the rename and a moved checkout
            final_parent = Path(out) / f.relative_to(snapshot).parent
            os.symlink(os.path.relpath(os.path.abspath(f), os.path.abspath(final_parent)), link)
    return len(files)


@click.command(context_settings=dict(help_option_names=["-h", "--help"]))
@opt("--repo-id", required=True, help="Hugging Face repository id, e.g. Qwen/Qwen2.5-7B.")
@opt("--revision", required=True, help="The repository's commit to download (40 hex digits; config models.<model>.revision).")
@opt("--repo-type", type=click.Choice(["model", "dataset"]), default="model", help="Repository kind.")
@opt("--source", default="hub", help="'hub' (the Hugging Face Hub; HF_TOKEN for gated models) or a local Hugging Face cache folder ($HF_HOME/hub layout).")
@out_option("Output folder: resources/hub/<repo-type>s/<repo-id>/<revision> (shared by every run).")
def download_command(repo_id, revision, repo_type, source, out):
    """Download a pinned model or dataset into the shared cache (once for all runs).

    `interlat models --snapshot <that folder> --out results/default/models/sender` then links
    it into a run.

    \b
    Example: interlat download --repo-id Qwen/Qwen2.5-7B \\
                 --revision d149729398750b98c0af14eb82c78cfe92750796 \\
                 --out resources/hub/models/Qwen/Qwen2.5-7B/d149729398750b98c0af14eb82c78cfe92750796
    """
    click.echo(download(repo_id=repo_id, revision=revision, repo_type=repo_type, source=source, out=out), err=True)


download_command.name = "download"
