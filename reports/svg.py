"""Geometry for the report's inline SVG charts: numbers in, coordinates out (the template draws)."""
from __future__ import annotations

import math


def _finite(values):
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def histogram_bars(hist: dict, expected_std: float | None, width=160, height=40) -> dict | None:
    counts, edges = hist.get("counts") or [], hist.get("edges") or []
    if not counts or len(edges) != len(counts) + 1:
        return None
    top = max(counts) or 1
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    bar = width / len(counts)
    bars = [{"x": round(i * bar, 2), "y": round(height - c / top * height, 2), "w": round(max(bar - 0.5, 0.5), 2),
             "h": round(c / top * height, 2)} for i, c in enumerate(counts)]
    marks = []
    if expected_std:
        for v in (-expected_std, expected_std):
            if lo <= v <= hi:
                marks.append(round((v - lo) / span * width, 2))
    return {"w": width, "h": height, "bars": bars, "marks": marks, "lo": lo, "hi": hi}


def line_chart(series: dict, width=420, height=140, log_y=False, pad=4) -> dict | None:
    """Polylines for named series of numbers (non-finite points are dropped)."""
    def tf(v):
        return math.log10(v) if log_y else v

    values = [tf(v) for s in series.values() for v in _finite(s) if (v > 0 or not log_y)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    longest = max(len(s) for s in series.values()) or 1
    lines = []
    for i, (name, s) in enumerate(series.items()):
        pts = []
        for j, v in enumerate(s):
            if isinstance(v, (int, float)) and math.isfinite(v) and (v > 0 or not log_y):
                x = pad + j / max(longest - 1, 1) * (width - 2 * pad)
                y = height - pad - (tf(v) - lo) / span * (height - 2 * pad)
                pts.append(f"{x:.1f},{y:.1f}")
        if pts:
            lines.append({"name": name, "points": " ".join(pts), "colour": i % 8})
    return {"w": width, "h": height, "lines": lines, "lo": lo, "hi": hi, "log": log_y, "steps": longest}


def sweep_points(configured: float, sweep: list, width=420, height=60, pad=8) -> dict | None:
    """Learning rates tried (log scale): diverged or finite."""
    tried = [(configured, True)] + [(lr, diverged is not None) for lr, diverged in sweep]
    rates = [math.log10(lr) for lr, _ in tried if lr > 0]
    if not rates:
        return None
    lo, hi = min(rates), max(rates)
    span = (hi - lo) or 1.0
    points = [{"x": round(pad + (math.log10(lr) - lo) / span * (width - 2 * pad), 1), "diverged": bad,
               "lr": lr} for lr, bad in tried if lr > 0]
    return {"w": width, "h": height, "points": points}
