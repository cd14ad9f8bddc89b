"""P5b: where a finished Snakemake run's time went, from its benchmark files, its logs and its job DAG.

Each job's `benchmark:` TSV (one row: `s` wall seconds, `cpu_time` CPU-seconds, `max_rss` MB, ...)
gives its cost. Its end is the later of its logs' and its TSV's modification times: a log is last
written when the job last printed (a command that prints nothing leaves the log's time at its
start), and Snakemake writes the TSV as the job ends. Its start is `end - s`. From these: per rule
the jobs, summed wall and CPU seconds and the largest RSS; the pipeline's wall time (first start to
last end); and the critical path, the chain of dependent jobs with the largest summed wall time
(longest path in the DAG, jobs weighted by `s`), which bounds the wall time however many cores run.
"""

import csv
import graphlib
import math
from dataclasses import dataclass
from pathlib import Path

from interlat.bench.snakejobs import DagJob
from interlat.errors import InterlatError

#: Columns every benchmark TSV must have (Snakemake writes these and more).
NEEDED = ("s", "max_rss", "cpu_time")
RULE_COLUMNS = ["rule", "jobs", "wall_s", "cpu_s", "max_rss_mb", "critical_path_s", "unsampled_jobs"]
PATH_COLUMNS = ["step", "job", "wall_s", "start_s", "end_s"]


@dataclass(frozen=True)
class JobCost:
    """A job's measured cost; times in seconds, `start` and `end` as Unix times."""

    job: DagJob
    wall_s: float
    cpu_s: float | None  # None: Snakemake wrote NA (the job ended before its first sample)
    max_rss_mb: float | None
    end: float

    @property
    def start(self) -> float:
        return self.end - self.wall_s


def _number(path: Path, row: int, field: str, text: str, allow_na: bool) -> float | None:
    if allow_na and text == "NA":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InterlatError(f'{path}: row {row}: field "{field}": {text!r}, expected a number >= 0'
                            + (' or "NA"' if allow_na else ""))
    return value


