"""Running a grid of run configs ("cells") into one output folder (its layout: core/results.py),
idempotently, in process, in shards, or with claims that several processes can share.

A finished cell (its results.csv exists) is never trained again, so a stopped study continues
where it stopped; a cell whose folder holds a different config is refused, naming the keys.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core.config import RunConfig
from ..core.errors import UserError
from ..core.results import cell_dir, write_tables
from ..core.threads import plan_processes
from .runs import check_same_config, is_finished, run_group, run_one
from ..engine import distributed
from ..engine.stack.engine import MAX_MEMBERS, stack_key
from ..engine.train import Watcher

OWNED = ("runs", "shared", "results.csv", "summary.csv")
#: figures izoo compare draws into an output folder (viz/comparison.py, image_figures.py, sweep_figure.py)
FIGURE_PREFIXES = ("comparison", "samples", "reconstructions", "interpolations", "class-samples", "arithmetic", "levels",
                   "sweep")


def prepare_output(out: Path, configs: list[RunConfig], mode: str) -> None:
    """Check the folder against ``mode`` (new | resume | overwrite) before any training starts."""
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    if mode == "overwrite":
        for name in OWNED:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        for prefix in FIGURE_PREFIXES:
            for figure in out.glob(f"{prefix}-*.png"):
                figure.unlink()
    elif mode == "new":
        if out.exists() and any(out.iterdir()):
            raise UserError(f"output folder {out} is not empty; pass --resume to continue it or --overwrite to replace it")
    elif mode == "resume":
        for config in configs:  # refuse a changed config now, not after hours of other cells
            check_same_config(cell_dir(out, config), config)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create output folder {out}: {exc.strerror or exc}") from None


OnCell = Callable[[int, int, RunConfig, str], Any]
ProgressFor = Callable[[list[RunConfig]], Any]


@contextlib.contextmanager
def cell_lock(directory: Path) -> Iterator[bool]:
    """Claim a cell for this process: yields False while another live process trains it.

    Lets several processes run the same study command side by side (each takes the cells nobody
    holds). The claim is the kernel's lock on ``.lock`` (``flock``), not the file's existence:
    claiming is atomic, and the lock dies with its process, however it dies (on NFSv4 when the
    server's lease for a dead client runs out), so a killed job never blocks a cell. The file's
    text (host, pid) is for people. A finished cell's ``.lock`` is removed by whoever holds it;
    a process that then claims the removed file finds the cell finished (``run_cells`` checks
    again after claiming).
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".lock"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{socket.gethostname()} {os.getpid()}\n".encode())
        try:
            yield True
        finally:
            if is_finished(directory) and _same_file(fd, path):
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)  # releases the lock


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_stale_lock(directory: Path) -> None:
    """Remove a finished cell's ``.lock`` that no process holds (left by a kill after finishing)."""
    path = directory / ".lock"
    if path.exists():
        with cell_lock(directory):
            pass  # held by nobody: claimed and, the cell being finished, removed on release


