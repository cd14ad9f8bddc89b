"""Snakemake's slurm executor against a real one-node SLURM cluster.

tests/cluster/slurm.py starts munged, slurmctld and slurmd (SLURM 22.05 from Debian);
every job below goes through a real `sbatch` and runs under slurmd. First a tiny
self-contained workflow, then (once the workflow exists) the test-config pipeline
through profiles/slurm + profiles/test-slurm with the image (stand-in apptainer, see
tests/test_containers.py), compared file by file with the local run. Last, a training job
killed at its real SLURM time limit and resumed by the retry.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

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
        "--configfile", *pipeline.CONFIGS,
        "--config", f"container={image.uri}",
        env=env,
    ).check()  # fmt: skip

    # Every job ran in the image: the localrules (data, data_alfworld, models: downloads on
    # the submitting host) there, every other job through sbatch inside its SLURM job.
    submitted = run.slurm_job_ids()
    on_host = [r for r in re.findall(r"^localrule (\w+):", run.output, re.M) if r != "all"]
    assert set(on_host) == {"data", "data_alfworld", "models"}, on_host
    logs = pipeline.job_logs(work)
    assert len(submitted) + len(on_host) == len(logs), (len(submitted), on_host, logs)
    records = images.exec_log(work)
    assert len(records) == len(logs)
    assert {r["slurm_job_id"] for r in records if r["slurm_job_id"]} == set(submitted.values())
    assert sum(not r["slurm_job_id"] for r in records) == len(on_host)
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


def _train_argv(tiny, out: Path, steps: int) -> list[str]:
    interlat = Path(sys.executable).parent / "interlat"
    return [
        str(interlat), "--threads", "1", "train", "--base", str(tiny["receiver"]),
        "--conversations", str(tiny["convert"] / "train.jsonl"), "--latents", str(tiny["latents"]),
        "--steps", str(steps), "--batch-size", "2", "--lr", "3e-3", "--checkpoint-every", "50",
        "--work-dir", str(out / "work"), "--log-csv", str(out / "log.csv"), "--out", str(out / "ckpt"),
    ]  # fmt: skip


def _steps_lasting(tiny, tmp: Path, seconds: float) -> int:
    """Training steps that take about `seconds` here: timed 10 and 1,010 steps after a discarded warm
    run (a cold first start once made 10 steps look as slow as 60, so the job was given thousands
    of steps and its retry outlived the wait), startup cancelling; never under a quarter of the
    1,010-step run's mean."""
    took = []
    for n in (10, 10, 1010):  # 1,000 steps apart: a few seconds of work, well above start-up jitter
        start = time.perf_counter()
        subprocess.run(_train_argv(tiny, tmp / f"calib{len(took)}", n), check=True, capture_output=True)
        took.append(time.perf_counter() - start)
    per_step = max((took[2] - took[1]) / 1000, took[2] / 1010 / 4)
    return int(seconds / per_step) + 1


def _wait_job(cluster, job_id: str, timeout: float, log: Path | None = None) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = cluster.show_job(job_id).get("JobState", "")
        if state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", ""):
            return state
        time.sleep(2)
    said = log.read_text()[-3000:] if log is not None and log.is_file() else ""
    raise AssertionError(f"job {job_id} still {state} after {timeout:.0f} s\n{said}\n{cluster.log_tail()}")


def test_train_job_killed_at_its_time_limit_resumes_on_retry(cluster, tiny, tmp_path):
    """`sbatch --time=1` (SLURM's shortest limit) on a training run of ~2.5 min: at the limit SLURM
    sends SIGTERM (SIGKILL only KillWait later); the job saves its state at the end of the step,
    says so in one line and ends TIMEOUT without a receiver. The retry (the same job submitted
    again, as Snakemake's `retries:` does) logs `resumed from step N` and ends with the weights
    of an uninterrupted run."""
    steps = _steps_lasting(tiny, tmp_path, 240)  # well past the kill (60-90 s after the start)
    run, ref = tmp_path / "run", tmp_path / "ref"
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/bash\nexec " + " ".join(_train_argv(tiny, run, steps)) + "\n")
    argv = ["sbatch", "--parsable", "--partition=debug", "--cpus-per-task=1", "--mem=1000", f"--chdir={tmp_path}"]
    first = cluster.run(*argv, "--time=1", f"--output={tmp_path}/first.log", str(script)).stdout.strip()
    with open(tmp_path / "reference.log", "w") as log:  # uninterrupted, alongside the job
        reference = subprocess.Popen(_train_argv(tiny, ref, steps), stdout=log, stderr=subprocess.STDOUT)
    state = _wait_job(cluster, first, 600, tmp_path / "first.log")
    log_path = tmp_path / "first.log"
    assert log_path.is_file(), (state, cluster.show_job(first), cluster.log_tail())
    first_log = log_path.read_text()
    assert state == "TIMEOUT", (state, first_log[-3000:])
    said = re.findall(r"caught SIGTERM: state saved at step (\d+) in (\S+); rerun to resume", first_log)
    assert len(said) == 1 and said[0][1] == str(run / "work"), first_log[-3000:]
    step = int(said[0][0])
    assert 0 < step < steps and not (run / "ckpt").exists()

    h, m, sec = (int(x) for x in cluster.show_job(first)["RunTime"].split(":"))
    rest = (steps - step) * (h * 3600 + m * 60 + sec) / step  # at the first job's own pace
    retry = cluster.run(*argv, "--time=30", f"--output={tmp_path}/retry.log", str(script)).stdout.strip()
    assert _wait_job(cluster, retry, max(600, 4 * rest), tmp_path / "retry.log") == "COMPLETED", (tmp_path / "retry.log").read_text()[-3000:]
    assert f"resumed from step {step} " in (tmp_path / "retry.log").read_text()
    assert reference.wait(timeout=600) == 0, (tmp_path / "reference.log").read_text()[-3000:]
    for name in ("model.safetensors", "adapter.safetensors"):
        a, b = load_file(ref / "ckpt" / name), load_file(run / "ckpt" / name)
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst <= 1e-6, (name, worst)
    print(f"\n{steps} steps; killed at the time limit after step {step}, resumed by the retry")
