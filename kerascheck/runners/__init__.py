"""How files are run: in this process (`local`) or each in a worker process with a timeout and a
memory limit (`isolated`). The CLI and the API choose; the engine checks one model and knows
nothing of processes."""
from __future__ import annotations

import sys
from typing import Sequence

from kerascheck.engine import Report, needs_loading
from kerascheck.rule import Rule
from kerascheck.runners.isolated import Limits, check_isolated
from kerascheck.runners.local import check_in_process, expand_paths


def check_paths(paths: Sequence[str], rules: Sequence[Rule], static: bool = False, options=None,
                limits: Limits | None = None) -> Report:
    """Check every model under `paths`.

    With `limits`, each file is checked in a worker process with a timeout and a memory limit
    (kerascheck.runners.isolated); without, in this process.
    """
    files = expand_paths(paths)
    if limits is not None and files:
        # Workers that load models start with "spawn" (TensorFlow is not fork-safe); the spec tier
        # alone can "fork" a parent that never imported TensorFlow.
        method = "spawn" if needs_loading(rules, static, options) or "tensorflow" in sys.modules else "fork"
        models = check_isolated(files, list(rules), static, options, limits, method)
    else:
        models = check_in_process(files, rules, static, options)
    return Report(models=models, rules=list(rules))


__all__ = ["Limits", "check_paths", "expand_paths"]
