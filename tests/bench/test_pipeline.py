"""`interlat bench pipeline` (P5b) on a real, tiny Snakemake run: a chain and a fan-out, each job with
`benchmark:` and `log:`; the per-rule sums must match the TSVs and the critical path the known chain."""

import csv
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from interlat.bench.snakejobs import DagJob
from tests.helpers import BIN, assert_clean_error, nothing_written, run_cli

# prep -> chain1 (computes ~1 s) -> chain2 (sleeps 1.5 s) -> final, and prep -> part{1..3} (0.2 s each) -> final:
# the chain is the longest path whatever the machine's load.
SNAKEFILE = r'''
PARTS = list(range(1, int(config.get("n_parts", 3)) + 1))


rule all:
    input:
        "results/toy/final.txt",


rule prep:
    output:
        "results/{run}/prep.txt",
    log:
        "logs/{run}/prep.log",
    benchmark:
        "benchmarks/{run}/prep.tsv"
    shell:
        "sleep 0.3; echo prep > {output} 2> {log}"


rule chain1:
    input:
        "results/{run}/prep.txt",
    output:
        "results/{run}/chain1.txt",
    log:
        "logs/{run}/chain/step1.log",
    benchmark:
        "benchmarks/{run}/chain/step1.tsv"
    shell:
        "python -c 'import time; t = time.process_time(); "
        "[0 for _ in iter(lambda: time.process_time() - t < 1.0, False)]' > {output} 2> {log}"


rule chain2:
    input:
        "results/{run}/chain1.txt",
    output:
        "results/{run}/chain2.txt",
    log:
        "logs/{run}/chain/step2.log",
    benchmark:
        "benchmarks/{run}/chain/step2.tsv"
    shell:
        "sleep 1.5; echo 2 > {output} 2> {log}"


rule part:
    input:
        "results/{run}/prep.txt",
    output:
        "results/{run}/parts/part{i}.txt",
    log:
        "logs/{run}/parts/part{i}.log",
    benchmark:
        "benchmarks/{run}/parts/part{i}.tsv"
    shell:
        "sleep 0.2; echo {wildcards.i} > {output} 2> {log}"


rule final:
    input:
        "results/{run}/chain2.txt",
        expand("results/{{run}}/parts/part{i}.txt", i=PARTS),
    output:
        "results/{run}/final.txt",
    log:
        "logs/{run}/final.log",
    benchmark:
        "benchmarks/{run}/final.tsv"
    shell:
        "cat {input} > {output} 2> {log}"
'''


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """The toy workflow run for real with `snakemake --cores 2`; returns (folder, the run's elapsed seconds)."""
    work = tmp_path_factory.mktemp("toy")
    (work / "Snakefile").write_text(SNAKEFILE)
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    t0 = time.time()
    out = subprocess.run([str(BIN / "snakemake"), "--cores", "2"], cwd=work, capture_output=True, text=True, env=env)
    elapsed = time.time() - t0
    assert out.returncode == 0, out.stderr[-3000:]
    return work, elapsed


def tsv(path: Path) -> dict:
    with open(path) as f:
        return next(csv.DictReader(f, delimiter="\t"))


def run_bench(work: Path, out_dir: Path, *extra, expect: int = 0):
    return run_cli("bench", "pipeline", "--workflow-dir", work, "--benchmarks", work / "benchmarks/toy",
                   "--logs", work / "logs/toy", "--out", out_dir / "p5b.md", "--rules-csv", out_dir / "rules.csv",
                   "--path-csv", out_dir / "path.csv", *extra, expect=expect)


