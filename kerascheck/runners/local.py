"""Checking files one after the other in this process (the Python API, where the caller's
registered classes must be visible)."""
from __future__ import annotations

from typing import Iterator, Sequence

from kerascheck.engine import ModelResult, check_file
from kerascheck.errors import InputError
from kerascheck.rule import Rule
from kerascheck.runners.sources import is_url, local_copy, rename_result


def check_in_process(files: Sequence[str], rules: Sequence[Rule], static: bool, options) -> list[ModelResult]:
    return [result for _, result in iter_in_process(files, rules, static, options)]


def iter_in_process(files: Sequence[str], rules: Sequence[Rule], static: bool, options,
                    started=None) -> Iterator[tuple[int, ModelResult]]:
    for index, source in enumerate(files):
        if started is not None:
            started(source)
        yield index, check_source(source, rules, static, options)


def check_source(source: str, rules: Sequence[Rule], static: bool, options) -> ModelResult:
    """check_file on a local path, or on a private copy of a URL (the result names the URL)."""
    if not is_url(source):
        return check_file(source, rules, static, options)
    try:
        with local_copy(source) as (local, digest):
            result = rename_result(check_file(local, rules, static, options), local, source)
            result.sha256 = digest
            return result
    except InputError as exc:
        result = ModelResult(path=source)
        result.errors.append({"message": str(exc)})
        return result


__all__ = ["check_in_process", "check_source", "iter_in_process"]
