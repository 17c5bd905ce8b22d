"""The files a run checks, and checking them one after the other in this process (the Python API,
where the caller's registered classes must be visible)."""
from __future__ import annotations

import os
from typing import Iterable, Sequence

from kerascheck.engine import ModelResult, check_file
from kerascheck.rule import Rule

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def expand_paths(paths: Iterable[str]) -> list[str]:
    """Files to check, in a stable order: folders are searched recursively.

    A SavedModel folder (one with saved_model.pb) is one model: kept as one entry, not searched.
    """
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path) and not os.path.exists(os.path.join(path, "saved_model.pb")):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                saved = [d for d in dirs if os.path.exists(os.path.join(root, d, "saved_model.pb"))]
                out.extend(os.path.join(root, d) for d in saved)
                dirs[:] = [d for d in dirs if d not in saved and not d.startswith(".")]
                out.extend(os.path.join(root, f) for f in sorted(files) if f.lower().endswith(MODEL_SUFFIXES))
        else:
            out.append(path)
    return out


def check_in_process(files: Sequence[str], rules: Sequence[Rule], static: bool, options) -> list[ModelResult]:
    return [check_file(p, rules, static, options) for p in files]
