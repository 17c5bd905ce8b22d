"""--scheduler: one Dask task per model on a Dask cluster (`tcp://host:8786`), or on a LocalCluster
of N worker processes started for the run (`local:N`).

Each task copies its model if it is a URL and checks it in an isolated process on the worker,
under the same timeout and memory limit as a local run (kerascheck.runners.isolated.Checker): a
hostile or hanging file kills that process, never the Dask worker. The process is reused for
the next files of the same run, as a local worker is. `distributed` is an optional extra:
pip install 'kerascheck[dask]'.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Callable, Iterator

from kerascheck.engine import ModelResult
from kerascheck.errors import UsageError
from kerascheck.runners.cache import code_digest
from kerascheck.runners.isolated import Checker, Limits, default_memory_mb
from kerascheck.runners.sources import check_source
from kerascheck.version import __version__

CONNECT_SECONDS = 20
ENVIRONMENT = "DASK_SCHEDULER_ADDRESS"

# One checker per Dask worker thread, kept between the tasks of a run (keyed by thread, so that the
# end of a run can close them all from the worker's event loop).
_checkers: dict[int, tuple[str, Checker, str]] = {}  # thread -> (job, its checker, the run's token)
_lock = threading.Lock()


def import_distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError("--scheduler needs Dask's distributed package: pip install 'kerascheck[dask]'") from None
    return distributed


def local_workers(address: str) -> int | None:
    """N for `local:N` (a LocalCluster of N processes started for the run), None for an address."""
    if address != "local" and not address.startswith("local:"):
        return None  # an address: tcp://host:8786, localhost:8786, ...
    rest = address[len("local"):]
    if rest in ("", ":"):
        return max(1, (os.cpu_count() or 1))
    try:
        n = int(rest.lstrip(":"))
    except ValueError:
        n = 0
    if not rest.startswith(":") or n < 1:
        raise UsageError(f"--scheduler {address!r}: use local:N with N a number of workers, or an address "
                         "such as tcp://host:8786")
    return n


@contextlib.contextmanager
def connect(scheduler, verbose: bool = False):
    """A Dask client for an address (`local:N` starts a LocalCluster for the block) or the client given."""
    distributed = import_distributed()
    if not isinstance(scheduler, str):
        yield scheduler  # a distributed.Client the API caller made
        return
    n = local_workers(scheduler)
    level = logging.WARNING if verbose else logging.CRITICAL
    if n is not None:
        import dask

        # Port 0 for the scheduler's web server: no warning when another cluster holds 8787. No
        # statistical profiling: its sampling thread in every worker costs CPU the checks need.
        settings = {"distributed.worker.profile.enabled": False}
        with _dask_logs(level), dask.config.set(settings), distributed.LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=level) as cluster, distributed.Client(cluster) as client:
            yield client
        return
    try:
        with _dask_logs(level):
            client = distributed.Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise UsageError(f"cannot reach the Dask scheduler at {scheduler} ({detail})") from None
    try:
        yield client
    finally:
        with _dask_logs(level):
            client.close()


@contextlib.contextmanager
def _dask_logs(level: int):
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado", "asyncio")]
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)


def iter_cluster(sources: list[str], rules, static: bool, options, limits: Limits, scheduler,
                 started: Callable[[str], None] | None = None
                 ) -> Iterator[tuple[int, ModelResult]]:
    """(index in `sources`, result) for each model as its task ends on the cluster."""
    distributed = import_distributed()
    names = [r.name for r in rules]
    verbose = bool(getattr(options, "verbose", False))
    with connect(scheduler, verbose) as client:
        # Unique per run, so a scheduler never hands back another run's results for a key.
        token = os.urandom(6).hex()
        job = (names, static, options, limits.timeout, limits.memory_mb, (__version__, code_digest()), token)
        # Sent once to every worker rather than with each of thousands of tasks.
        shared = client.scatter(job, broadcast=True, hash=False)
        submitted = client.map(check_task, sources, [shared] * len(sources), pure=False,
                               key=[f"kerascheck-{token}-{i}" for i in range(len(sources))])
        futures = {future: index for index, future in enumerate(submitted)}
        del submitted
        # Which files are running is the cluster's business; a file counts as started when submitted.
        if started is not None:
            for source in sources:
                started(source)
        try:
            # Results come back in batches, as they end: one round trip for many small results.
            for batch in distributed.as_completed(futures, with_results=True, raise_errors=False).batches():
                for future, result in batch:
                    index = futures.pop(future)  # its result is released on the worker as it arrives
                    if isinstance(result, BaseException) or future.status == "error":
                        detail = " ".join(str(result).split())[:200]
                        result = ModelResult.unchecked(
                            sources[index], f"its Dask task failed ({type(result).__name__}: {detail})")
                    yield index, result
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()
            with contextlib.suppress(Exception):
                client.run(close_checkers, token)


def check_task(source: str, job: tuple) -> ModelResult:
    """Runs on a Dask worker: one model, checked in an isolated process there."""
    names, static, options, timeout, memory_mb, (version, digest), _ = job
    if (version, digest) != (__version__, code_digest()):
        # Its results would differ from a local run's, and the cache would file them as this version's.
        return ModelResult.unchecked(source, f"the Dask worker runs another kerascheck ({__version__}, code "
                                             f"{code_digest()[:12]}) than this run ({version}, code {digest[:12]}): "
                                             "install the same on the workers")
    return check_source(source, _checker(job).check)


def _checker(job: tuple) -> Checker:
    names, static, options, timeout, memory_mb, _, token = job
    key = repr(job)
    with _lock:
        current = _checkers.get(threading.get_ident())
    if current is not None and current[0] == key:
        return current[1]
    if current is not None:
        current[1].close()
    if memory_mb is None:
        memory_mb = _worker_memory_mb()
    # forkserver: each isolated process is forked from a clean server process that never imports
    # TensorFlow (TensorFlow is not fork-safe), not from the Dask worker with its threads.
    checker = Checker(names, static, options, Limits(timeout=timeout, memory_mb=memory_mb, jobs=1), "forkserver")
    with _lock:
        _checkers[threading.get_ident()] = (key, checker, token)
    _allow_children()
    return checker


def close_checkers(token: str) -> int:
    """Stops this worker's isolated processes of one run (on every worker when the run ends);
    another run sharing the cluster keeps its own."""
    with _lock:
        ours = [t for t, entry in _checkers.items() if entry[2] == token]
        checkers = [_checkers.pop(t)[1] for t in ours]
    for checker in checkers:
        checker.close()
    return len(checkers)


def _allow_children() -> None:
    """Dask starts its workers as daemonic processes by default, and a daemonic process may not
    start children; the isolated processes are daemonic themselves, and leave when the worker does
    (their pipe closes), so the worker's own flag is lifted for them."""
    import multiprocessing

    current = multiprocessing.current_process()
    if current.daemon:
        current.daemon = False


def _worker_memory_mb() -> int:
    """The isolated process's share of this Dask worker's memory limit, or of the machine's."""
    try:
        from distributed import get_worker

        worker = get_worker()
        limit = worker.memory_manager.memory_limit
        threads = max(1, worker.state.nthreads)
        if limit:
            return int(min(8192, limit / threads / 2**20 * 0.9))
        return default_memory_mb(threads)
    except Exception:
        return default_memory_mb(1)
