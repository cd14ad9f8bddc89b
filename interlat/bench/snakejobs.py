"""The jobs of a Snakemake workflow's DAG: each job's rule, wildcards, benchmark file, logs and dependencies.

`snakemake --dag` prints the DAG as DOT, but it labels a job with its rule and only the wildcards
the job adds to its inputs' (Snakemake's `DAG.new_wildcards`): the evaluation of replicate 0 and of
replicate 1 both read `evaluate\\nvariant: interlat`, so a DOT node cannot be tied to its benchmark
file. This module builds the same DAG through Snakemake's API in the workflow's folder, the way
`snakemake --dag` does (nothing runs, the lock is only checked), and reads every job's full
wildcards and its `benchmark:` and `log:` paths from Snakemake itself: no path is guessed.
"""

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from interlat.errors import InterlatError


@dataclass(frozen=True)
class DagJob:
    """One job of the DAG; paths are absolute, `deps` are the `jobid`s of the jobs it needs."""

    jobid: int
    rule: str
    wildcards: tuple[tuple[str, str], ...]
    benchmark: Path | None
    logs: tuple[Path, ...]
    deps: tuple[int, ...]

    @property
    def name(self) -> str:
        """The rule and its wildcards, e.g. `train benchmark=math replicate=0 receiver=interlat`."""
        return " ".join([self.rule, *(f"{k}={v}" for k, v in self.wildcards)])


def parse_config_entries(entries: tuple[str, ...]) -> dict:
    """`--config KEY=VALUE` entries parsed the way `snakemake --config` parses them."""
    from snakemake.cli import parse_config

    try:
        return parse_config(list(entries))
    except ValueError as e:
        raise InterlatError(f"--config {' '.join(entries)}: {e}") from None


def dag_jobs(workflow_dir: str | Path, snakefile: str | Path | None = None,
             configfiles: tuple[str, ...] = (), config: dict | None = None) -> list[DagJob]:
    """Every job of the workflow's DAG in `workflow_dir` (finished ones included), as `snakemake --dag` sees it
    with these `--configfile`s and `--config` values."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (
        ConfigSettings,
        DAGSettings,
        OutputSettings,
        Quietness,
        ResourceSettings,
    )
    from snakemake_interface_common.exceptions import ApiError, WorkflowError

    workdir = Path(workflow_dir).resolve()
    if not workdir.is_dir():
        raise InterlatError(f"{workflow_dir}: no such folder (--workflow-dir)")
    if snakefile is None:
        snakefile = next((workdir / p for p in ("workflow/Snakefile", "Snakefile", "workflow/snakefile", "snakefile")
                          if (workdir / p).is_file()), None)
        if snakefile is None:
            raise InterlatError(f"{workflow_dir}: no Snakefile (tried workflow/Snakefile and Snakefile)")
    snakefile = Path(snakefile).resolve()
    settings = ConfigSettings(config=config or {}, configfiles=[Path(c).resolve() for c in configfiles])
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
            workflow_api = api.workflow(resource_settings=ResourceSettings(cores=1), config_settings=settings,
                                        snakefile=snakefile, workdir=workdir)
            try:
                workflow_api.dag(DAGSettings())  # loads the Snakefile: its own errors are the user's input
            except (WorkflowError, ApiError):
                raise
            except Exception as e:
                raise InterlatError(f"{snakefile}: Snakemake could not load the workflow: {type(e).__name__}: {e}") from e
            workflow = workflow_api._workflow  # the API offers the DAG only as printed text (see the module doc)
            workflow._prepare_dag(forceall=False, ignore_incomplete=True, lock_warn_only=True)
            workflow._build_dag()
            return _jobs(workflow.dag, workdir)
    except (WorkflowError, ApiError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InterlatError(f"{snakefile}: Snakemake could not build the DAG: {first}") from None


def _jobs(dag, workdir: Path) -> list[DagJob]:
    """The DAG's jobs with ids in Snakemake's own job order, paths made absolute against `workdir`."""
    jobs = list(dag.jobs)
    ids = {job: i for i, job in enumerate(jobs)}
    out = []
    for job in jobs:
        bench = job.benchmark
        out.append(DagJob(
            jobid=ids[job],
            rule=job.rule.name,
            wildcards=tuple((str(k), str(v)) for k, v in job.wildcards.items()),
            benchmark=(workdir / str(bench)).resolve() if bench else None,
            logs=tuple((workdir / str(p)).resolve() for p in job.log),
            deps=tuple(sorted(ids[d] for d in dag.dependencies[job])),
        ))  # fmt: skip
    return out
