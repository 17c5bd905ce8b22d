"""Gradient statistics shared by the exploding- and vanishing-gradient rules."""
from __future__ import annotations

import math

import numpy as np
from kerascheck.rule import Skip


def gradient_run(probe):
    """The training run whose gradients describe the model: the configured rate, or the stable one."""
    run = probe.train
    if run is not None and run.diverged_at is not None:
        run = probe.stable_run
    return run


def diverged_everywhere(probe) -> bool:
    """Training diverged at the configured rate and at every rate the sweep tried."""
    return probe.train is not None and probe.train.diverged_at is not None and probe.stable_run is None \
        and bool(probe.sweep) and all(d is not None for _, d in probe.sweep)


def measured_run(probe, allow_prefix: bool = False):
    """gradient_run; with allow_prefix, when every rate diverged, the steps before the divergence; else Skip."""
    run = gradient_run(probe)
    if run is None and allow_prefix and diverged_everywhere(probe):
        prefix = _finite_prefix(probe.train)
        if prefix is not None:
            return prefix
    if run is None or run.steps_done < 10:
        raise Skip("no finite probe training with at least 10 steps to measure gradients on")
    return run


def _finite_prefix(run):
    """The steps of a diverged run before its divergence (at least the first), as a run of its own."""
    from dataclasses import replace

    end = max(run.diverged_at, 1)
    norms = {k: v[:end] for k, v in run.kernel_norms.items()}
    if not any(math.isfinite(x) for v in norms.values() for x in v):
        return None
    return replace(run, losses=run.losses[:end], global_norms=run.global_norms[:end],
                   layer_norms={k: v[:end] for k, v in run.layer_norms.items()}, kernel_norms=norms,
                   update_ratios={k: v[:end] for k, v in run.update_ratios.items()}, diverged_at=None)


def steps_phrase(probe, run) -> str:
    if diverged_everywhere(probe) and run.steps_done < probe.train.steps_planned:
        return f"the {run.steps_done} step{'s' if run.steps_done != 1 else ''} before training diverged"
    return f"{run.steps_done} probe steps"


def layer_rms(probe, run) -> dict[str, float]:
    """Median over steps of each layer's root-mean-square kernel gradient, input to output.

    Kernels only: a bias gradient is the upstream error itself, whatever the layer
    does, and would hide how the gradient changes from layer to layer.
    """
    out = {}
    for name in probe.layer_order:
        params = max(probe.kernel_params.get(name, 1), 1)
        sizes = getattr(run, "kernel_sizes", {}).get(name) or []
        norms = run.kernel_norms.get(name, [])
        # Over the values each step's gradient touched: an embedding's batch looks up a few rows,
        # and the RMS over the whole table would make its gradient look vanishingly small.
        rms = [n / math.sqrt(max(sizes[i] if i < len(sizes) else params, 1.0))
               for i, n in enumerate(norms) if math.isfinite(n)]
        if rms:
            out[name] = float(np.median(rms))
    return out


def first_last_ratio(probe, run):
    """(first layer, last layer, RMS gradient ratio first/last) or None with fewer than two layers."""
    rms = layer_rms(probe, run)
    # Embedding tables are looked up, not passed through: their sparse gradients say nothing about
    # how the gradient shrinks with depth (and parallel tables, a user's and a movie's, are no chain).
    lookups = set(getattr(run, "lookups", ()) or ()) | set(getattr(run, "unused", ()) or ())
    names = [n for n in probe.layer_order if n in rms and n not in lookups]
    if len(names) < 2:
        return None
    first, last = names[0], names[-1]
    return first, last, rms[first] / max(rms[last], 1e-30), rms


def finite_median(values) -> float:
    """Median of the finite values; 0.0 when there are none."""
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else 0.0


START_STEPS = 5  # the first steps, weights still those the file holds; a median keeps one outlier batch out


def start_ratios(probe) -> dict:
    """Per weighted layer, the median norm of its kernel gradient over the first probe steps (when the
    weights are still those the file holds) over the norm of the kernel then, or over the norm a
    LeCun-scaled kernel of its shape has when the kernel is smaller (a deliberately tiny last layer is
    not judged by its tiny weights)."""
    run = probe.train
    if run is None or not run.steps_done or not getattr(run, "start_weights", None):
        return {}
    skip = set(run.lookups or ()) | set(run.unused or ())
    out = {}
    for name in probe.layer_order:
        first = [n for n in (run.kernel_norms.get(name) or [])[:START_STEPS] if math.isfinite(n)]
        if name in skip or name not in run.start_weights or not first:
            continue
        now, ref = run.start_weights[name]
        if max(now, ref) > 0:
            out[name] = float(np.median(first)) / max(now, ref)
    return out


SPIKE_FACTOR = 10.0
SPIKE_WINDOW = 10  # steps whose median a step is compared with
SPIKE_WARMUP = 3  # steps before the first one judged


def spike_ratios(norms) -> np.ndarray:
    """Each step's global norm over the median of the steps just before it (from step SPIKE_WARMUP on).

    A spike is a jump against the recent trend: a norm that decays smoothly from a
    large start (the first steps of most trainings) has no step above its predecessors.
    """
    norms = np.asarray([n for n in norms if math.isfinite(n)], dtype=np.float64)
    out = []
    for i in range(SPIKE_WARMUP, len(norms)):
        median = float(np.median(norms[max(0, i - SPIKE_WINDOW):i]))
        out.append(norms[i] / median if median > 0 else 1.0)
    return np.asarray(out)


def spikes(run) -> tuple[float, float]:
    """(share of steps that spike, the largest jump over the recent median).

    A step spikes when its global norm jumps over 10x the median of the steps just
    before it and also over 10x the norms training started with. A trained model
    meeting a batch it does not fit yet jumps from a floor of near-zero gradients to
    what training started with, which does it no harm; an explosion goes far past it.
    """
    norms = np.asarray([n for n in run.global_norms if math.isfinite(n)], dtype=np.float64)
    ratios = spike_ratios(norms)
    if len(ratios) < 7:
        return 0.0, 1.0
    start = float(np.median(norms[:SPIKE_WINDOW]))
    above_start = norms[SPIKE_WARMUP:] > SPIKE_FACTOR * start
    return float(np.mean((ratios > SPIKE_FACTOR) & above_start)), float(max(ratios.max(), 1.0))
