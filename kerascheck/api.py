"""kerascheck.check(): the same rules and findings as the command line, for notebooks and scripts."""
from __future__ import annotations

import os
import tempfile
from typing import Any, Sequence

import numpy as np

from kerascheck.engine import Report, check_file, select_rules
from kerascheck.options import DEFAULT_BUDGET, Options
from kerascheck.runners import check_paths


def check(model_or_path: Any, data: Any = None, *, select: Sequence[str] = (), ignore: Sequence[str] = (),
          static: bool = False, custom_objects: Sequence[str] = (), unsafe: bool = False, budget: float = DEFAULT_BUDGET,
          device: str = "auto", seed: int = 0, scheduler: Any = None, cache: str | None = None) -> Report:
    """Check a keras.Model in memory, or model files and folders, and return the Report.

    `data` is a path (.npz/.npy, as --data), an (x, y) tuple, or a dict of arrays
    ({"x": ..., "y": ...}, or x_<input name> for several inputs). The model you pass
    is never trained: kerascheck saves a copy and probes that.

    Paths may be fsspec URLs. `scheduler` (paths only): a Dask address, `local:N` or a
    distributed.Client, to check one model per task on that cluster; `cache`: a folder where
    results of unchanged models are kept and reused (as --cache).
    """
    rules = select_rules(list(select), list(ignore))
    with tempfile.TemporaryDirectory(prefix="kerascheck-") as tmp:
        options = Options(custom_objects=tuple(custom_objects), unsafe=unsafe, budget=float(budget),
                          device=device, seed=seed, data=_data_path(data, tmp))
        if _is_keras_model(model_or_path):
            path = os.path.join(tmp, f"{model_or_path.name or 'model'}.keras")
            model_or_path.save(path)
            result = check_file(path, rules, static=static, options=options)
            result.path = f"<in-memory model {model_or_path.name!r}>"
            return Report(models=[result], rules=list(rules))
        paths = [os.fspath(p) for p in model_or_path] if isinstance(model_or_path, (list, tuple)) \
            else [os.fspath(model_or_path)]
        return check_paths(paths, rules, static=static, options=options, scheduler=scheduler, cache=cache)


def _is_keras_model(obj) -> bool:
    import sys

    keras = sys.modules.get("keras")  # a keras.Model can only exist if keras is imported
    return keras is not None and isinstance(obj, keras.Model)


def _data_path(data, tmp: str) -> str | None:
    if data is None or isinstance(data, (str, os.PathLike)):
        return os.fspath(data) if data is not None else None
    if isinstance(data, tuple) and len(data) == 2:
        arrays = {"x": np.asarray(data[0]), "y": np.asarray(data[1])}
    elif isinstance(data, dict):
        arrays = {k: np.asarray(v) for k, v in data.items()}
    else:
        arrays = {"x": np.asarray(data)}
    path = os.path.join(tmp, "data.npz")
    np.savez(path, **arrays)
    return path
