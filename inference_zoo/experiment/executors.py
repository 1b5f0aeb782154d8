"""A study's shards as jobs on a scheduler, through submitit (``pip install inference-zoo[cluster]``).

Each job trains one shard (``study.shard_configs``: whole stacks, latent/posthoc of a seed
together) into the study's run folder, which the jobs share; shards are disjoint, so no two jobs
touch one cell. ``slurm`` submits one job array (``--array-parallelism`` of them at a time);
``local`` runs the same jobs as processes on this machine, through the same engine, which is
how the tests exercise it. A job that SLURM preempts or that reaches its time limit is requeued
by submitit and resumes every cell from its last checkpoint (``ShardJob.checkpoint``), so
nothing finished is trained twice. The command waits for the jobs, then publishes as usual.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.config import RunConfig
from ..core.errors import UserError

EXECUTORS = ("local", "slurm")


@dataclass(frozen=True)
class JobSettings:
    """What a SLURM user sets per job (None: the scheduler's or submitit's default)."""

    partition: str | None = None
    time_minutes: int = 240
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    array_parallelism: int | None = None
    threads: str = "auto"


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise UserError("--executor needs submitit: pip install 'inference-zoo[cluster]'") from None
    return submitit


class ShardJob:
    """The job: train a shard's cells into the run folder (resuming any checkpointed cell).

    submitit calls ``checkpoint`` on preemption or timeout and requeues what it returns: the same
    call again, which resumes from the cells' own checkpoints.
    """

    def __call__(self, configs: list[dict[str, Any]], out: str, threads: str) -> int:
        from .cells import run_cells
        from ..core.threads import parse_threads, use_threads

        use_threads(parse_threads(threads))
        run_cells([RunConfig.from_dict(c) for c in configs], Path(out))
        return len(configs)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        return _submitit().helpers.DelayedSubmission(ShardJob(), *args, **kwargs)


class TuneJob:
    """A tuning worker: ``experiment.tune.tune`` with the submitting command's arguments, on the
    study in their shared storage (a killed worker's trial is re-queued by the next). A requeued
    job simply works on."""

    def __call__(self, kwargs: dict[str, Any], threads: str) -> int:
        import sys

        from ..core.threads import parse_threads, use_threads
        from .tune import tune

        use_threads(parse_threads(threads))
        return len(tune(**kwargs, log=lambda text: print(text, file=sys.stderr, flush=True)))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        return _submitit().helpers.DelayedSubmission(TuneJob(), *args, **kwargs)


def check_executor(executor: str, jobs: int | None, settings: JobSettings) -> None:
    """Refuse what a scheduler would refuse after submission, before anything is submitted: an
    unknown executor, a bad job count, no SLURM on this machine, a partition it does not have."""
    import shutil
    import subprocess

    if executor not in EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs is not None and jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {jobs}")
    _submitit()
    if executor != "slurm":
        return
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        raise UserError("--executor slurm needs SLURM's sbatch and sinfo on PATH (run it on the cluster's login node)")
    listed = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    if listed.returncode:
        first = (listed.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"cannot reach the SLURM controller (sinfo: {first})")
    partitions = sorted({p.strip().rstrip("*") for p in listed.stdout.split()})
    if settings.partition is not None and settings.partition not in partitions:
        raise UserError(f"--partition {settings.partition!r} is not a partition of this cluster; it has: "
                        f"{', '.join(partitions)}")


def submit(job: Any, arguments: list[list[Any]], folder: Path, executor: str, settings: JobSettings, name: str,
           log: Any = print) -> list[Any]:
    """``job(*args)`` for each entry of ``arguments`` as one job array (or local processes)."""
    check_executor(executor, len(arguments), settings)
    submitit = _submitit()
    folder.mkdir(parents=True, exist_ok=True)
    engine = submitit.AutoExecutor(folder=folder, cluster=executor)
    params: dict[str, Any] = {"timeout_min": settings.time_minutes, "name": name}
    if executor == "slurm":
        params.update(slurm_partition=settings.partition, slurm_gpus_per_node=settings.gpus_per_job or None,
                      slurm_cpus_per_task=settings.cpus_per_job, slurm_array_parallelism=settings.array_parallelism)
    else:
        params.update(gpus_per_node=settings.gpus_per_job, cpus_per_task=settings.cpus_per_job or 1)
    engine.update_parameters(**{k: v for k, v in params.items() if v is not None})
    submitted = engine.map_array(job, *(list(column) for column in zip(*arguments)))
    log(f"submitted {len(submitted)} {executor} job(s) ({', '.join(j.job_id for j in submitted[:4])}"
        f"{', ...' if len(submitted) > 4 else ''}); logs in {folder}")
    return submitted


#: seconds between looks at the jobs, and how long a SLURM job may be out of the queue without a
#: result before it counts as failed (its result file is written just before it leaves)
POLL_SECONDS, GONE_SECONDS = 2.0, 20.0


def wait(submitted: list[Any], folder: Path, log: Any = print, poll: float = POLL_SECONDS,
         gone_after: float = GONE_SECONDS) -> None:
    """Wait for every job, saying when each one's scheduler state changes (with its log's path on
    starting). A job that failed, or a SLURM job that left the queue without a result (cancelled,
    killed on its node: seen through ``squeue``, which works where accounting, and so ``sacct``,
    is off), is one line naming it, its error and where the logs are."""
    import time

    pending, failed, said, gone = list(submitted), [], {}, {}
    while pending:
        queue = _slurm_queue() if any(_is_slurm(j) for j in pending) else {}
        now = time.monotonic()
        for job in list(pending):
            if job.done():
                pending.remove(job)
                error = _error_of(job)
                if error:
                    failed.append(f"{job.job_id}: {error}")
                continue
            if queue is None:  # squeue did not answer: nothing is known of the others this round
                continue
            state = queue.get(job.job_id) if _is_slurm(job) else "RUNNING"
            if state is None:  # not in the queue and no result (yet)
                if now - gone.setdefault(job.job_id, now) >= gone_after:
                    pending.remove(job)
                    failed.append(f"{job.job_id}: left the queue without a result (cancelled, or killed on its node)")
                continue
            gone.pop(job.job_id, None)
            if said.get(job.job_id) != state:
                said[job.job_id] = state
                log(f"job {job.job_id}: {state}" + (f" (log: {job.paths.stdout})" if state == "RUNNING" else ""))
        if pending:
            time.sleep(poll)
    if failed:
        raise UserError(f"{len(failed)} of {len(submitted)} job(s) failed (first: {failed[0]}); logs in "
                        f"{folder}; rerun the same command to resume")


def _is_slurm(job: Any) -> bool:
    return type(job).__name__.startswith("Slurm")


def _slurm_queue() -> dict[str, str] | None:
    """Job id (array tasks as 12_3) -> state, for this user's jobs in SLURM's queue; None when
    ``squeue`` fails (the controller busy or restarting)."""
    import getpass
    import subprocess

    try:
        done = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return dict(line.split(None, 1) for line in done.stdout.splitlines() if line.strip())


def _error_of(job: Any) -> str:
    try:
        job.result()
    except Exception as exc:  # noqa: BLE001 - a job's own error, reported by submitit
        text = str(exc).strip()
        return text.splitlines()[-1] if text else type(exc).__name__
    return ""


def run_on_executor(configs: list[RunConfig], out: Path, executor: str, jobs: int, settings: JobSettings,
                    log: Any = print) -> None:
    """Train ``configs`` into ``out`` as ``jobs`` shard jobs on ``executor``; wait for them."""
    from .cells import shard_configs

    check_executor(executor, jobs, settings)
    shards = [s for s in (shard_configs(configs, i, jobs) for i in range(jobs)) if s]
    arguments = [[[c.to_dict() for c in shard], str(out), settings.threads] for shard in shards]
    submitted = submit(ShardJob(), arguments, out / "jobs", executor, settings, f"izoo-{configs[0].study}", log)
    wait(submitted, out / "jobs", log)


def run_tune_workers(kwargs: dict[str, Any], workers: int, executor: str, settings: JobSettings,
                     log: Any = print) -> None:
    """``workers`` jobs each running ``tune(**kwargs)`` on the shared storage in ``kwargs``; waits."""
    folder = Path(kwargs["out"]) / "jobs"
    submitted = submit(TuneJob(), [[kwargs, settings.threads]] * workers, folder, executor, settings, "izoo-tune", log)
    wait(submitted, folder, log)
