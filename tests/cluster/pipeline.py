"""Run the real workflow on config/test.yaml in a fresh copy of the repository.

Jobs run with cwd = the copy, which is what the stand-in apptainer bind-mounts
into the container, so every input and output is inside it (no symlinks out).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: the container and SLURM runs' configuration: config/test.yaml with fewer jobs (tests/cluster/small.yaml)
CONFIGS = ("config/test.yaml", "tests/cluster/small.yaml")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


def workflow_missing() -> str | None:
    """Why the real pipeline cannot run yet, or None."""
    for rel in ("workflow/Snakefile", "config/test.yaml"):
        if not (REPO / rel).exists():
            return f"{rel} does not exist yet"
    return None


def copy_repo(dest: Path) -> Path:
    """Tracked and untracked-but-not-ignored files of the repository, copied to `dest`."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


@dataclass
class Run:
    workdir: Path
    cmd: list[str]
    returncode: int
    output: str
    seconds: float

    def check(self) -> Run:
        if self.returncode != 0:
            raise AssertionError(
                f"{' '.join(self.cmd)} failed (rc {self.returncode}) in {self.workdir}:\n"
                f"{self.output[-8000:]}"
            )
        return self

    def slurm_job_ids(self) -> dict[str, str]:
        """{snakemake job id: SLURM job id} from the log."""
        return {m.group(1): m.group(2) for m in SUBMITTED.finditer(self.output)}


def snakemake(
    workdir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 3600
) -> Run:
    """`snakemake ARGS` in `workdir` with this interpreter's environment first on PATH."""
    env = dict(env if env is not None else os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(BIN / "snakemake"), *args]
    start = time.monotonic()
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    run = Run(workdir, cmd, proc.returncode, proc.stdout, round(time.monotonic() - start, 1))
    (Path(workdir) / "snakemake-run.log").write_text(proc.stdout)
    return run


def result_files(workdir: Path) -> dict[str, str]:
    """{path under results/: sha256} for every file the run produced."""
    root = Path(workdir) / "results"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


#: Columns that hold wall-clock measurements, the only values two runs may differ in.
TIMING_COLUMNS = {"seconds", "tokens_per_s"}
#: Stages whose outputs are timings through and through (`interlat bench latency`):
#: compared by presence only.
TIMING_STAGES = {"latency"}
#: Table 3 carries the latency columns next to accuracy (and its plot draws them): compared
#: by presence only as well; its accuracy columns come from evaluate/ records compared above.
TIMING_FILES = {"table3_compression.csv", "table3_compression.md", "compression.png",
                "table3_compression_alfworld.csv", "table3_compression_alfworld.md", "compression_alfworld.png"}


def differing_results(a: Path, b: Path) -> list[str]:
    """Files under results/ that differ between two runs beyond their timing columns
    (plus files present in only one run)."""
    import polars as pl

    ours, theirs = result_files(a), result_files(b)
    problems = sorted(set(ours) ^ set(theirs))
    for rel in sorted(set(ours) & set(theirs)):
        if ours[rel] == theirs[rel] or TIMING_STAGES & set(Path(rel).parts) or Path(rel).name in TIMING_FILES:
            continue
        reader = {".csv": pl.read_csv, ".parquet": pl.read_parquet}.get(Path(rel).suffix)
        if reader is None:
            problems.append(rel)
            continue
        x, y = (reader(Path(root) / "results" / rel) for root in (a, b))
        keep = [c for c in x.columns if c not in TIMING_COLUMNS]
        if x.columns != y.columns or not x.select(keep).equals(y.select(keep)):
            problems.append(rel)
    return problems


def job_logs(workdir: Path) -> list[str]:
    """Rule log files (logs/<run>/<rule>/...), i.e. one per executed job."""
    root = Path(workdir) / "logs"
    return sorted(
        str(p.relative_to(workdir))
        for p in root.rglob("*.log")
        if p.is_file() and "slurm" not in p.relative_to(root).parts
    )


_CONTAINER_RUNS: dict[str, Run] = {}


def local_container_run(image, workdir_factory) -> Run:
    """The test-config pipeline with `--use-apptainer --cores 2` (stand-in apptainer),
    run once per image and session: tests/test_containers.py checks it and
    tests/test_slurm.py compares the SLURM run to it."""
    from tests.cluster.images import standin_env

    if image.image_id not in _CONTAINER_RUNS:
        work = copy_repo(workdir_factory.mktemp("pipeline-local"))
        env = standin_env(workdir_factory.mktemp("standin-bin"))
        _CONTAINER_RUNS[image.image_id] = snakemake(
            work,
            "--use-apptainer",
            "--cores",
            "2",
            "--configfile",
            *CONFIGS,
            "--config",
            f"container={image.uri}",
            env=env,
        )
    return _CONTAINER_RUNS[image.image_id]
