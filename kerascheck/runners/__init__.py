"""How files are run: in this process (`local`), each in a worker process with a timeout and a
memory limit (`isolated`), or one Dask task per model on a cluster (`cluster`); where they come
from (`sources`: paths and fsspec URLs) and which results can be reused (`cache`). The CLI and
the API choose; the engine checks one model and knows nothing of processes."""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Iterator, Sequence

from kerascheck.engine import ModelResult, Report, needs_loading
from kerascheck.rule import Rule
from kerascheck.runners.isolated import Limits, default_memory_mb, iter_isolated
from kerascheck.runners.local import iter_in_process
from kerascheck.runners.sources import expand_paths


class Listener:
    """What a run tells as it goes (the progress bar, --format jsonl): each method may be left as is."""

    def planned(self, total: int) -> None:
        """The number of models the run will check, once the paths are expanded."""

    def started(self, source: str) -> None:
        """A model's check began (on a cluster: was sent)."""

    def finished(self, result: ModelResult, cached: bool) -> None:
        """A model's result arrived, from a check or from the cache."""


def check_paths(paths: Sequence[str], rules: Sequence[Rule], static: bool = False, options=None,
                limits: Limits | None = None, *, scheduler=None, cache=None,
                listener: Listener | None = None, expanded: bool = False) -> Report:
    """Check every model under `paths` (local paths or fsspec URLs); the Report lists them in
    path order, whichever order their checks ended in.

    With `scheduler` (an address, `local:N`, or a distributed.Client), one Dask task per model;
    otherwise with `limits`, each file in a worker process with a timeout and a memory limit;
    without, in this process. With `cache` (a folder, or a runners.cache.Cache made for these rules
    and options), unchanged models reuse their last result.
    `expanded`: the paths are expand_paths's answer already (folders searched, URLs listed).
    """
    listener = listener or Listener()
    files = list(paths) if expanded else expand_paths(paths)
    listener.planned(len(files))
    results: list[ModelResult | None] = [None] * len(files)
    store = cache
    if isinstance(cache, (str, os.PathLike)):
        from kerascheck.runners.cache import Cache

        store = Cache(os.fspath(cache), rules, static, options)
    todo = []
    for index, source in enumerate(files):
        hit = store.lookup(source) if store is not None else None
        if hit is not None:
            results[index] = hit
            listener.finished(hit, True)
        else:
            todo.append(index)
    sources = [files[i] for i in todo]
    for position, result in _run(sources, rules, static, options, limits, scheduler, listener):
        index = todo[position]
        results[index] = result
        if store is not None:
            store.store(files[index], result)
        listener.finished(result, False)
    return Report(models=results, rules=list(rules))


def _run(sources: list[str], rules, static, options, limits, scheduler, listener: Listener) -> Iterator[tuple[int, ModelResult]]:
    if not sources:
        return iter(())
    if scheduler is not None:
        from kerascheck.runners.cluster import iter_cluster  # Dask: imported only for a cluster run

        # Without a memory limit, each worker takes its share of its own machine or Dask limit.
        limits = limits or Limits(timeout=600.0, memory_mb=None)
        return iter_cluster(sources, list(rules), static, options, limits, scheduler, started=listener.started)
    if limits is not None:
        if limits.memory_mb is None:
            limits = replace(limits, memory_mb=default_memory_mb(limits.jobs))
        # Workers that load models start with "spawn" (TensorFlow is not fork-safe); the spec tier
        # alone can "fork" a parent that never imported TensorFlow.
        method = "spawn" if needs_loading(rules, static, options) or "tensorflow" in sys.modules else "fork"
        return iter_isolated(sources, list(rules), static, options, limits, method, started=listener.started)
    return iter_in_process(sources, rules, static, options, started=listener.started)


__all__ = ["Limits", "Listener", "check_paths", "expand_paths"]
