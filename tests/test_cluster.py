"""A real cluster: a study as a SLURM job array and a tuning search whose workers are SLURM jobs
sharing one study on a PostgreSQL server, on a one-node cluster and a throwaway server that
``services.py`` starts for these tests and stops after. Skipped, in one line, where SLURM or
PostgreSQL cannot be had (not root, no apt-get)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import services
from inference_zoo.core.results import read_rows

pytest.importorskip("submitit")
TIMINGS = ("train_seconds", "eval_seconds")
STUDY = ["study", "identity_toy", "--preset", "quick", "--device", "cpu", "--no-progress", "--seeds", "2",
         "--threads", "1"]


@pytest.fixture(scope="module")
def slurm():
    try:
        with services.slurm_cluster() as env:
            yield env
    except RuntimeError as exc:
        pytest.skip(f"no SLURM cluster: {exc}")


@pytest.fixture(scope="module")
def postgres():
    try:
        with services.postgres_server() as url:
            yield url
    except RuntimeError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")


def izoo(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inference_zoo", *args], env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=900, **kw)


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "inference_zoo", *args], env={**os.environ, **env, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(folder: Path) -> list[tuple]:
    return [(r["dataset"], r["method"], r["seed"], r["metric"], r["value"])
            for r in read_rows(folder / "results.csv") if r["metric"] not in TIMINGS]


def running_jobs(env: dict[str, str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env={**os.environ, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.split()


def wait_for(path_glob: Path, pattern: str, env: dict[str, str], seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if list(path_glob.glob(pattern)):
            return
        time.sleep(0.1)
    said = [subprocess.run(c, env={**os.environ, **env}, capture_output=True, text=True).stdout
            for c in (["squeue", "-a"], ["sinfo", "-N", "-l"])]
    raise AssertionError(f"nothing matched {path_glob / pattern} within {seconds} s; {' '.join(said)}")


def test_a_study_as_a_slurm_job_array_equals_the_in_process_study(slurm, tmp_path):
    base = [*STUDY, "--steps", "20", "--methods", "ali,latent,posthoc"]
    here = izoo([*base, "--out", str(tmp_path / "here"), "--publish", str(tmp_path / "pub-here")], {})
    assert here.returncode == 0, here.stderr
    jobs = izoo([*base, "--executor", "slurm", "--jobs", "2", "--partition", "debug", "--time", "10",
                 "--out", str(tmp_path / "jobs"), "--publish", str(tmp_path / "pub-jobs")], slurm)
    assert jobs.returncode == 0, jobs.stderr
    assert "submitted 2 slurm job(s)" in jobs.stderr
    assert rows(tmp_path / "pub-jobs") == rows(tmp_path / "pub-here")
    assert len(list((tmp_path / "jobs/jobs").glob("*_log.out"))) == 2


def test_an_unknown_partition_is_one_line_before_anything_is_submitted(slurm, tmp_path):
    done = izoo([*STUDY, "--steps", "20", "--methods", "vae", "--executor", "slurm", "--partition", "gpu",
                 "--out", str(tmp_path / "o")], slurm)
    assert done.returncode == 2
    assert done.stderr.strip() == "izoo: error: --partition 'gpu' is not a partition of this cluster; it has: debug"
    assert not (tmp_path / "o/jobs").exists()


VAE_5000 = [*STUDY[:STUDY.index("--seeds")], "--seeds", "1", "--threads", "1", "--methods", "vae", "--steps", "5000",
            "--set", "log_every=50", "--set", "checkpoint_every=100"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The published rows of VAE_5000 trained in one go, here: what an interrupted job must reach."""
    folder = tmp_path_factory.mktemp("whole")
    whole = izoo([*VAE_5000, "--out", str(folder / "runs"), "--publish", str(folder / "pub")], {})
    assert whole.returncode == 0, whole.stderr
    return rows(folder / "pub")


def cut_command(tmp_path: Path) -> list[str]:
    return [*VAE_5000, "--executor", "slurm", "--jobs", "1", "--time", "10", "--out", str(tmp_path / "cut"),
            "--publish", str(tmp_path / "pub-cut")]


def test_a_requeued_job_resumes_from_its_checkpoint_to_the_uninterrupted_rows(slurm, uninterrupted, tmp_path):
    """``scontrol requeue`` of the running job restarts it, and it resumes its cell from the last
    checkpoint to the rows of an uninterrupted run; the command says the job's states."""
    proc = start(cut_command(tmp_path), slurm)
    wait_for(tmp_path / "cut/runs", "*/*/seed0/checkpoint.pt", slurm)
    job = running_jobs(slurm)[0]
    subprocess.run(["scontrol", "requeue", job], env={**os.environ, **slurm}, check=True, capture_output=True)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err
    assert f"job {job}: RUNNING (log: " in err
    log = "".join(p.read_text() for p in (tmp_path / "cut/runs").glob("*/*/seed0/metrics.jsonl"))
    assert log.count('"step": 100,') == 1  # no step trained twice into the log
    assert rows(tmp_path / "pub-cut") == uninterrupted


