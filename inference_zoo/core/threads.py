"""CPU threads: how many a training process uses, chosen to hold up next to other jobs.

torch's OpenMP threads spin while they wait between parallel regions. Alone on the machine that
is what makes small kernels fast, but next to another CPU-bound process a spinning thread burns
the core the other process needs while the thread it waits for sits descheduled, and both jobs
slow down many times over (``benchmarks/contention.py`` measures it). Making waiting threads sleep
(``OMP_WAIT_POLICY=PASSIVE``) cures contention but slows a toy run down when it is alone, so izoo
instead uses no more threads than there are free cores:

- ``auto`` (the default) counts the tasks running on the machine besides this process's own
  (``/proc/loadavg`` less ``/proc/self/task``) and takes the cores left over, at least one; it
  looks again every half second of training (``follow_free_cores``), so a job that starts later,
  or ends, is followed. Alone on 2 cores a run uses 2 threads, next to one busy process 1.
- ``all`` takes every usable core; a number is taken as given. ``OMP_NUM_THREADS``, where set,
  is taken as given too.

Threads change the stacked engine's speed, not its numbers: a stacked run's results are the same
for any thread count (``tests/test_threads.py``), so following the free cores cannot change a
result. The single engine (conv networks, plugins that do not stack) rounds differently with
another thread count: it keeps the count it starts with, which env.json records; ``--threads N``
makes its runs repeatable whatever else the machine is doing.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

THREAD_CHOICES = "auto, all or a number of threads"
PROCESS_CHOICES = "auto or a number of processes"
RECHECK_SECONDS = 0.5
#: under ``--processes auto``, training this many run-steps or more is split over processes
#: (below it, starting a process costs more than it saves)
MIN_SPLIT_RUN_STEPS = 10_000

_following = False
_last_check = 0.0
_initial: int | None = None  # torch's thread count before use_threads changed it
_request: str | int = "auto"  # the last use_threads request
_processes: str | int = "auto"  # the use_processes request
_in_use = 1  # training processes of the command this process belongs to (env.json records it)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_running_threads() -> int:
    running = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            running += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(1, running)


def other_running_tasks(samples: int = 3) -> int:
    """Tasks running right now that are not this process's threads (0 where /proc cannot tell);
    the least of a few looks a millisecond apart, so a passing blip of work is not counted."""
    seen = []
    for i in range(samples):
        if i:
            time.sleep(0.001)
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return 0
        seen.append(max(0, running - _own_running_threads()))
    return min(seen)


def parse_threads(text: str) -> str | int:
    """``auto``, ``all`` or a positive number; raises ValueError naming the choices otherwise."""
    text = text.strip().lower()
    if text in ("auto", "all"):
        return text
    if text.isdigit() and 0 < int(text) <= 4096:
        return int(text)
    raise ValueError(f"--threads must be {THREAD_CHOICES}, got {text!r}")


def _given_by_environment() -> int | None:
    given = os.environ.get("OMP_NUM_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else None


def choose_threads(request: str | int) -> int:
    """The number of intra-op threads for ``request`` (see the module docstring)."""
    if request == "all":
        return usable_cores()
    if request == "auto":
        return _given_by_environment() or max(1, usable_cores() - other_running_tasks())
    return int(request)


def use_threads(request: str | int) -> int:
    """Set torch's intra-op threads for ``request`` (``auto`` then follows the free cores while
    training); returns the number chosen."""
    import torch

    global _following, _initial, _request
    _request = request
    n = choose_threads(request)
    _following = request == "auto" and _given_by_environment() is None
    if _initial is None:
        _initial = torch.get_num_threads()
    torch.set_num_threads(n)
    return n


def parse_processes(text: str) -> str | int:
    """``auto`` or a positive number; raises ValueError naming the choices otherwise."""
    text = str(text).strip().lower()
    if text == "auto":
        return text
    if text.isdigit() and 0 < int(text) <= 4096:
        return int(text)
    raise ValueError(f"--processes must be {PROCESS_CHOICES}, got {text!r}")


def use_processes(request: str | int) -> None:
    """How many processes ``run_cells`` may train runs in (see ``plan_processes``)."""
    global _processes
    _processes = request


def plan_processes(members: int, run_steps: int) -> tuple[int, int]:
    """(processes, threads each) for training ``members`` runs of ``run_steps`` in all.

    The stacked engine's numbers do not depend on how its runs are stacked or on the thread count
    (``tests/test_stack_independence.py``, ``tests/test_threads.py``), so its runs can be split over
    processes at no cost to the results; the single engine's runs, split, train at the thread count
    given here (one, where there is a process per core). One process per core is faster than one process with a
    thread per core where the stacks are small (the toy networks' matmuls split poorly over
    threads) and no slower where they are large (``benchmarks/cores.py`` measures both). ``auto`` takes the cores the thread request gives
    (``auto``: those other processes leave free), one process each, when there are enough runs
    and ``MIN_SPLIT_RUN_STEPS`` of work; a number is taken as given (at most one per run)."""
    cores = choose_threads(_request)
    if _processes == "auto":
        wanted = cores if run_steps >= MIN_SPLIT_RUN_STEPS else 1
    else:
        wanted = int(_processes)
    n = max(1, min(wanted, members))
    return n, max(1, cores // n)


@contextlib.contextmanager
def processes_for(request: str | int) -> Iterator[None]:
    """``use_processes(request)`` inside, the earlier request after (the Python API's calls)."""
    global _processes
    earlier = _processes
    try:
        _processes = parse_processes(str(request))
    except ValueError as exc:
        from .errors import UserError

        raise UserError(str(exc).replace("--processes", "processes")) from None
    try:
        yield
    finally:
        _processes = earlier


def note_processes(n: int) -> None:
    """Set in each training process: how many train the command's runs side by side."""
    global _in_use
    _in_use = n


def processes_in_use() -> int:
    return _in_use


def restore() -> None:
    """Undo ``use_threads`` (the command line calls it when a command ends)."""
    global _following, _initial, _request, _processes
    _following = False
    _request = _processes = "auto"
    if _initial is not None:
        import torch

        torch.set_num_threads(_initial)
        _initial = None


def follow_free_cores() -> None:
    """Called by the stacked engine at every step: under ``auto``, at most every half second, set
    the thread count to the cores other processes leave free. (The single engine's numbers depend
    on the thread count, so it keeps the count it started with.)"""
    global _last_check
    if not _following:
        return
    now = time.monotonic()
    if now - _last_check < RECHECK_SECONDS:
        return
    _last_check = now
    import torch

    n = max(1, usable_cores() - other_running_tasks())
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