def read_benchmark(path: Path) -> tuple[float, float | None, float | None]:
    """(wall s, CPU s or None, max RSS MB or None) from a one-row Snakemake benchmark TSV."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
    except FileNotFoundError:
        raise InterlatError(f"{path}: missing (no benchmark file)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InterlatError(f"{path}: unreadable: {e}") from None
    if not rows:
        raise InterlatError(f"{path}: empty, expected a header and one row")
    header = rows[0]
    for field in NEEDED:
        if field not in header:
            raise InterlatError(f'{path}: row 1 (header): no field "{field}", expected Snakemake\'s benchmark columns')
    data = [r for r in rows[1:] if r]
    if len(data) != 1:
        raise InterlatError(f"{path}: {len(data)} data rows, expected 1 (benchmark repeats are not supported)")
    if len(data[0]) != len(header):
        raise InterlatError(f"{path}: row 2: {len(data[0])} fields, expected {len(header)} as in the header")
    cell = dict(zip(header, data[0], strict=True))
    return (
        _number(path, 2, "s", cell["s"], allow_na=False),
        _number(path, 2, "cpu_time", cell["cpu_time"], allow_na=True),
        _number(path, 2, "max_rss", cell["max_rss"], allow_na=True),
    )


def _under(path: Path, folder: Path) -> bool:
    return path.is_relative_to(folder)


def job_costs(jobs: list[DagJob], benchmarks: Path, logs: Path) -> tuple[list[JobCost], list[DagJob]]:
    """The cost of every job whose benchmark file lies under `benchmarks`, and the jobs left out (no
    `benchmark:` directive, such as the target rule, or a benchmark outside the folder)."""
    benchmarks, logs = benchmarks.resolve(), logs.resolve()
    for folder, option in ((benchmarks, "--benchmarks"), (logs, "--logs")):
        if not folder.is_dir():
            raise InterlatError(f"{folder}: no such folder ({option})")
    costs, left_out = [], []
    for job in jobs:
        if job.benchmark is None or not _under(job.benchmark, benchmarks):
            left_out.append(job)
            continue
        if not job.benchmark.is_file():
            raise InterlatError(f"{job.benchmark}: missing: the DAG names job `{job.name}` but it has no benchmark file")
        wall, cpu, rss = read_benchmark(job.benchmark)
        if not job.logs:
            raise InterlatError(f"{job.benchmark}: job `{job.name}` has no log: file (every job must have one)")
        for log in job.logs:
            if not _under(log, logs):
                raise InterlatError(f"{log}: log of job `{job.name}` is not under --logs {logs}")
            if not log.is_file():
                raise InterlatError(f"{log}: missing: the log of job `{job.name}`")
        end = max(p.stat().st_mtime for p in (*job.logs, job.benchmark))
        costs.append(JobCost(job=job, wall_s=wall, cpu_s=cpu, max_rss_mb=rss, end=end))
    if not costs:
        raise InterlatError(f"{benchmarks}: no job of the DAG writes its benchmark file in this folder (--benchmarks)")
    return costs, left_out


def critical_path(jobs: list[DagJob], costs: list[JobCost]) -> list[JobCost]:
    """The chain of dependent jobs with the largest summed wall time; jobs without a cost weigh 0 and are
    not listed (their dependencies still chain through them)."""
    by_id = {c.job.jobid: c for c in costs}
    deps = {j.jobid: j.deps for j in jobs}
    best: dict[int, tuple[float, int | None]] = {}  # job -> (longest chain ending here, previous job)
    for jid in graphlib.TopologicalSorter(deps).static_order():
        weight = by_id[jid].wall_s if jid in by_id else 0.0
        prev = max(deps.get(jid, ()), key=lambda d: (best[d][0], -d), default=None)
        best[jid] = (weight + (best[prev][0] if prev is not None else 0.0), prev)
    jid = max(best, key=lambda j: (best[j][0], -j))
    chain = []
    while jid is not None:
        if jid in by_id:
            chain.append(by_id[jid])
        jid = best[jid][1]
    return chain[::-1]


def _fmt(x: float | None, digits: int = 1) -> str:
    return "NA" if x is None else f"{x:.{digits}f}"


def summarize(jobs: list[DagJob], costs: list[JobCost]) -> dict:
    """Per-rule rows (with a total row), the critical path rows and the run's totals."""
    path = critical_path(jobs, costs)
    on_path = {c.job.jobid for c in path}
    t0 = min(c.start for c in costs)
    wall = max(c.end for c in costs) - t0
    rules: dict[str, list[JobCost]] = {}
    for c in costs:
        rules.setdefault(c.job.rule, []).append(c)

    def row(name: str, group: list[JobCost]) -> dict:
        rss = [c.max_rss_mb for c in group if c.max_rss_mb is not None]
        return {
            "rule": name,
            "jobs": len(group),
            "wall_s": _fmt(sum(c.wall_s for c in group), 2),
            "cpu_s": _fmt(sum(c.cpu_s or 0.0 for c in group), 2),
            "max_rss_mb": _fmt(max(rss) if rss else None),
            "critical_path_s": _fmt(sum(c.wall_s for c in group if c.job.jobid in on_path), 2),
            "unsampled_jobs": sum(c.cpu_s is None for c in group),
        }

    order = sorted(rules, key=lambda r: -sum(c.wall_s for c in rules[r]))
    rule_rows = [row(r, rules[r]) for r in order] + [row("total", costs)]
    path_rows = [{"step": i + 1, "job": c.job.name, "wall_s": _fmt(c.wall_s, 2), "start_s": _fmt(c.start - t0),
                  "end_s": _fmt(c.end - t0)} for i, c in enumerate(path)]
    path_s = sum(c.wall_s for c in path)
    return {
        "rules": rule_rows,
        "path": path_rows,
        "wall_s": wall,
        "path_s": path_s,
        "path_share": path_s / wall if wall > 0 else math.nan,
        "jobs": len(costs),
        "job_s": sum(c.wall_s for c in costs),
        "cpu_s": sum(c.cpu_s or 0.0 for c in costs),
    }


def to_markdown(summary: dict, benchmarks: str, left_out: list[DagJob]) -> str:
    """The per-rule table, the totals and the critical path as Markdown."""
    from interlat.bench.table import to_markdown as table

    skipped = ", ".join(sorted({j.rule for j in left_out}))
    head = (
        f"Run `{benchmarks}`: {summary['jobs']} jobs; pipeline wall time {summary['wall_s']:.1f} s (first job start "
        f"to last job end); summed job wall time {summary['job_s']:.1f} s; summed job CPU time "
        f"{summary['cpu_s']:.1f} s; critical path {summary['path_s']:.1f} s = {100 * summary['path_share']:.1f}% "
        "of the wall time"
        + (f"; left out (no benchmark: directive, or its file outside the folder): {len(left_out)} job(s) of {skipped}" if left_out else "")
    )
    cols = {"rule": "rule", "jobs": "jobs", "wall_s": "wall s", "cpu_s": "CPU s", "max_rss_mb": "max RSS MB",
            "critical_path_s": "on critical path s", "unsampled_jobs": "jobs with CPU NA"}
    rules = [{cols[k]: v for k, v in r.items()} for r in summary["rules"]]
    path = [{"#": r["step"], "job": r["job"], "wall s": r["wall_s"], "start s": r["start_s"], "end s": r["end_s"]}
            for r in summary["path"]]
    return (table(rules, list(cols.values()), head, left=("rule",))
            + "\nCritical path (start and end in seconds after the first job's start):\n\n"
            + table(path, ["#", "job", "wall s", "start s", "end s"], left=("job",)))
