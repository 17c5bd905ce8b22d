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
    if a.dtype.kind != "f" or a.dtype.itemsize < 4:
        a = a.astype(np.float32)
    flat = a.reshape(-1)
    if flat.size == 0:
        nan = float("nan")
        return TensorStats(0, 0, nan, nan, nan, nan, nan)
    lo, hi = float(flat.min()), float(flat.max())
    nonfinite = 0
    # NaN and Inf show up in the extremes, so the common all-finite case costs no extra pass.
    if not (np.isfinite(lo) and np.isfinite(hi)):
        mask = np.isfinite(flat)
        nonfinite = int(flat.size - np.count_nonzero(mask))
        flat = flat[mask]
        if flat.size == 0:
            nan = float("nan")
            return TensorStats(int(a.size), nonfinite, nan, nan, nan, nan, nan)
        lo, hi = float(flat.min()), float(flat.max())
    mean = float(flat.mean(dtype=np.float64))
    if flat.size <= 65536:
        centred = flat.astype(np.float64) - mean
        var = float(np.dot(centred, centred)) / flat.size
    else:
        # E[x^2] - mean^2 with one BLAS dot and no temporary copy; the thresholds the
        # rules apply are factors of 10, far above its rounding error.
        var = float(np.dot(flat, flat)) / flat.size - mean * mean
    return TensorStats(int(a.size), nonfinite, mean, math.sqrt(max(var, 0.0)), lo, hi, max(abs(lo), abs(hi)))


def _bin_range(lo: float, hi: float, bins: int) -> tuple[float, float]:
    """A range numpy can cut into `bins` finite bins, around [lo, hi]."""
    width = hi - lo
    if not width > max(abs(lo), abs(hi)) * 1e-6 * bins:  # equal, or too close for float bins
        pad = max(abs(lo) * 1e-3, 0.5)
        return lo - pad, hi + pad
    return lo, hi


def histogram(a: np.ndarray, bins: int = 30) -> dict:
    flat = np.asarray(a, dtype=np.float64).reshape(-1)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return {"counts": [], "edges": []}
    lo, hi = _bin_range(float(flat.min()), float(flat.max()), bins)
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


def chunked_stats(chunks) -> TensorStats:
    """tensor_stats over a tensor read in slices: memory stays at one slice (Chan et al.'s merge)."""
    size = nonfinite = 0
    count, mean, m2 = 0, 0.0, 0.0
    lo, hi = math.inf, -math.inf
    for chunk in chunks:
        st = tensor_stats(chunk)
        size += st.size
        nonfinite += st.nonfinite
        n = st.size - st.nonfinite
        if n == 0:
            continue
        delta = st.mean - mean
        total = count + n
        mean += delta * n / total
        m2 += st.std ** 2 * n + delta ** 2 * count * n / total
        count = total
        lo, hi = min(lo, st.min), max(hi, st.max)
    if count == 0:
        nan = float("nan")
        return TensorStats(size, nonfinite, nan, nan, nan, nan, nan)
    return TensorStats(size, nonfinite, mean, math.sqrt(m2 / count), lo, hi, max(abs(lo), abs(hi)))


def chunked_histogram(chunks, lo: float, hi: float, bins: int = 30) -> dict:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return {"counts": [], "edges": []}
    lo, hi = _bin_range(lo, hi, bins)
    counts = np.zeros(bins, dtype=np.int64)
    edges = None
    for chunk in chunks:
        flat = np.asarray(chunk, dtype=np.float64).reshape(-1)
        c, edges = np.histogram(flat[np.isfinite(flat)], bins=bins, range=(lo, hi))
        counts += c
    return {"counts": counts.tolist(), "edges": [float(e) for e in edges] if edges is not None else []}