def run_cells(configs: list[RunConfig], out: Path, progress_for: ProgressFor | None = None,
              on_cell: OnCell | None = None, watcher: Watcher | None = None,
              say: Callable[[str], Any] | None = None) -> list[dict[str, Any]]:
    """Run every cell not yet finished and not held by another process; return the rows we have.

    Cells of the stacked engine that differ only in their seed (or learning rate) train together as
    one stack; on a CPU with several free cores the stacks, and the single engine's runs, are split
    over that many processes (``core.threads.plan_processes``; ``say`` is told how), which leaves
    the stacked engine's numbers as they are and trains a single-engine run at the processes'
    thread count.
    ``on_cell(i, n, config, status)`` is told "finished" (kept from earlier), "busy" (another
    process holds it; its rows are missing here until a later run collects them) or "run";
    ``progress_for(configs)`` gives the progress callback of the cells trained together;
    ``watcher`` may stop runs at their curve points (``engine.train.Watcher``).
    """
    rows_of: dict[int, list[dict[str, Any]]] = {}
    together = distributed.size() > 1  # the processes of a data-parallel job train each cell together

    def claim(group: list[int], locks: contextlib.ExitStack) -> list[int]:
        """The group's cells this process trains (claimed in ``locks``); finished ones' rows read."""
        mine = []
        for i in group:
            config, directory = configs[i], cell_dir(out, configs[i])
            if not is_finished(directory):
                status = "run" if together or locks.enter_context(cell_lock(directory)) else "busy"
                if status == "run" and not is_finished(directory):  # finished while we claimed it?
                    mine.append(i)
                elif status == "run":
                    status = "finished"
            else:
                status = "finished"
            if status == "finished":
                remove_stale_lock(directory)
                rows_of[i] = run_one(config, directory, out / "shared")
            if on_cell is not None:
                on_cell(i, len(configs), config, status)
        return mine

    def train(chosen: list[int]) -> None:
        picked = [configs[i] for i in chosen]
        progress = progress_for(picked) if progress_for is not None else None
        for i, cell_rows in zip(chosen, run_group(picked, [cell_dir(out, c) for c in picked], out / "shared",
                                                  progress, watcher)):
            rows_of[i] = cell_rows

    groups = stack_groups(configs)
    processes, threads = 1, 1
    if not together and watcher is None and _on_cpu(configs) and _importable(configs):
        todo = [[i for i in g if not is_finished(cell_dir(out, configs[i]))] for g in groups]
        processes, threads = plan_processes(*_work(configs, [t for t in todo if t]))
    if processes > 1:  # every cell claimed now: this process and its helpers take the machine
        with contextlib.ExitStack() as locks:
            claimed = [mine for mine in (claim(group, locks) for group in groups) if mine]
            if say is not None:
                single = any(configs[mine[0]].train.engine != "stacked" for mine in claimed)
                say(f"training in {processes} processes x {threads} thread{'s' if threads > 1 else ''} "
                    "(the stacked engine's numbers as in one process"
                    + (f"; the single engine's those of --threads {threads})" if single else ")"))
            rows_of.update(_train_in_processes(configs, out, claimed, processes, threads, progress_for))
    else:
        for group in groups:
            distributed.barrier()  # every process sees the same finished cells
            with contextlib.ExitStack() as locks:
                mine = claim(group, locks)
                if mine:
                    train(mine)
    rows = [row for i in sorted(rows_of) for row in rows_of[i]]
    distributed.barrier()
    if distributed.is_writer():
        write_tables(out, rows)
    return rows


def _on_cpu(configs: list[RunConfig]) -> bool:
    from ..core.environment import resolve_device

    return all(resolve_device(c.train.device).type == "cpu" for c in configs)


def _importable(configs: list[RunConfig]) -> bool:
    """Whether a fresh process finds every config's strategy (not one registered by a script)."""
    from ..strategies.registry import STRATEGIES

    return all(STRATEGIES.get(c.method).__module__ != "__main__" for c in configs)


def _work(configs: list[RunConfig], groups: list[list[int]]) -> tuple[int, int]:
    """(runs, run-steps) in ``groups``."""
    return sum(map(len, groups)), sum(_group_phases(configs, g)[1] * len(g) for g in groups)


#: what a stacked step costs besides its members' arithmetic, in members: each part of a cut stack
#: pays it once (read off the toy networks' training seconds at 2, 3 and 5 members on one thread;
#: ``benchmarks/cores.py`` times what the split gains)
PART_OVERHEAD = 0.75


def part_work(steps: int, members: int) -> float:
    """A stack part's work as ``split_work`` estimates it: steps x (members + ``PART_OVERHEAD``)."""
    return steps * (members + PART_OVERHEAD)


