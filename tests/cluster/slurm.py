"""A throw-away one-node SLURM cluster for tests (real munged, slurmctld, slurmd).

`one_node_cluster(workdir)` writes slurm.conf and cgroup.conf into `workdir`,
starts munged, `slurmctld -i` and `slurmd -N localhost` in the foreground as
children of this process, waits until `sinfo` reports the node idle, and yields a
`Cluster` whose `env` points SLURM clients (sbatch, squeue, scontrol, and through
them Snakemake's slurm executor) at it with SLURM_CONF. On exit it cancels what
is still queued, stops the daemons by PID and checks that no job step is left.

It installs nothing: CI installs the Debian packages (.ci/install-system-deps.sh,
SLURM 22.05). `SlurmUnavailable` says why a cluster cannot be started here
(binaries missing, not root); tests turn it into a skip.

Settings follow the recipe verified on the project's 2-core CI hosts: munge auth,
proctrack/linuxproc, task/none (no cgroup plugins), select/cons_tres with
CR_Core_Memory, no accounting (so the executor needs
`--slurm-status-command squeue`, and MinJobAge keeps finished jobs visible to
squeue), ReturnToService=2. slurmd runs configless (it fetches slurm.conf from
slurmctld and links /run/slurm/conf to its cache, removed again on exit): the srun
that Snakemake's job step starts inside each job has SLURM_CONF stripped from its
environment and finds the configuration there.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "munge")
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_SOCKET = MUNGE_RUN_DIR / "munge.socket.2"
MUNGE_KEY = Path("/etc/munge/munge.key")


class SlurmUnavailable(RuntimeError):
    """The one-node cluster cannot run on this machine; the message says why."""


@dataclass
class Cluster:
    """A running one-node cluster."""

    root: Path
    conf: Path
    env: dict[str, str]
    cpus: int
    real_memory_mb: int
    partition: str = "debug"
    pids: dict[str, int] = field(default_factory=dict)

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a SLURM client command against this cluster."""
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def job_ids(self) -> list[str]:
        """Ids of every job slurmctld still remembers (pending, running, or finished
        within MinJobAge)."""
        out = self.run("squeue", "--noheader", "--states=all", "--format=%i").stdout
        return sorted(out.split(), key=int)

    def show_job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict (JobState, Command, StdOut, ...)."""
        out = self.run("scontrol", "show", "job", "-o", job_id).stdout
        fields: dict[str, str] = {}
        for token in out.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        return fields

    def log_tail(self, lines: int = 40) -> str:
        """The end of both daemon logs, for assertion messages."""
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.root / "log" / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)


def check_available() -> None:
    """Raise SlurmUnavailable unless a cluster can be started here."""
    missing = [b for b in DAEMONS + CLIENTS if shutil.which(b) is None]
    if missing:
        raise SlurmUnavailable(
            f"SLURM/munge binaries not found: {', '.join(missing)} (run .ci/install-system-deps.sh)"
        )
    if os.geteuid() != 0:
        raise SlurmUnavailable("the one-node SLURM cluster runs its daemons as root")
    try:
        pwd.getpwnam("munge")
    except KeyError as exc:
        raise SlurmUnavailable("no 'munge' user (is the munge package installed?)") from exc
    if not MUNGE_KEY.exists():
        raise SlurmUnavailable(f"{MUNGE_KEY} missing (the munge package creates it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_memory_mb(margin_mb: int = 1024) -> int:
    """MemTotal from /proc/meminfo in MB, less a margin (slurmd drains a node whose
    configured RealMemory exceeds what it finds)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            total_mb = int(line.split()[1]) // 1024
            return max(total_mb - margin_mb, total_mb // 2)
    raise SlurmUnavailable("no MemTotal in /proc/meminfo")


def write_config(
    root: Path,
    cpus: int,
    memory_mb: int,
    ctld_port: int,
    slurmd_port: int,
    partition: str = "debug",
) -> Path:
    """Write slurm.conf and cgroup.conf for a one-node cluster under `root`."""
    for sub in ("spool/ctld", "spool/d", "log", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    conf.write_text(
        f"""\
# One-node test cluster written by tests/cluster/slurm.py (SLURM 22.05).
ClusterName=interlat-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={root}/spool/ctld
SlurmdSpoolDir={root}/spool/d
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
# Keep finished jobs in slurmctld (so in squeue --states=all and scontrol) for an
# hour: the executor's squeue status checks need >= 120 s, and the tests check the
# state of every job of a ~10 min pipeline run afterwards.
MinJobAge=3600
SlurmdParameters=config_overrides
MpiDefault=none
# slurmd fetches this file from slurmctld (configless) and caches it under
# /run/slurm/conf, where srun inside jobs finds it: Snakemake's job step strips
# SLURM_* variables, SLURM_CONF included, before its nested srun.
SlurmctldParameters=enable_configless
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
    )
    (root / "cgroup.conf").write_text(
        "# Not used: TaskPlugin=task/none.\nCgroupPlugin=autodetect\n"
    )
    return conf


def _munge_works(env: dict[str, str]) -> bool:
    if not MUNGE_SOCKET.exists():
        return False
    munge = subprocess.run(["munge", "-n"], capture_output=True, env=env, check=False)
    if munge.returncode != 0:
        return False
    unmunge = subprocess.run(
        ["unmunge"], input=munge.stdout, capture_output=True, env=env, check=False
    )
    return unmunge.returncode == 0


def _wait(predicate, timeout: float, what: str, cluster: Cluster | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    detail = cluster.log_tail() if cluster else ""
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{detail}")


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the daemon (its own session, so PGID == PID), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _stepd_pids(job_ids: set[str]) -> list[int]:
    """PIDs of slurmstepd processes serving our jobs ("slurmstepd: [123.batch]")."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("slurmstepd: ["):
            job = cmd.split("[", 1)[1].split(".", 1)[0].split("]", 1)[0]
            if job in job_ids:
                found.append(int(entry.name))
    return found


@contextlib.contextmanager
def one_node_cluster(workdir: Path, start_timeout: float = 60) -> Iterator[Cluster]:
    """Start a one-node cluster under `workdir`, yield it, and tear it down."""
    check_available()
    root = Path(workdir)
    cpus = os.cpu_count() or 1
    memory = real_memory_mb()
    ctld_port, slurmd_port = _free_port(), _free_port()
    conf = write_config(root, cpus, memory, ctld_port, slurmd_port)
    env = dict(os.environ, SLURM_CONF=str(conf))
    cluster = Cluster(root=root, conf=conf, env=env, cpus=cpus, real_memory_mb=memory)
    procs: dict[str, subprocess.Popen] = {}
    logs = []

    def spawn(name: str, argv: list[str], user: str | None = None, configless=False) -> None:
        log = open(root / "log" / f"{name}.stdout", "w")  # closed in `finally`
        logs.append(log)
        procs[name] = subprocess.Popen(
            argv,
            env={k: v for k, v in env.items() if k != "SLURM_CONF"} if configless else env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
        cluster.pids[name] = procs[name].pid

    try:
        # munged: reuse one that already answers on the standard socket (then it is
        # not ours to stop); otherwise run our own as the munge user, foreground.
        if not _munge_works(env):
            MUNGE_RUN_DIR.mkdir(parents=True, exist_ok=True)
            munge_user = pwd.getpwnam("munge")
            os.chown(MUNGE_RUN_DIR, munge_user.pw_uid, munge_user.pw_gid)
            os.chmod(MUNGE_RUN_DIR, 0o755)  # munged refuses a 0700 socket directory
            spawn("munged", ["munged", "--foreground", "--force"], user="munge")
            _wait(lambda: _munge_works(env), 20, "munged")
        spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
        spawn(
            "slurmd",
            ["slurmd", "-D", "-N", "localhost", "--conf-server", f"127.0.0.1:{ctld_port}"],
            configless=True,
        )

        def node_idle() -> bool:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {proc.returncode}\n{cluster.log_tail()}"
                    )
            out = cluster.run("sinfo", "--noheader", "--format=%t", check=False)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        _wait(node_idle, start_timeout, "the node to become idle in sinfo", cluster)
        yield cluster
    finally:
        job_ids: set[str] = set()
        if "slurmctld" in procs and procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                job_ids = set(cluster.job_ids())
                active = cluster.run(
                    "squeue", "--noheader", "--format=%i", "--states=PD,R,CF,CG,S", check=False
                ).stdout.split()
                if active:
                    cluster.run("scancel", "--full", *active, check=False)
                    _wait(
                        lambda: (
                            not cluster.run(
                                "squeue", "--noheader", "--format=%i", "--states=PD,R,CF,CG,S"
                            ).stdout.strip()
                        ),
                        30,
                        "cancelled jobs to finish",
                    )
        for name in ("slurmd", "slurmctld", "munged"):
            if name in procs:
                _stop(procs[name])
        for pid in _stepd_pids(job_ids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for log in logs:
            log.close()
        _remove_configless_link(root)


def _remove_configless_link(root: Path) -> None:
    """slurmd (configless) links /run/slurm/conf to its config cache under `root`."""
    link = Path("/run/slurm/conf")
    if link.is_symlink() and Path(os.readlink(link)).is_relative_to(root):
        link.unlink()
        with contextlib.suppress(OSError):
            link.parent.rmdir()