@pytest.mark.slow
def test_rule_sums_match_the_tsvs_and_the_chain_is_critical(toy_run, tmp_path):
    work, elapsed = toy_run
    run_bench(work, tmp_path)
    with open(tmp_path / "rules.csv") as f:
        rows = {r["rule"]: r for r in csv.DictReader(f)}
    files = {"prep": ["prep"], "chain1": ["chain/step1"], "chain2": ["chain/step2"], "final": ["final"],
             "part": ["parts/part1", "parts/part2", "parts/part3"]}
    assert set(rows) == {*files, "total"}
    every = []
    for rule, stems in files.items():
        recs = [tsv(work / "benchmarks/toy" / f"{s}.tsv") for s in stems]
        every += recs
        assert int(rows[rule]["jobs"]) == len(stems)
        assert float(rows[rule]["wall_s"]) == pytest.approx(sum(float(r["s"]) for r in recs), abs=0.006)
        assert float(rows[rule]["cpu_s"]) == pytest.approx(
            sum(float(r["cpu_time"]) for r in recs if r["cpu_time"] != "NA"), abs=0.006)
        rss = [float(r["max_rss"]) for r in recs if r["max_rss"] != "NA"]
        assert rows[rule]["max_rss_mb"] == (f"{max(rss):.1f}" if rss else "NA")
    assert int(rows["total"]["jobs"]) == 7
    assert float(rows["total"]["wall_s"]) == pytest.approx(sum(float(r["s"]) for r in every), abs=0.02)
    assert float(rows["chain1"]["cpu_s"]) >= 0.5  # the computing job was sampled; the sleeping ones cost ~0

    with open(tmp_path / "path.csv") as f:
        path = list(csv.DictReader(f))
    assert [p["job"] for p in path] == ["prep run=toy", "chain1 run=toy", "chain2 run=toy", "final run=toy"]
    chain_s = sum(float(p["wall_s"]) for p in path)
    for rule in ("prep", "chain1", "chain2", "final"):
        assert rows[rule]["critical_path_s"] == rows[rule]["wall_s"]
    assert float(rows["part"]["critical_path_s"]) == 0
    starts = [float(p["start_s"]) for p in path]
    assert starts == sorted(starts) and starts[0] == 0.0  # prep is the first job; each starts after the one before
    md = (tmp_path / "p5b.md").read_text()
    wall = float(md.split("pipeline wall time ")[1].split(" s")[0])
    assert chain_s - 0.1 <= wall <= elapsed  # the chain bounds the wall time from below, the real run from above
    path_s, share = md.split("critical path ")[1].split("% of")[0].split(" s = ")
    assert float(path_s) == pytest.approx(chain_s, abs=0.06)
    assert float(share) == pytest.approx(100 * chain_s / wall, abs=2.0)
    assert "left out (no benchmark: directive, or its file outside the folder): 1 job(s) of all" in md
    assert "| 4 | final run=toy |" in md


def _copy(work: Path, dest: Path) -> Path:
    shutil.copytree(work, dest, symlinks=True)  # copy2 keeps the logs' times
    return dest


@pytest.mark.slow
def test_malformed_tsv_names_file_row_and_field(toy_run, tmp_path):
    work = _copy(toy_run[0], tmp_path / "w")
    bad = work / "benchmarks/toy/parts/part2.tsv"
    lines = bad.read_text().splitlines()
    cells = lines[1].split("\t")
    cells[0] = "fast"
    bad.write_text(lines[0] + "\n" + "\t".join(cells) + "\n")
    out = tmp_path / "out"
    result = run_bench(work, out, expect=2)
    assert_clean_error(result, str(bad), "row 2", 'field "s"', "'fast'")
    assert nothing_written(out / "p5b.md") and nothing_written(out / "rules.csv")

    bad.write_text(lines[0].replace("cpu_time", "cpu") + "\n" + lines[1] + "\n")
    assert_clean_error(run_bench(work, out, expect=2), str(bad), "header", 'field "cpu_time"')


@pytest.mark.slow
def test_dag_job_without_benchmark_file_or_log_fails(toy_run, tmp_path):
    work = toy_run[0]
    # The DAG with four parts names a job the run never ran.
    result = run_bench(work, tmp_path, "--config", "n_parts=4", expect=2)
    assert_clean_error(result, str(work / "benchmarks/toy/parts/part4.tsv"), "part run=toy i=4", "no benchmark file")
    assert nothing_written(tmp_path / "p5b.md")

    work = _copy(work, tmp_path / "w")
    (work / "logs/toy/chain/step2.log").unlink()
    result = run_bench(work, tmp_path, expect=2)
    assert_clean_error(result, str(work / "logs/toy/chain/step2.log"), "chain2 run=toy", "missing")


@pytest.mark.slow
def test_missing_folders_exit_2(toy_run, tmp_path):
    work = toy_run[0]
    result = run_cli("bench", "pipeline", "--workflow-dir", work, "--benchmarks", tmp_path / "nope",
                     "--logs", work / "logs/toy", "--out", tmp_path / "p.md", expect=2)
    assert_clean_error(result, str(tmp_path / "nope"), "--benchmarks")
    result = run_cli("bench", "pipeline", "--workflow-dir", tmp_path, "--benchmarks", work / "benchmarks/toy",
                     "--logs", work / "logs/toy", "--out", tmp_path / "p.md", expect=2)
    assert_clean_error(result, str(tmp_path), "no Snakefile")
    (tmp_path / "Snakefile").write_text(SNAKEFILE.replace('"results/{run}/chain2.txt",', "chain2_output,"))
    result = run_cli("bench", "pipeline", "--workflow-dir", tmp_path, "--benchmarks", work / "benchmarks/toy",
                     "--logs", work / "logs/toy", "--out", tmp_path / "p.md", expect=2)
    assert_clean_error(result, str(tmp_path / "Snakefile"), "could not load the workflow", "chain2_output")
    assert nothing_written(tmp_path / "p.md")


