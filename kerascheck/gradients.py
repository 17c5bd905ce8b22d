"""Gradient statistics shared by the exploding- and vanishing-gradient rules."""
from __future__ import annotations

import math

import numpy as np


def gradient_run(probe):
    """The training run whose gradients describe the model: the configured rate, or the stable one."""
    run = probe.train
    if run is not None and run.diverged_at is not None:
        run = probe.stable_run
    return run


def measured_run(probe):
    """gradient_run, or Skip when there is no finite training of at least 10 steps to read."""
    from kerascheck.rule import Skip

    run = gradient_run(probe)
    if run is None or run.steps_done < 10:
        raise Skip("no finite probe training with at least 10 steps to measure gradients on")
    return run


def layer_rms(probe, run) -> dict[str, float]:
    """Median over steps of each layer's root-mean-square kernel gradient, input to output.

    Kernels only: a bias gradient is the upstream error itself, whatever the layer
    does, and would hide how the gradient changes from layer to layer.
    """
    out = {}
    for name in probe.layer_order:
        norms = [n for n in run.kernel_norms.get(name, []) if math.isfinite(n)]
        params = max(probe.kernel_params.get(name, 1), 1)
        if norms:
            out[name] = float(np.median(norms)) / math.sqrt(params)
    return out


def first_last_ratio(probe, run):
    """(first layer, last layer, RMS gradient ratio first/last) or None with fewer than two layers."""
    rms = layer_rms(probe, run)
    names = [n for n in probe.layer_order if n in rms]
    if len(names) < 2:
        return None
    first, last = names[0], names[-1]
    return first, last, rms[first] / max(rms[last], 1e-30), rms


def spikes(run) -> tuple[float, float]:
    """(share of steps whose global norm exceeds 10x the median, max/median)."""
    norms = np.asarray([n for n in run.global_norms if math.isfinite(n)])
    if len(norms) < 10:
        return 0.0, 1.0
    median = float(np.median(norms))
    if median <= 0:
        return 0.0, 1.0
    return float(np.mean(norms > 10 * median)), float(norms.max() / median)