def split_work(configs: list[RunConfig], groups: list[list[int]], processes: int) -> list[list[list[int]]]:
    """Each process's stacks, in training order. Largest first, a stack goes whole to the process
    with the least work so far, unless cutting it into parts of consecutive members (on different
    processes, the least loaded filled up to an even share first) ends with less work on the
    busiest process: a whole stack keeps its step's fixed cost paid once (``PART_OVERHEAD``), a
    cut one evens out what whole stacks cannot. Work is estimated part by part (``part_work``),
    alike for every method (a step's cost is not known before it runs). Stacks that share a phase (the GAN of ``latent`` and ``posthoc``, one per seed) form
    one unit, cut at the same seeds and placed together."""
    grouped: dict[str, list[list[int]]] = {}  # a unit's key -> its stack groups
    steps_of: dict[str, int] = {}  # a unit's key -> the steps of one member (a seed) over its groups
    for group in groups:
        key, steps = _group_phases(configs, group)
        grouped.setdefault(key, []).append(group)
        steps_of[key] = steps_of.get(key, 0) + steps
    units = [(grouped[key], len(grouped[key][0]), steps_of[key]) for key in grouped]  # (groups, members, steps)

    load = [0.0] * processes
    assigned: list[list[list[int]]] = [[] for _ in range(processes)]
    share = sum(part_work(per_member, size) for _, size, per_member in units) / processes
    for unit, size, per_member in sorted(units, key=lambda u: (-part_work(u[2], u[1]), u[0][0][0])):
        least = min(range(processes), key=lambda q: (load[q], q))
        whole = {least: size}
        cut: dict[int, int] = {}
        left = size
        for q in sorted(range(processes), key=lambda q: (load[q], q)):
            room = int((share - load[q]) / per_member - PART_OVERHEAD + 0.5)  # members up to the share
            take = left if len(cut) == processes - 1 else min(left, room)
            if take > 0:
                cut[q] = take
                left -= take
            if not left:
                break
        if left:  # every process already holds its share: the rest goes whole where the least is
            cut = whole

        def busiest(plan: dict[int, int]) -> float:
            return max(load[q] + (part_work(per_member, plan[q]) if q in plan else 0.0) for q in range(processes))

        start = 0
        for q, take in sorted((whole if busiest(whole) <= busiest(cut) else cut).items()):
            assigned[q].extend(group[start:start + take] for group in unit)
            load[q] += part_work(per_member, take)
            start += take
    return [sorted(a, key=lambda part: part[0]) for a in assigned]