def test_a_cancelled_job_is_one_line_and_the_same_command_resumes_it(slurm, uninterrupted, tmp_path):
    """``scancel`` of the running job: the command ends with one line naming the job (found gone
    through squeue: this cluster keeps no accounting for sacct), exit 2; the same command again
    resumes the cell from its checkpoint to the uninterrupted rows."""
    proc = start(cut_command(tmp_path), slurm)
    wait_for(tmp_path / "cut/runs", "*/*/seed0/checkpoint.pt", slurm)
    job = running_jobs(slurm)[0]
    subprocess.run(["scancel", job], env={**os.environ, **slurm}, check=True, capture_output=True)
    _, err = proc.communicate(timeout=300)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2, err
    assert last.startswith(f"izoo: error: 1 of 1 job(s) failed (first: {job}: left the queue without a result"), last
    assert "rerun the same command to resume" in last
    again = izoo(cut_command(tmp_path), slurm)
    assert again.returncode == 0, again.stderr
    assert rows(tmp_path / "pub-cut") == uninterrupted


def test_tuning_workers_as_slurm_jobs_share_one_study_on_postgresql(slurm, postgres, tmp_path):
    """Two workers (a job array) on one study in a PostgreSQL database: every trial once, the
    budget kept, and, within the sampler's random start-up trials, the same trials and best recipe
    as one process with the same seeds and budget."""
    import optuna

    tiny = ["--methods", "vae", "--data", "grid", "--preset", "quick", "--steps", "40", "--threads", "1",
            "--pruner", "none", "--batch", "1", "--budget", "240", "--set", "log_every=20",
            "--set", "checkpoint_every=40"]
    alone = izoo(["tune", *tiny, "--out", str(tmp_path / "alone")], {})
    assert alone.returncode == 0, alone.stderr
    shared = izoo(["tune", *tiny, "--executor", "slurm", "--jobs", "2", "--storage", postgres,
                   "--out", str(tmp_path / "shared")], slurm)
    assert shared.returncode == 0, shared.stderr
    assert "submitted 2 slurm job(s)" in shared.stderr
    study = optuna.load_study(study_name="vae@grid", storage=postgres)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 6 and len(study.trials) == 6  # 240 run-steps of 40-step trials, none twice
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2  # both jobs worked
    trained = sorted(p.parent.parent.name for p in (tmp_path / "shared/vae@grid/runs/grid").glob("*/seed*/results.csv"))
    assert trained == sorted(f"vae@trial={t.number}" for t in trials)
    one = optuna.load_study(study_name="vae@grid", storage=f"sqlite:///{tmp_path / 'alone/tuning.db'}")
    assert {t.number: (t.params, t.value) for t in one.trials} == {t.number: (t.params, t.value) for t in trials}
    best = [Path(tmp_path / f"{w}/vae@grid/best.json").read_text() for w in ("alone", "shared")]
    import json

    assert json.loads(best[0])["params"] == json.loads(best[1])["params"]


def test_an_unreachable_storage_is_one_line_before_any_worker_is_submitted(slurm, tmp_path):
    done = izoo(["tune", "--methods", "vae", "--budget", "100", "--steps", "20", "--executor", "slurm",
                 "--storage", f"postgresql+psycopg://postgres@127.0.0.1:{services.free_port()}/izoo",
                 "--out", str(tmp_path / "t")], slurm)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("izoo: error: cannot open the tuning storage") and not (tmp_path / "t/jobs").exists()


def test_waiting_counts_a_job_gone_from_squeue_as_failed_but_not_while_squeue_does_not_answer(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from inference_zoo.core.errors import UserError
    from inference_zoo.experiment import executors

    class SlurmJobStandIn:  # what wait() uses of submitit's SlurmJob
        def __init__(self, job_id: str, result: Exception | None = None, finished: bool = False):
            self.job_id, self._result, self._finished = job_id, result, finished
            self.paths = SimpleNamespace(stdout=tmp_path / f"{job_id}_log.out")

        def done(self) -> bool:
            return self._finished

        def result(self):
            if self._result is not None:
                raise self._result

    answers = iter([None, None, {"7_0": "RUNNING"}])  # squeue down twice, then the job leaves it
    monkeypatch.setattr(executors, "_slurm_queue", lambda: next(answers, {}))
    said: list[str] = []
    with pytest.raises(UserError) as caught:
        executors.wait([SlurmJobStandIn("7_0")], tmp_path, said.append, poll=0.0, gone_after=0.0)
    assert said == [f"job 7_0: RUNNING (log: {tmp_path / '7_0_log.out'})"]
    assert "1 of 1 job(s) failed (first: 7_0: left the queue without a result" in str(caught.value)
    with pytest.raises(UserError, match=r"1 of 2 job\(s\) failed \(first: 8_1: ValueError in the job\)"):
        executors.wait([SlurmJobStandIn("8_0", finished=True),
                        SlurmJobStandIn("8_1", RuntimeError("Traceback...\nValueError in the job"), finished=True)],
                       tmp_path, said.append, poll=0.0)
