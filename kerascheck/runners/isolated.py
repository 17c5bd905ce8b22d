"""Check each file in a worker process, with a timeout and a memory limit per file.

A model that hangs (HDF5's C library can loop forever on a corrupt file; a model can
hang TensorFlow), or that makes it allocate without bound, becomes an exit-2 error
for that file; the run goes on with the next one. Workers are recycled after a
number of files, so a long run over a folder keeps flat memory.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Callable, Iterator

from kerascheck.engine import ModelResult, check_file, select_rules
from kerascheck.errors import InputError
from kerascheck.runners.sources import is_url, local_copy, rename_result

FILES_PER_WORKER = 20
POLL_SECONDS = 0.05
DIED = "the worker checking it died (crashed or killed by the system)"


@dataclass
class Limits:
    timeout: float  # seconds per file
    memory_mb: int | None  # resident memory of a worker; None: the default for where it runs
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
            detail = " ".join(str(exc).split())[:300]
            result = ModelResult.unchecked(path, f"internal error while checking ({type(exc).__name__}: {detail}); "
                                                 "please report it")
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

    def collect(self) -> ModelResult | None:
        """The result of the current check (it is ready), or None when the pipe broke (the worker died)."""
        try:
            result = self.conn.recv()
        except (EOFError, OSError):
            return None
        self.task = None
        self.done += 1
        return result

    @property
    def spent(self) -> bool:
        """Checked enough files: a fresh worker keeps memory flat over long runs."""
        return self.done >= FILES_PER_WORKER

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


class Checker:
    """One isolated worker process that checks file after file, one at a time, under the limits:
    what a Dask task uses on its worker. Recycled like the pool's workers; a file that overruns
    kills only the process, and the next file gets a fresh one."""

    def __init__(self, rule_names, static: bool, options, limits: Limits, start_method: str = "spawn"):
        self.ctx = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            # The server imports kerascheck (never TensorFlow) once; each worker forked from it then
            # starts in milliseconds instead of importing it again every FILES_PER_WORKER files.
            self.ctx.set_forkserver_preload(["kerascheck.runners.isolated"])
        self.args = (list(rule_names), static, options)
        self.limits = limits
        self.worker: Worker | None = None

    def check(self, path: str) -> ModelResult:
        for attempt in (1, 2):
            if self.worker is None:
                self.worker = Worker(self.ctx, *self.args)
            try:
                self.worker.give(0, path)
                break
            except OSError:  # the idle process died since the last file: a fresh one, once
                self.close(kill=True)
                if attempt == 2:
                    return ModelResult.unchecked(path, "the worker checking it could not be started")
        worker = self.worker
        started = time.monotonic()
        while not worker.conn.poll(POLL_SECONDS):
            reason = worker.overrun(started, self.limits)
            if reason:
                self.close(kill=True)
                return ModelResult.unchecked(path, reason)
        result = worker.collect()
        if result is None:
            self.close(kill=True)
            return ModelResult.unchecked(path, DIED)
        if worker.spent:
            self.close()
        return result

    def close(self, kill: bool = False) -> None:
        if self.worker is not None:
            self.worker.kill() if kill else self.worker.stop()
            self.worker = None


def iter_isolated(sources: list[str], rules, static: bool, options, limits: Limits, start_method: str = "spawn",
                  started: Callable[[str], None] | None = None) -> Iterator[tuple[int, ModelResult]]:
    """(index in `sources`, result) for each model as its check ends, `limits.jobs` at a time.

    Workers that load models start with "spawn" (TensorFlow is not fork-safe); the
    spec tier alone can "fork" a parent that never imported TensorFlow, which costs
    milliseconds, so even the fast path cannot be hung by a corrupt file. A URL is
    copied here, just before its check, into a private folder the worker reads.
    """
    ctx = multiprocessing.get_context(start_method)
    names = [r.name for r in rules]
    queue = list(enumerate(sources))
    workers: list[Worker] = []
    copies: dict[int, tuple[contextlib.ExitStack, str, str, str]] = {}  # index -> (stack, local, url, sha)
    ready: list[tuple[int, ModelResult]] = []

    def finish(index: int, result: ModelResult) -> None:
        if index in copies:
            stack, local, url, digest = copies.pop(index)
            stack.close()
            rename_result(result, local, url)
            result.sha256 = digest
        ready.append((index, result))

    def fail(worker: Worker, message: str) -> None:
        index, path, _ = worker.task
        finish(index, ModelResult.unchecked(path, message))
        worker.kill()
        workers.remove(worker)

    def give(worker: Worker, index: int, source: str) -> bool:
        if started is not None:
            started(source)
        if not is_url(source):
            worker.give(index, source)
            return True
        stack = contextlib.ExitStack()
        try:
            local, digest = stack.enter_context(local_copy(source))
        except InputError as exc:
            stack.close()
            finish(index, ModelResult.unchecked(source, str(exc)))
            return False
        copies[index] = (stack, local, source, digest)
        worker.give(index, local)
        return True

    try:
        while queue or any(w.task for w in workers):
            while queue and len([w for w in workers if w.task is None]) == 0 and len(workers) < limits.jobs:
                workers.append(Worker(ctx, names, static, options))
            for worker in [w for w in workers if w.task is None]:
                while queue and not give(worker, *queue.pop(0)):
                    pass
            for worker in list(workers):
                if worker.task is None:
                    continue
                index, path, started_at = worker.task
                if worker.conn.poll():
                    result = worker.collect()
                    if result is None:
                        fail(worker, DIED)
                        continue
                    finish(index, result)
                    if worker.spent:
                        worker.stop()
                        workers.remove(worker)
                else:
                    reason = worker.overrun(started_at, limits)
                    if reason:
                        fail(worker, reason)
            yield from ready
            ready.clear()
            busy = [w.conn for w in workers if w.task is not None]
            if busy:
                # Wake as soon as a result arrives; otherwise look at the clocks and memory again.
                wait(busy, timeout=POLL_SECONDS)
        yield from ready
    finally:
        for worker in workers:
            worker.stop()
        for stack, *_ in copies.values():
            stack.close()