@pytest.mark.slow
def test_dag_is_the_one_snakemake_prints(toy_run):
    """The jobs and dependencies read through Snakemake's API are those of `snakemake --dag` (DOT)."""
    import re

    from interlat.bench.snakejobs import dag_jobs

    work = toy_run[0]
    dot = subprocess.run([str(BIN / "snakemake"), "--dag"], cwd=work, capture_output=True, text=True, check=True).stdout
    labels = dict(re.findall(r'^\s*(\d+)\[label = "([^"\\]+)', dot, flags=re.M))
    edges = sorted((labels[a], labels[b]) for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, flags=re.M))
    jobs = {j.jobid: j for j in dag_jobs(work)}
    assert sorted(j.rule for j in jobs.values()) == sorted(labels.values())
    assert sorted((jobs[d].rule, j.rule) for j in jobs.values() for d in j.deps) == edges
    assert {j.benchmark.relative_to(work).as_posix() for j in jobs.values() if j.benchmark} == {
        "benchmarks/toy/prep.tsv", "benchmarks/toy/chain/step1.tsv", "benchmarks/toy/chain/step2.tsv",
        "benchmarks/toy/final.tsv", *(f"benchmarks/toy/parts/part{i}.tsv" for i in (1, 2, 3))}


def _job(jobid: int, rule: str, deps=(), bench: Path | None = None) -> DagJob:
    return DagJob(jobid=jobid, rule=rule, wildcards=(), benchmark=bench, logs=(), deps=tuple(deps))


def test_critical_path_takes_the_heaviest_chain_through_unmeasured_jobs():
    from interlat.bench.pipeline import JobCost, critical_path

    # a -> b (5 s) -> hub (no benchmark) -> d;  a -> c (1 s) -> d;  e (4 s) alone
    jobs = [_job(0, "a"), _job(1, "b", [0]), _job(2, "c", [0]), _job(3, "hub", [1]), _job(4, "d", [3, 2]), _job(5, "e")]
    walls = {0: 2.0, 1: 5.0, 2: 1.0, 4: 0.5, 5: 4.0}
    costs = [JobCost(job=jobs[i], wall_s=s, cpu_s=None, max_rss_mb=None, end=100.0) for i, s in walls.items()]
    assert [c.job.rule for c in critical_path(jobs, costs)] == ["a", "b", "d"]
    walls[5] = 9.0
    costs = [JobCost(job=jobs[i], wall_s=s, cpu_s=None, max_rss_mb=None, end=100.0) for i, s in walls.items()]
    assert [c.job.rule for c in critical_path(jobs, costs)] == ["e"]


@pytest.mark.parametrize(
    "body, needles",
    [
        ("", ["empty"]),
        ("HEADER\n", ["0 data rows"]),
        ("HEADER\nROW\nROW\n", ["2 data rows"]),
        ("HEADER\n1.0\t0:00:01\n", ["row 2", "2 fields"]),
        ("HEADER\nROW_S_NA\n", ["row 2", 'field "s"', "'NA'"]),
        ("HEADER\nROW_CPU_NEG\n", ["row 2", 'field "cpu_time"', "'-3'"]),
    ],
    ids=["empty", "no-row", "repeats", "short-row", "s-NA", "cpu-negative"],
)
def test_malformed_benchmark_tsv_is_one_line(tmp_path, body, needles):
    from snakemake.benchmark import BenchmarkRecord

    from interlat.bench.pipeline import read_benchmark
    from interlat.errors import InterlatError

    header = BenchmarkRecord.get_header()
    row = ["2.5", "0:00:02", "10", "20", "5", "6", "0", "0", "50", "1.2"]
    assert len(row) == len(header)
    subs = {"HEADER": "\t".join(header), "ROW_S_NA": "\t".join(["NA", *row[1:]]),
            "ROW_CPU_NEG": "\t".join([*row[:-1], "-3"]), "ROW": "\t".join(row)}
    for key, value in subs.items():
        body = body.replace(key, value)
    path = tmp_path / "job.tsv"
    path.write_text(body)
    with pytest.raises(InterlatError) as e:
        read_benchmark(path)
    assert "\n" not in e.value.format_message() and str(path) in e.value.message
    for n in needles:
        assert n in e.value.message
    path.write_text(subs["HEADER"] + "\n" + "\t".join([*row[:-1], "NA"]) + "\n")
    assert read_benchmark(path) == (2.5, None, 10.0)  # NA CPU: the job ended before Snakemake's first sample
