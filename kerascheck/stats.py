"""Summary statistics of one weight tensor, computed in a few passes without float64 copies."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TensorStats:
    size: int
    nonfinite: int
    mean: float
    std: float
    min: float
    max: float
    absmax: float

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("size", "nonfinite", "mean", "std", "min", "max")}


def tensor_stats(a: np.ndarray) -> TensorStats:
    a = np.asarray(a)
    if a.dtype.kind not in "f":
        a = a.astype(np.float32)
    flat = a.reshape(-1)
    finite_mask = np.isfinite(flat)
    nonfinite = int(flat.size - np.count_nonzero(finite_mask))
    if nonfinite:
        flat = flat[finite_mask]
    if flat.size == 0:
        nan = float("nan")
        return TensorStats(int(a.size), nonfinite, nan, nan, nan, nan, nan)
    mean = float(flat.mean(dtype=np.float64))
    lo, hi = float(flat.min()), float(flat.max())
    # The two-pass variance is exact enough and keeps float32 temporaries.
    centred = flat - np.asarray(mean, dtype=flat.dtype)
    var = float(np.dot(centred, centred)) / flat.size if flat.dtype != np.float16 else float(
        np.mean(np.square(centred, dtype=np.float32), dtype=np.float64))
    return TensorStats(int(a.size), nonfinite, mean, math.sqrt(max(var, 0.0)), lo, hi, max(abs(lo), abs(hi)))


def histogram(a: np.ndarray, bins: int = 30) -> dict:
    flat = np.asarray(a, dtype=np.float64 if a.dtype == np.float64 else np.float32).reshape(-1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"counts": [], "edges": []}
    lo, hi = float(flat.min()), float(flat.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(flat, bins=bins, range=(lo, hi))
    return {"counts": counts.tolist(), "edges": [float(e) for e in edges]}


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Fan-in and fan-out the way Keras's initializers compute them."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive
