"""Throwaway services for the tests: a one-node SLURM cluster and a PostgreSQL server, each under
a temporary folder, on loopback, started for the tests that need them and stopped after, leaving
nothing running.

What is missing is installed through Debian's packages when this process may (root, apt-get
present, ``IZOO_INSTALL_SERVICES`` not 0), as on CI; otherwise the tests that need a service are
skipped with one line saying what to install. ``python tests/services.py slurm|postgres`` starts
one by hand and prints how to use it (Ctrl-C stops it).
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

SLURM_PROGRAMS = ("slurmctld", "slurmd", "munged", "sbatch", "sinfo", "scontrol", "squeue")
SLURM_PACKAGES = ("slurm-wlm", "munge")
POSTGRES_PACKAGES = ("postgresql",)


def _which(program: str) -> str | None:
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _may_install() -> bool:
    return os.geteuid() == 0 and _which("apt-get") is not None and os.environ.get("IZOO_INSTALL_SERVICES", "1") != "0"


def ensure_packages(packages: tuple[str, ...], present: bool) -> str | None:
    """None once the packages' programs are here (installing them where allowed), else why not."""
    if present:
        return None
    if not _may_install():
        return f"needs {' '.join(packages)} (apt-get install {' '.join(packages)}, as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return f"could not install {' '.join(packages)}: {tail[0]}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")


def _stop_pid_file(path: Path) -> None:
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _service_folder(prefix: str) -> Iterator[Path]:
    """A folder the services' own users (munge, postgres) can reach: under the system's temporary
    folder, not under pytest's (which only root may enter); removed after."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def slurm_cluster() -> Iterator[dict[str, str]]:
    """munged, slurmctld and slurmd on this machine, configured under a temporary folder; yields
    the environment (``SLURM_CONF``) that points clients at it. Partition ``debug``, one node."""
    reason = ensure_packages(SLURM_PACKAGES, all(_which(p) for p in SLURM_PROGRAMS))
    if reason:
        raise RuntimeError(reason)
    if os.geteuid() != 0:
        raise RuntimeError("a test SLURM cluster needs root (its daemons switch users)")
    with _service_folder("izoo-slurm-") as root:
        yield from _slurm_cluster(root)


def _slurm_cluster(root: Path) -> Iterator[dict[str, str]]:
    munge = root / "munge"
    munge.mkdir(mode=0o755)
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o600)
    shutil.chown(munge, "munge", "munge")
    shutil.chown(key, "munge", "munge")
    os.chmod(munge, 0o755)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir()
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    memory_mb = int(int(next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))) / 1024 * 0.8)
    conf = root / "slurm.conf"
    conf.write_text("\n".join([
        "ClusterName=izoo-test", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={munge / 'sock'}",
        f"StateSaveLocation={root / 'state'}", f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'slurmctld.pid'}", f"SlurmdPidFile={root / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log/slurmctld.log'}", f"SlurmdLogFile={root / 'log/slurmd.log'}",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core", "ReturnToService=2", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none", "MpiDefault=none",
        "SchedulerType=sched/backfill", "JobRequeue=1", "KillWait=2",
        f"NodeName={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""]))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started = []
    try:
        subprocess.run(["runuser", "-u", "munge", "--", _which("munged"), f"--socket={munge / 'sock'}",
                        f"--key-file={key}", f"--pid-file={munge / 'pid'}", f"--log-file={munge / 'log'}",
                        f"--seed-file={munge / 'seed'}"], check=True, capture_output=True, timeout=60)
        started.append(munge / "pid")
        for daemon, pid in (("slurmctld", "slurmctld.pid"), ("slurmd", "slurmd.pid")):
            subprocess.run([_which(daemon), "-f", str(conf)], env=env, check=True, capture_output=True, timeout=60)
            started.append(root / pid)

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() == "idle"

        _wait(idle, 90, "the SLURM node")
        yield {"SLURM_CONF": str(conf)}
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True, timeout=60)
        for pid in reversed(started):
            _stop_pid_file(pid)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server under a temporary folder on a free loopback port (trust authentication,
    user postgres, database izoo); yields its SQLAlchemy URL (psycopg 3)."""
    reason = ensure_packages(POSTGRES_PACKAGES, _postgres_bin() is not None)
    if reason:
        raise RuntimeError(reason)
    with _service_folder("izoo-postgres-") as root:
        yield from _postgres_server(root, _postgres_bin())


def _postgres_server(root: Path, binary: Path) -> Iterator[str]:
    data = root / "data"
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, str(binary / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=300)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    subprocess.run([*run_as, str(binary / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                    "start"], check=True, capture_output=True, timeout=120)
    try:
        subprocess.run([*run_as, str(binary / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "izoo"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/izoo"
    finally:
        subprocess.run([*run_as, str(binary / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True, timeout=120)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which not in ("slurm", "postgres"):
        sys.exit("usage: python tests/services.py slurm|postgres")
    with slurm_cluster() if which == "slurm" else postgres_server() as handle:
        print(f"export SLURM_CONF={handle['SLURM_CONF']}" if which == "slurm" else f"--storage {handle}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
