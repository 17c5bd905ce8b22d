"""Checking files one after the other in this process (the Python API, where the caller's
registered classes must be visible)."""
from __future__ import annotations

from typing import Iterator, Sequence

from kerascheck.engine import ModelResult, check_file
from kerascheck.rule import Rule
from kerascheck.runners.sources import check_source


def iter_in_process(files: Sequence[str], rules: Sequence[Rule], static: bool, options,
                    started=None) -> Iterator[tuple[int, ModelResult]]:
    for index, source in enumerate(files):
        if started is not None:
            started(source)
        yield index, check_source(source, lambda path: check_file(path, rules, static, options))


__all__ = ["iter_in_process"]
