"""Check each file in a worker process, with a timeout and a memory limit per file.

A model that hangs (HDF5's C library can loop forever on a corrupt file; a model can
hang TensorFlow), or that makes it allocate without bound, becomes an exit-2 error
for that file; the run goes on with the next one. Workers are recycled after a
number of files, so a long run over a folder keeps flat memory.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from multiprocessing.connection import wait
from dataclasses import dataclass

from kerascheck.engine import ModelResult, check_file, select_rules

FILES_PER_WORKER = 20
POLL_SECONDS = 0.05


@dataclass
class Limits:
    timeout: float  # seconds per file
    memory_mb: int  # resident memory of a worker
    jobs: int = 1


def default_memory_mb(jobs: int) -> int:
    """Three quarters of the machine's memory shared among the workers, at most 8 GiB each."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        total = 16384
    return int(min(8192, total * 0.75 / max(jobs, 1)))


def _worker(conn, rule_names, static, options):
    # Runs in a fresh interpreter (spawn): TensorFlow is not fork-safe.
    _keep_stdout_for_the_report(options)
    rules = select_rules(rule_names)
    while True:
        path = conn.recv()
        if path is None:
            return
        try:
            result = check_file(path, rules, static, options)
        except BaseException as exc:  # anything else still becomes one line for this file
            result = ModelResult(path=path)
            detail = " ".join(str(exc).split())[:300]
            result.errors.append({"message": f"internal error while checking ({type(exc).__name__}: {detail}); "
                                             "please report it"})
        conn.send(result)


def _keep_stdout_for_the_report(options) -> None:
    """What the model's own code prints while kerascheck loads and runs it (a summary() in an
    __init__, a debugging print in call()) must not land in the report on standard output, where
    it would break --format json: it goes to stderr with --verbose, nowhere otherwise."""
    import sys

    try:
        sys.stdout.flush()
        if getattr(options, "verbose", False):
            os.dup2(2, 1)
        else:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
    except (OSError, ValueError):
        return
    sys.stdout = sys.stderr if getattr(options, "verbose", False) else open(os.devnull, "w")


class Worker:
    def __init__(self, ctx, rule_names, static, options):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker, args=(child, rule_names, static, options), daemon=True)
        self.process.start()
        child.close()
        self.done = 0
        self.task: tuple[int, str, float] | None = None  # (index, path, start time)

    def check(self, path: str, limits: Limits) -> ModelResult | None:
        """Check one file and wait for it; None when the worker had to be stopped (then make a new one)."""
        self.give(0, path)
        started = time.monotonic()
        while not self.conn.poll(POLL_SECONDS):
            if self.overrun(started, limits):
                self.kill()
                return None
        self.task = None
        return self.conn.recv()

    def overrun(self, started: float, limits: Limits) -> str | None:
        """Why the current check must be stopped (died, too slow, too big), or None."""
        if not self.process.is_alive():
            return (f"the worker checking it died (exit code {self.process.exitcode}); "
                    "the model may crash TensorFlow")
        if time.monotonic() - started > limits.timeout:
            return f"checking it took longer than --timeout {limits.timeout:g} s and was stopped"
        if self.rss_mb() > limits.memory_mb:
            return f"checking it used more than {limits.memory_mb} MiB of memory (--max-memory) and was stopped"
        return None

    def give(self, index: int, path: str) -> None:
        self.task = (index, path, time.monotonic())
        self.conn.send(path)

    def rss_mb(self) -> int:
        try:
            with open(f"/proc/{self.process.pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS"):
                        return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.process.join(timeout=5)
        self.kill()


def check_isolated(paths: list[str], rules, static: bool, options, limits: Limits,
                   start_method: str = "spawn") -> list[ModelResult]:
    """check_file for each path in worker processes; results in the order of `paths`.

    Workers that load models start with "spawn" (TensorFlow is not fork-safe); the
    spec tier alone can "fork" a parent that never imported TensorFlow, which costs
    milliseconds, so even the fast path cannot be hung by a corrupt file.
    """
    ctx = multiprocessing.get_context(start_method)
    names = [r.name for r in rules]
    results: list[ModelResult | None] = [None] * len(paths)
    queue = list(enumerate(paths))
    workers: list[Worker] = []

    def fail(worker: Worker, message: str) -> None:
        index, path, _ = worker.task
        result = ModelResult(path=path)
        result.errors.append({"message": message})
        results[index] = result
        worker.kill()
        workers.remove(worker)

    try:
        while queue or any(w.task for w in workers):
            while queue and len([w for w in workers if w.task is None]) == 0 and len(workers) < limits.jobs:
                workers.append(Worker(ctx, names, static, options))
            for worker in [w for w in workers if w.task is None]:
                if not queue:
                    break
                worker.give(*queue.pop(0))
            for worker in list(workers):
                if worker.task is None:
                    continue
                index, path, started = worker.task
                if worker.conn.poll():
                    try:
                        results[index] = worker.conn.recv()
                    except (EOFError, OSError):
                        fail(worker, "the worker checking it died (crashed or killed by the system)")
                        continue
                    worker.task = None
                    worker.done += 1
                    if worker.done >= FILES_PER_WORKER:
                        worker.stop()  # a fresh worker keeps memory flat over long runs
                        workers.remove(worker)
                else:
                    reason = worker.overrun(started, limits)
                    if reason:
                        fail(worker, reason)
            busy = [w.conn for w in workers if w.task is not None]
            if busy:
                # Wake as soon as a result arrives; otherwise look at the clocks and memory again.
                wait(busy, timeout=POLL_SECONDS)
    finally:
        for worker in workers:
            worker.stop()
    return results