def _train_in_processes(configs: list[RunConfig], out: Path, groups: list[list[int]], processes: int,
                        threads: int, progress_for: ProgressFor | None) -> dict[int, list[dict[str, Any]]]:
    """Train the stack ``groups`` in ``processes`` worker processes at ``threads`` each (fresh
    Python processes, ``python -m inference_zoo.experiment.cells``: a script or notebook that calls
    the API is not run again in them); their progress comes back to ``progress_for``'s callbacks.
    Returns each cell's rows."""
    import pickle
    import subprocess
    import sys
    import threading

    plan = [assigned for assigned in split_work(configs, groups, processes) if assigned]
    parts = [part for assigned in plan for part in assigned]
    callbacks = {id_: progress_for([configs[i] for i in part]) if progress_for is not None else None
                 for id_, part in enumerate(parts)}
    ids = iter(range(len(parts)))
    jobs = [[(next(ids), [configs[i] for i in part], [cell_dir(out, configs[i]) for i in part]) for part in assigned]
            for assigned in plan]
    results: list[Any] = [None] * len(jobs)
    package_root = str(Path(__file__).resolve().parents[2])  # this very inference_zoo, however it was found
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}

    def listen(k: int, stream: Any) -> None:
        try:
            while True:
                message = pickle.load(stream)
                if message[0] == "progress":
                    callback = callbacks.get(message[1])
                    if callback is not None:
                        callback(*message[2:])
                else:
                    results[k] = message
        except EOFError:
            return

    workers, listeners = [], []
    try:
        for k, job in enumerate(jobs):
            worker = subprocess.Popen([sys.executable, "-m", "inference_zoo.experiment.cells"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, env=env)
            pickle.dump((threads, processes, job, out / "shared", progress_for is not None), worker.stdin)
            worker.stdin.close()
            workers.append(worker)
            listeners.append(threading.Thread(target=listen, args=(k, worker.stdout), daemon=True))
            listeners[-1].start()
        for worker, listener in zip(workers, listeners):
            worker.wait()
            listener.join()
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait()
    rows_of: dict[int, list[dict[str, Any]]] = {}
    for assigned, result, worker in zip(plan, results, workers):
        if result is None:
            raise UserError(f"a training process died (exit status {worker.returncode}: killed, or out of memory); "
                            "rerun with --resume to continue from the last checkpoints")
        if result[0] == "user error":
            raise UserError(result[1])
        if result[0] == "error":
            raise RuntimeError(f"a training process failed:\n{result[1]}")
        for part, part_rows in zip(assigned, result[1]):
            rows_of.update(zip(part, part_rows))
    return rows_of


def _worker_main() -> None:
    """A training process of ``_train_in_processes``: its job from stdin, pickled messages (progress,
    then the rows or the error) to stdout; whatever else it prints goes to stderr."""
    import pickle
    import sys
    import traceback

    from ..core.threads import note_processes, use_threads

    channel = sys.stdout.buffer
    sys.stdout = sys.stderr
    threads, processes, job, shared, with_progress = pickle.load(sys.stdin.buffer)
    use_threads(threads)
    note_processes(processes)

    def send(message: tuple) -> None:
        pickle.dump(message, channel)
        channel.flush()

    try:
        rows = [run_group(chunk, dirs, shared, _relayed(id_, send) if with_progress else None)
                for id_, chunk, dirs in job]
        send(("rows", rows))
    except UserError as exc:
        send(("user error", str(exc)))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception:  # noqa: BLE001 - handed to the parent, which raises it
        send(("error", traceback.format_exc()))


def _relayed(id_: int, send: Callable[[tuple], None]) -> Callable[[str, int, int, dict[str, float]], None]:
    """A progress callback that sends a stack's progress to the parent, at most every 0.2 s."""
    import time

    last = {"phase": None, "at": 0.0}

    def update(phase: str, step: int, total: int, logs: dict[str, float]) -> None:
        now = time.monotonic()
        if phase != last["phase"] or step >= total or now - last["at"] >= 0.2:
            last.update(phase=phase, at=now)
            send(("progress", id_, phase, step, total, dict(logs)))

    return update


def stack_groups(configs: list[RunConfig]) -> list[list[int]]:
    """Indices of configs in training order: each stacked-engine config joins the earlier configs
    it can share a stack with (up to MAX_MEMBERS); single-engine configs train alone."""
    groups: list[list[int]] = []
    open_groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        if config.train.engine != "stacked":
            groups.append([i])
            continue
        key = stack_key(config)
        group = open_groups.get(key)
        if group is None or len(group) >= MAX_MEMBERS:
            group = open_groups[key] = []
            groups.append(group)
        group.append(i)
    return groups


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (shard I of N, counted from 0) as (I, N); raises UserError otherwise."""
    parts = text.split("/")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        index, count = int(parts[0]), int(parts[1])
        if 0 <= index < count <= 10_000:
            return index, count
    raise UserError(f"--shard must be I/N with 0 <= I < N (e.g. 0/2), got {text!r}")


def shard_configs(configs: list[RunConfig], index: int, count: int) -> list[RunConfig]:
    """Shard ``index`` of ``count``: a deterministic part of ``configs`` that needs nothing from the others.

    It holds whole stack groups (so stacking still pays), and groups that can share a phase (the
    GAN that ``latent`` and ``posthoc`` train once per seed) stay together. Units go, largest
    first, to the shard with the least work so far (work: run-steps); ties go to the lower shard.
    """
    units: dict[str, list[int]] = {}
    work_of: dict[str, int] = {}
    for group in stack_groups(configs):
        key, steps = _group_phases(configs, group)
        units.setdefault(key, []).extend(group)
        work_of[key] = work_of.get(key, 0) + steps * len(group)
    work = [0] * count
    assigned: list[list[int]] = [[] for _ in range(count)]
    for key in sorted(units, key=lambda k: (-work_of[k], min(units[k]))):
        shard = min(range(count), key=lambda s: (work[s], s))
        assigned[shard].extend(units[key])
        work[shard] += work_of[key]
    return [configs[i] for i in sorted(assigned[index])]


_X_DIMS: dict[str, int] = {}  # a dataset config's repr -> its x_dim


def _group_phases(configs: list[RunConfig], group: list[int]) -> tuple[str, int]:
    """(unit key, steps of one run) of a stack group: groups whose strategies share a phase (same
    key, seeds and settings) get one key, any other group a key of its own."""
    from ..data import build_dataset
    from ..engine.train import build_strategy

    config = configs[group[0]]
    data = repr(config.data)
    if data not in _X_DIMS:  # an image set takes a moment to read; a job asks once per stack part
        _X_DIMS[data] = build_dataset(config.data).x_dim
    phases = build_strategy(config, _X_DIMS[data]).phases(config.train.steps)
    steps = sum(p.steps for p in phases)
    shared = [p.shared_key for p in phases if p.shared_key is not None]
    if not shared:
        return f"group {group[0]}", steps
    d = config.to_dict()
    for key in ("method", "variant", "options"):
        d.pop(key, None)
    return repr((shared, sorted(configs[i].seed for i in group), sorted(d.items()))), steps


if __name__ == "__main__":
    _worker_main()
