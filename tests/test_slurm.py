"""Snakemake's slurm executor against a real one-node SLURM cluster.

tests/cluster/slurm.py starts munged, slurmctld and slurmd (SLURM 22.05 from Debian);
every job below goes through a real `sbatch` and runs under slurmd. First a tiny
self-contained workflow, then (once the workflow exists) the test-config pipeline
through profiles/slurm + profiles/test-slurm with the image (stand-in apptainer, see
tests/test_containers.py), compared file by file with the local run.
"""

import pytest

from tests.cluster import images, pipeline, slurm
from tests.cluster.images import ImageUnavailable
from tests.cluster.slurm import SlurmUnavailable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]  # image builds and cluster start-up are long

TOY_SNAKEFILE = """\
localrules: all


rule all:
    input:
        "summary.txt",


rule part:
    output:
        "parts/{i}.txt",
    threads: 1
    resources:
        mem_mb=200,
        runtime=5,
    shell:
        'echo "$SLURM_JOB_ID {wildcards.i}" > {output}'


rule summary:
    input:
        expand("parts/{i}.txt", i=range(3)),
    output:
        "summary.txt",
    resources:
        mem_mb=200,
        runtime=5,
    shell:
        'cat {input} > {output} && echo "$SLURM_JOB_ID summary" >> {output}'
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        slurm.check_available()
    except SlurmUnavailable as exc:
        pytest.skip(str(exc))
    with slurm.one_node_cluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def test_node_is_up(cluster):
    out = cluster.run("sinfo", "--noheader", "--format=%P %t %c %m").stdout.split()
    assert out == ["debug*", "idle", str(cluster.cpus), str(cluster.real_memory_mb)]


def test_toy_workflow_runs_every_job_through_sbatch(cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(TOY_SNAKEFILE)
    run = pipeline.snakemake(
        tmp_path,
        "--executor", "slurm",
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2",
        "--slurm-no-account",
        "--default-resources", "slurm_partition=debug",
        "--jobs", "4",
        "--latency-wait", "5",
        "--workflow-profile", "none",
        env=cluster.env,
    ).check()  # fmt: skip
    submitted = run.slurm_job_ids()
    assert len(submitted) == 4, run.output  # 3 x part + summary; `all` is local

    # Each output was written inside the SLURM job that Snakemake reported.
    written = [line.split()[0] for line in (tmp_path / "summary.txt").read_text().splitlines()]
    assert sorted(written) == sorted(submitted.values())

    # slurmctld ran and finished exactly those jobs, named after their rules.
    known = set(cluster.job_ids())
    for job_id in submitted.values():
        assert job_id in known
        fields = cluster.show_job(job_id)
        assert fields["JobState"] == "COMPLETED", fields
        assert fields["Partition"] == "debug"
    comments = sorted(cluster.show_job(j).get("Comment", "") for j in submitted.values())
    assert sum(c.startswith("rule_part") for c in comments) == 3, comments
    assert sum(c.startswith("rule_summary") for c in comments) == 1, comments
    print(f"\ntoy workflow: {len(submitted)} SLURM jobs in {run.seconds} s")


@pytest.mark.skipif(
    pipeline.workflow_missing() is not None, reason=str(pipeline.workflow_missing())
)
def test_pipeline_through_slurm_matches_local_run(cluster, tmp_path_factory):
    try:
        image = images.ensure_cpu_image(tmp_path_factory.mktemp("image-build"))
    except ImageUnavailable as exc:
        pytest.skip(str(exc))
    local = pipeline.local_container_run(image, tmp_path_factory).check()

    work = pipeline.copy_repo(tmp_path_factory.mktemp("pipeline-slurm"))
    env = images.standin_env(tmp_path_factory.mktemp("standin-bin"), base=cluster.env)
    run = pipeline.snakemake(
        work,
        "--profile", "profiles/slurm",
        "--profile", "profiles/test-slurm",
        "--configfile", "config/test.yaml",
        "--config", f"container={image.uri}",
        env=env,
    ).check()  # fmt: skip

    # Every job went through sbatch and ran in the image inside its SLURM job.
    submitted = run.slurm_job_ids()
    logs = pipeline.job_logs(work)
    assert len(submitted) == len(logs), (len(submitted), logs)
    records = images.exec_log(work)
    assert len(records) == len(logs)
    assert {r["slurm_job_id"] for r in records} == set(submitted.values())
    assert all(r["marker"] == image.marker and r["rc"] == 0 for r in records), records
    for job_id in submitted.values():
        assert cluster.show_job(job_id)["JobState"] == "COMPLETED"

    # The same files as the local run of the same image, with the same bytes except
    # for wall-clock columns (training throughput, per-task decode seconds).
    assert pipeline.result_files(work).keys() == pipeline.result_files(local.workdir).keys()
    assert not pipeline.differing_results(work, local.workdir)
    print(
        f"\nSLURM run: {len(submitted)} jobs in {run.seconds} s "
        f"(local run of the same image: {local.seconds} s)"
    )
