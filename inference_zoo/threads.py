"""CPU threads: how many a training process uses and how they wait, chosen to hold up next to other jobs.

Two choices matter when another CPU-bound process shares the machine (``benchmarks/contention.py``
measures both):

- **How threads wait.** OpenMP's threads spin between parallel regions by default. Next to a
  competitor, a spinning thread burns the core the other process needs while the thread it waits
  for sits descheduled, and both jobs slow down many times over. ``OMP_WAIT_POLICY=PASSIVE``
  makes waiting threads sleep. The variable is read when torch's OpenMP runtime starts, so the
  command line sets it (``prepare_process``) before anything imports torch.
- **How many threads.** ``auto`` counts the processes already running on the cores this process
  may use (``/proc/loadavg``) and takes the cores left over, at least one: alone on 2 cores a run
  uses 2 threads, next to one busy process 1. ``all`` takes every core; a number is taken as given.
  ``OMP_NUM_THREADS``, where set, is what ``auto`` uses.

Threads change speed, not numbers: a stacked run's results are the same for any thread count
(``tests/test_stack_independence.py`` and ``test_threads.py``).
"""
from __future__ import annotations

import os

THREAD_CHOICES = "auto, all or a number of threads"


def prepare_process() -> None:
    """Make OpenMP's waiting threads sleep, unless the user chose otherwise. Call before torch loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def other_running_processes() -> int:
    """Processes running right now besides this one (the kernel's count of runnable tasks)."""
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - 1)


def parse_threads(text: str) -> str | int:
    """``auto``, ``all`` or a positive number; raises ValueError naming the choices otherwise."""
    text = text.strip().lower()
    if text in ("auto", "all"):
        return text
    if text.isdigit() and 0 < int(text) <= 4096:
        return int(text)
    raise ValueError(f"--threads must be {THREAD_CHOICES}, got {text!r}")


def choose_threads(request: str | int) -> int:
    """The number of intra-op threads for ``request`` (see the module docstring)."""
    cores = usable_cores()
    if request == "all":
        return cores
    if request == "auto":
        given = os.environ.get("OMP_NUM_THREADS", "")
        if given.isdigit() and int(given) > 0:
            return int(given)
        return max(1, cores - other_running_processes())
    return int(request)


def use_threads(request: str | int) -> int:
    """Set torch's intra-op threads for ``request``; returns the number chosen."""
    import torch

    n = choose_threads(request)
    torch.set_num_threads(n)
    return n
